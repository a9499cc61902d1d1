"""When a rollback cannot finish: name every device left changed and what to do by hand.

The facts come from the journal (what was committed, which rollback actions succeeded, which
restores were proven), so the same list is right for a live run and for a dead one.
"""

from __future__ import annotations

import logging
from typing import Protocol

from drill.engine.records import RunRecord
from drill.engine.rundir import RunDir
from drill.engine.trace import Trace

log = logging.getLogger(__name__)


class _Engine(Protocol):
    rundir: RunDir
    run_id: str
    record: RunRecord

    def _note(self, text: str) -> None: ...


def operator_notes(engine: _Engine) -> list[str]:
    """Add one loud note per host left changed (also on the console and in the report)."""
    # a note first: emitting it delivers the host results still queued for the journal
    engine._note("ROLLBACK INCOMPLETE: operator action needed")
    trace = Trace.read(engine.rundir.path)
    notes: list[str] = []
    for host, steps in sorted(trace.left_changed().items()):
        errors = _errors(engine.record, host)
        snapshot = trace.snapshots.get(host)
        text = (
            f"OPERATOR: {host} is left changed by step(s) {', '.join(repr(s) for s in steps)}"
            + (f" ({errors})" if errors else "")
            + f"; restore its running config from {snapshot or 'the snapshots in the run dir'}"
            + f", or run 'drill abort {engine.run_id}' once it is reachable"
        )
        notes.append(text)
        engine._note(text)
    for host, proof in sorted(engine.record.restore.items()):
        if not proof.exact and host not in trace.left_changed():
            text = (
                f"OPERATOR: {host} differs from its snapshot after the rollback (see restore diff)"
            )
            notes.append(text)
            engine._note(text)
    return notes


def _errors(record: RunRecord, host: str) -> str:
    """The last error a rollback step hit on ``host``."""
    for step in reversed(record.steps):
        result = step.hosts.get(host)
        if result is not None and result.failed and result.error:
            return str(result.error).splitlines()[0][:200]
    return ""
