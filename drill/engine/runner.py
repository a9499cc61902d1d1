"""The step runner: drives the lifecycle through prechecks, steps, postchecks, rollback and
verification, journaling every transition and host result as it happens."""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nornir.core import Nornir

from drill.engine import leftover, restore, signals
from drill.engine import probes as probe_glue
from drill.engine.context import LoadedRunbookLike, RunOptions, StepContext
from drill.engine.events import (
    EventBus,
    HostDone,
    Note,
    Observer,
    RestoreChecked,
    RunEnded,
    RunStarted,
    StateChanged,
    StepEnded,
    StepStarted,
)
from drill.engine.journal import Journal
from drill.engine.machine import OUTCOME_OF, Lifecycle, State, Trigger
from drill.engine.records import HostResult, Phase, RunRecord, StepRecord, StepStatus
from drill.engine.rollback import Executed, actions_for, skipped_note
from drill.engine.rundir import RunDir, make_run_id
from drill.errors import DrillError
from drill.runbook.model import CommandStep, ConfigStep, StepBase
from drill.runbook.rto import rto_plan
from drill.secrets import mask_secrets
from drill.steps import HANDLERS
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """SIGINT/SIGTERM during a run: the engine rolls back."""


@dataclass
class EngineConfig:
    state_base: Path | None = None  # None: $DRILL_STATE_DIR or ~/.local/state/drill
    handle_signals: bool = True


@dataclass
class _Progress:
    executed: list[Executed] = field(default_factory=list)
    snapshots: dict[str, Path] = field(default_factory=dict)


def inventory_secrets(nr: Nornir) -> tuple[str, ...]:
    found: set[str] = set()
    for host in nr.inventory.hosts.values():
        if host.password:
            found.add(host.password)
        params = host.get_connection_parameters("napalm")
        if params.password:
            found.add(params.password)
    return tuple(sorted(found))


def config_hosts(runbook: LoadedRunbookLike) -> list[str]:
    """Every host a config step of ``steps`` (or one of their rollback steps) may touch."""
    hosts: list[str] = []

    def visit(steps: Sequence[StepBase]) -> None:
        for step in steps:
            if isinstance(step, ConfigStep):
                hosts.extend(runbook.hosts_for(step))
                if isinstance(step.rollback, list):
                    visit(step.rollback)
            elif isinstance(step, CommandStep) and isinstance(step.rollback, list):
                visit(step.rollback)

    visit(list(runbook.model.steps))
    return list(dict.fromkeys(hosts))


