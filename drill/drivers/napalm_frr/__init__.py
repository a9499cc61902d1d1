"""Entry point for ``napalm.get_network_driver("frr")``.

NAPALM returns the first NetworkDriver subclass found here, so export only the driver.
"""

from drill.drivers.frr.driver import FRRDriver

__all__ = ["FRRDriver"]
