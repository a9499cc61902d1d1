"""drill: failover drills as tested, repeatable programs."""

__version__ = "0.1.0"