class Engine:
    """Runs one runbook once. ``run()`` returns the filled RunRecord; it never raises for a
    failing drill (that is an outcome), only for bugs and unusable run directories."""

    def __init__(
        self,
        runbook: LoadedRunbookLike,
        nr: Nornir,
        options: RunOptions,
        observers: list[Observer] | None = None,
        config: EngineConfig | None = None,
        rundir: RunDir | None = None,
    ) -> None:
        """``rundir``: continue an existing run (``drill resume``/``abort``) in its directory
        and journal instead of starting a new one."""
        self.runbook = runbook
        self.nr = nr
        self.options = options
        self.config = config or EngineConfig()
        model = runbook.model
        rto = rto_plan(model)
        self.run_id = rundir.path.name if rundir else make_run_id(model.name)
        self.rundir = rundir or RunDir.create(self.run_id, self.config.state_base)
        self.record = RunRecord(
            run_id=self.run_id,
            runbook_name=model.name,
            runbook_path=str(runbook.path),
            runbook_sha256=runbook.sha256,
            mode=model.mode,
            dry_run=options.dry_run,
            operator=options.operator or _operator(),
            change_id=options.change_id,
            started=datetime.now(UTC),
            rto_target_s=rto.target_s,
            rto=rto,
        )
        secrets = inventory_secrets(nr)
        if rundir is None:
            # The copy is for people reading the run; secrets in inline configs stay out.
            self.rundir.save_runbook(mask_secrets(runbook.text, secrets))
        self.journal = Journal(self.rundir.journal_path, secrets)
        self.bus = EventBus([self.journal, *(observers or [])])
        self.lifecycle = Lifecycle([self._state_changed])
        self.ctx = StepContext(
            nr=nr,
            runbook=runbook,
            options=options,
            bus=self.bus,
            rundir=self.rundir,
            secrets=secrets,
        )
        self.progress = _Progress()
        self.probes = probe_glue.Probes(model.probes)
        self._rolling_back = False

    # --- the run ----------------------------------------------------------------------

    def run(self) -> RunRecord:
        hosts = sorted({h for s in self._all_steps() for h in self.ctx.hosts_for(s)})
        self.bus.emit(RunStarted(self.record, str(self.rundir.path), hosts))
        try:
            with self._signals():
                self.lifecycle.fire(Trigger.START)
                try:
                    self._drive()
                except signals.LeaveChanged:
                    signals.leave_changed(self)
                finally:
                    self.record.probes = self.probes.stop(self.record.steps)
        finally:
            self.record.ended = datetime.now(UTC)
            if self.lifecycle.state in OUTCOME_OF:
                self.record.outcome = OUTCOME_OF[self.lifecycle.state]
            self.bus.emit(RunEnded(self.record, {"state": self.lifecycle.state.value}))
            self.bus.close()
            self.journal.close()
            self.nr.close_connections(on_good=True, on_failed=True)
        return self.record

    def _drive(self) -> None:
        try:
            self.probes.start()
        except DrillError as exc:
            self._note(f"cannot start the probes: {exc}")
            self.lifecycle.fire(Trigger.PRECHECKS_FAILED)
            return
        try:
            if not self._prechecks():
                self.lifecycle.fire(Trigger.PRECHECKS_FAILED)
                return
        except Interrupted:
            self._note("interrupted during prechecks; nothing was changed")
            self.lifecycle.fire(Trigger.ABORT)
            return
        self.lifecycle.fire(Trigger.PRECHECKS_PASSED)
        if self.options.dry_run:
            self._dry_run()
            return
        self._settle(self._execute)

    def _settle(self, execute: Callable[[], Trigger | None]) -> None:
        """Run the changing part of a drill and end it: ``None`` goes on to succeed;
        ``STOP`` leaves changes in place; any other verdict, or an interruption, rolls back."""
        try:
            verdict = execute()
        except Interrupted:
            self._note("interrupted by the operator: rolling back")
            self.lifecycle.fire(Trigger.ABORT)
            verdict = Trigger.ABORT
        if verdict is Trigger.STOP:
            self._note("stopped on purpose: changes so far are left in place")
            self.lifecycle.fire(Trigger.STOP)
            return
        if verdict is not None:
            self._rollback()

    def _prechecks(self) -> bool:
        if not self.options.dry_run:
            touched = config_hosts(self.runbook)
            if touched and not self._snapshot(touched):
                return False
        return self._run_all(self.runbook.model.prechecks, Phase.PRECHECK)

    def _snapshot(self, hosts: list[str]) -> bool:
        rec = StepRecord("snapshot running configs", "snapshot", Phase.PRECHECK)
        with self._step_scope("precheck:snapshot", rec, hosts):
            paths, results = restore.snapshot(self.ctx, hosts)
            self.progress.snapshots = paths
            self._apply(rec, StepOutcome.from_hosts(results, "cannot snapshot"))
        return rec.status is StepStatus.OK

    def _run_all(self, steps: Sequence[StepBase], phase: Phase) -> bool:
        """Every step of a check phase runs, so one report shows all that is wrong."""
        ok = True
        for index, step in enumerate(steps):
            rec = self._run_step(step, phase, index)
            ok = ok and rec.status is not StepStatus.FAILED
        return ok

    def _verdict(self, step: StepBase, rec: StepRecord) -> Trigger | None:
        """How a step that ran ends execution: None goes on to the next step."""
        if rec.status is not StepStatus.FAILED:
            return None
        if step.on_failure == "continue":
            self._note(f"step {step.name!r} failed; continuing (on_failure: continue)")
            return None
        if step.on_failure == "stop":
            return Trigger.STOP
        self.lifecycle.fire(Trigger.STEP_FAILED)
        return Trigger.STEP_FAILED

    def _execute(self) -> Trigger | None:
        """Run ``steps``; returns the trigger that ends execution badly, or None when the
        postchecks pass."""
        for index, step in enumerate(self.runbook.model.steps):
            key = _key(Phase.STEP, index, step)
            rec = StepRecord(step.name, step.kind, Phase.STEP)
            self.progress.executed.append(Executed(key, step, rec))
            self._run_step(step, Phase.STEP, index, rec)
            verdict = self._verdict(step, rec)
            if verdict is not None:
                return verdict
        self.lifecycle.fire(Trigger.STEPS_DONE)
        passed = self._run_all(self.runbook.model.postchecks, Phase.POSTCHECK)
        # The interruption is part of the verdict: a probe over its limit fails the drill.
        self.record.probes = self.probes.stop(self.record.steps)
        for problem in self.probes.problems:
            self._note(problem)
        if passed and not self.probes.problems:
            self.lifecycle.fire(Trigger.POSTCHECKS_PASSED)
            return None
        self.lifecycle.fire(Trigger.POSTCHECKS_FAILED)
        return Trigger.POSTCHECKS_FAILED

    def _dry_run(self) -> None:
        ok = True
        for index, step in enumerate(self.runbook.model.steps):
            runs = isinstance(step, ConfigStep) or (
                isinstance(step, CommandStep) and step.read_only
            )
            if runs:
                rec = self._run_step(step, Phase.STEP, index)
                ok = ok and rec.status is not StepStatus.FAILED
            else:
                self._skip(step, Phase.STEP, index, "dry-run: listed, not run")
        for index, step in enumerate(self.runbook.model.postchecks):
            self._skip(step, Phase.POSTCHECK, index, "dry-run: listed, not run")
        self.lifecycle.fire(Trigger.DRY_RUN_DONE if ok else Trigger.DRY_RUN_FAILED)

    # --- rollback -------------------------------------------------------------------

    def _rollback(self) -> None:
        self._rolling_back = True
        # nornir's failed_hosts is shared by every filtered copy, and cached sessions may
        # have died with the change: start the rollback from clean, fresh connections.
        self.nr.data.reset_failed_hosts()
        self.nr.close_connections(on_good=True, on_failed=True)
        self.ctx.abort.clear()
        failed = False
        for done in reversed(self.progress.executed):
            changed = self.ctx.changes.changed_hosts(done.key)
            note = skipped_note(done, changed)
            if note:
                self._note(note)
            actions = actions_for(done, changed, self.runbook.hosts_for, self._handler)
            for number, action in enumerate(actions):
                rec = StepRecord(action.name, action.kind, Phase.ROLLBACK)
                key = f"rollback:{done.key}:{number}"
                with self._step_scope(key, rec, action.hosts):
                    self._apply(rec, self._attempt(functools.partial(action.run, self.ctx), rec))
                failed = failed or rec.status is StepStatus.FAILED
        verified = self._run_all(self.runbook.model.prechecks, Phase.VERIFY)
        exact = self._prove_restore()
        if failed:
            self._note("a rollback step failed: operator action needed")
        if not verified:
            self._note("prechecks fail after the rollback: operator action needed")
        if not exact:
            self._note("not every host is back to its snapshot: operator action needed")
        done_ok = not failed and verified and exact
        if not done_ok:
            leftover.operator_notes(self)
        self.lifecycle.fire(Trigger.ROLLBACK_DONE if done_ok else Trigger.ROLLBACK_FAILED)

    def _prove_restore(self) -> bool:
        touched = self.ctx.changes.touched_hosts()
        if not touched:
            return True
        proofs = restore.compare(self.ctx, self.progress.snapshots, touched)
        for host, proof in proofs.items():
            self.record.restore[host] = proof
            self.bus.emit(RestoreChecked(host, proof))
        return all(p.exact for p in proofs.values())

    # --- one step ------------------------------------------------------------------

    def _handler(self, step: StepBase, ctx: StepContext, hosts: list[str]) -> StepOutcome:
        return HANDLERS[step.kind](step, ctx, hosts)  # type: ignore[attr-defined]

    def _run_step(
        self, step: StepBase, phase: Phase, index: int, rec: StepRecord | None = None
    ) -> StepRecord:
        rec = rec or StepRecord(step.name, step.kind, phase)  # type: ignore[attr-defined]
        rec.phase = phase
        key = _key(phase, index, step)
        if step.when_mode is not None and self.runbook.model.mode not in step.when_mode:
            return self._skip(step, phase, index, f"not in mode {self.runbook.model.mode}", rec)
        hosts = self.ctx.hosts_for(step)
        own_timeout = step.kind in ("wait_until", "command")  # type: ignore[attr-defined]
        with self._step_scope(key, rec, hosts):
            # wait_until and command enforce their own timeout; for host steps it stops
            # hosts from starting late (a thread cannot be killed mid-call).
            if step.timeout is not None and not own_timeout:
                self.ctx.deadline = time.monotonic() + float(step.timeout)
            outcome = self._attempt(
                lambda: self._handler(step, self.ctx, hosts),
                rec,
                retries=step.retries,
                hosts=hosts,
                step=step,
            )
            self._apply(rec, outcome)
        return rec

    def _attempt(
        self,
        call: Callable[[], StepOutcome],
        rec: StepRecord,
        retries: int = 0,
        hosts: list[str] | None = None,
        step: StepBase | None = None,
    ) -> StepOutcome:
        """Run a step; retry up to ``retries`` times, each time only on the hosts that failed."""
        outcome = self._safe(call, rec)
        tries = 1
        while not outcome.ok and tries <= retries and step is not None:
            tries += 1
            failing = [h for h in (hosts or []) if outcome.hosts.get(h, HostResult()).failed]
            targets = failing or list(hosts or [])
            again = self._safe(functools.partial(self._handler, step, self.ctx, targets), rec)
            outcome.hosts.update(again.hosts)
            outcome.status, outcome.message = again.status, again.message
            if again.ok:
                outcome = StepOutcome.from_hosts(outcome.hosts)
        if tries > 1:
            outcome.message = (outcome.message or "ok") + f" (after {tries} attempts)"
        return outcome

    @staticmethod
    def _safe(call: Callable[[], StepOutcome], rec: StepRecord) -> StepOutcome:
        try:
            return call()
        except Interrupted:
            raise
        except Exception as exc:  # a step's bug must not skip the rollback
            log.debug("step %s raised", rec.name, exc_info=True)
            return StepOutcome.failed(f"{type(exc).__name__}: {exc}")

    def _apply(self, rec: StepRecord, outcome: StepOutcome) -> None:
        rec.status = outcome.status
        rec.hosts.update(outcome.hosts)
        rec.message = outcome.message

    def _skip(
        self, step: StepBase, phase: Phase, index: int, why: str, rec: StepRecord | None = None
    ) -> StepRecord:
        rec = rec or StepRecord(step.name, step.kind, phase)  # type: ignore[attr-defined]
        rec.status, rec.message = StepStatus.SKIPPED, why
        with self._step_scope(_key(phase, index, step), rec, self.ctx.hosts_for(step)):
            pass
        rec.status, rec.message = StepStatus.SKIPPED, why
        return rec

    @contextlib.contextmanager
    def _step_scope(self, key: str, rec: StepRecord, hosts: list[str]) -> Iterator[None]:
        """Journal the step BEFORE it runs and its end in ``finally``: an interrupted step
        stays visible as ``interrupted``."""
        rec.started = datetime.now(UTC)
        self.record.steps.append(rec)
        self.ctx.key, self.ctx.record = key, rec
        self.ctx.reported = set()
        self.bus.emit(StepStarted(key, rec, hosts, self.options.dry_run))
        started = time.monotonic()
        try:
            yield
        except BaseException:
            rec.status = StepStatus.INTERRUPTED
            rec.message = rec.message or "interrupted"
            raise
        finally:
            rec.ended = datetime.now(UTC)
            log.debug("step %s took %.3fs", key, time.monotonic() - started)
            for host, result in rec.hosts.items():
                if host not in self.ctx.reported:  # local steps, hosts never reached
                    self.bus.emit(HostDone(key, rec, host, result))
            self.ctx.record, self.ctx.deadline = None, None
            self.bus.emit(StepEnded(key, rec))

    # --- plumbing -------------------------------------------------------------------

    def _all_steps(self) -> list[StepBase]:
        model = self.runbook.model
        return [*model.prechecks, *model.steps, *model.postchecks]

    def _state_changed(self, source: State, dest: State, trigger: Trigger) -> None:
        self.bus.emit(StateChanged(source.value, dest.value, trigger.value))

    def _note(self, text: str) -> None:
        self.record.notes.append(text)
        self.bus.emit(Note(text))

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM raise :class:`Interrupted` (the engine rolls back); during the
        rollback see drill.engine.signals (refused once, then ask / leave changed)."""
        ask = self.options.confirm if self.options.interactive else None
        with signals.guard(self, Interrupted, ask, enabled=self.config.handle_signals):
            yield


def _key(phase: Phase, index: int, step: StepBase) -> str:
    return f"{phase.value}:{index + 1}:{step.name}"


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
