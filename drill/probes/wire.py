"""The agent's stdout protocol: one JSON object per line, tagged by ``type``.

``ready`` once the sockets are open, ``progress`` a few times a second (what has been decided
so far, for ``check_limits``), ``result`` once at the end, ``error`` when the agent gives up.

>>> decode(encode(Progress(sent=10, lost=1, max_gap_ms=5.0, ongoing_gap_ms=0.0)))
Progress(sent=10, lost=1, max_gap_ms=5.0, ongoing_gap_ms=0.0)
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from drill.engine.records import Outage, SessionLoss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ready:
    started: float  # epoch seconds


@dataclass(frozen=True)
class Progress:
    sent: int
    lost: int
    max_gap_ms: float
    ongoing_gap_ms: float


@dataclass(frozen=True)
class Result:
    sent: int
    lost: int
    interval: float
    started: float
    stopped: float
    outages: list[Outage] = field(default_factory=list)
    backends: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # why requests failed, by reason
    late: int = 0  # replies that came after the grace period (counted as lost)
    skipped: int = 0  # send slots dropped because the sender fell behind its schedule
    cpu_s: float = 0.0  # CPU time the agent used (user + system)


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class SessionProgress:
    """Session probe: what is decided so far (``lost`` counts sessions, not messages)."""

    opened: int
    lost: int
    sent: int


@dataclass(frozen=True)
class SessionResult:
    requested: int
    opened: int
    sent: int  # messages
    answered: int
    interval: float
    started: float
    stopped: float
    max_gap_ms: float  # longest wait between two answers on one session, minus the interval
    losses: list[SessionLoss] = field(default_factory=list)
    open_failures: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0


@dataclass(frozen=True)
class FlowRound:
    """Flow probes: one round of attempts, one per flow (ids as given to the agent)."""

    t: float  # epoch seconds when the round started
    ok: list[int]
    failed: dict[str, str]  # flow id (JSON keys are strings) -> why


@dataclass(frozen=True)
class FlowsDone:
    rounds: int
    cpu_s: float


Message = (
    Ready | Progress | Result | Error | SessionProgress | SessionResult | FlowRound | FlowsDone
)
_TYPES: dict[str, type[Message]] = {
    "ready": Ready,
    "progress": Progress,
    "result": Result,
    "error": Error,
    "session_progress": SessionProgress,
    "session_result": SessionResult,
    "flow_round": FlowRound,
    "flows_done": FlowsDone,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def encode(message: Message) -> str:
    body = asdict(message)
    if isinstance(message, Result):
        body["outages"] = [[o.start, o.end, o.lost] for o in message.outages]
    return json.dumps({"type": _NAMES[type(message)], **body}, separators=(",", ":"))


def decode(line: str) -> Message:
    """Parse one line; ValueError when it is not a message of this protocol."""
    try:
        body: dict[str, Any] = json.loads(line)
        cls = _TYPES[body.pop("type")]
        if cls is Result:
            body["outages"] = [Outage(float(s), float(e), int(n)) for s, e, n in body["outages"]]
        if cls is SessionResult:
            body["losses"] = [SessionLoss(**loss) for loss in body["losses"]]
        return cls(**body)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an agent message: {line[:200]!r} ({exc})") from None
