"""The engine: drives the lifecycle through prechecks, steps, postchecks, rollback and
verification, journaling every transition and host result as it happens.

One engine for every start: a fresh run, or a dead run's :class:`~drill.engine.recovery.
Recovery` (``drill resume`` continues it, ``drill abort`` rolls it back), in the dead run's
directory and journal."""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nornir.core import Nornir

from drill.engine import isolation, leftover, restore, signals
from drill.engine import probes as probe_glue
from drill.engine.context import LoadedRunbookLike, RunOptions, StepContext, StepScope
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
    StepKey,
    StepStarted,
)
from drill.engine.isolation_devices import DeviceCut
from drill.engine.journal import Journal
from drill.engine.machine import FINAL_STATES, OUTCOME_OF, Lifecycle, State, Trigger
from drill.engine.records import HostResult, Phase, RunRecord, StepRecord, StepStatus
from drill.engine.recovery import Recovery, reverify, reverify_key
from drill.engine.rollback import Executed, actions_for, skipped_note
from drill.engine.rundir import RunDir, make_run_id
from drill.errors import DrillError
from drill.runbook.model import CommandStep, ConfigStep, IsolateSpec, Step
from drill.runbook.rto import rto_plan
from drill.secrets import mask_secrets
from drill.steps import run_step
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

    def visit(steps: Sequence[Step]) -> None:
        for step in steps:
            if isinstance(step, ConfigStep):
                hosts.extend(runbook.hosts_for(step))
                if isinstance(step.rollback, list):
                    visit(step.rollback)
            elif isinstance(step, CommandStep) and isinstance(step.rollback, list):
                visit(step.rollback)

    visit(list(runbook.model.steps))
    if runbook.model.isolate is not None:
        visit(list(runbook.model.isolate.cut))  # a device cut is proven undone like any change
    return list(dict.fromkeys(hosts))


class Engine:
    """Runs one runbook once, or finishes a dead run of it. ``run()`` returns the filled
    RunRecord; it never raises for a failing drill (that is an outcome), only for bugs and
    unusable run directories."""

    def __init__(
        self,
        runbook: LoadedRunbookLike,
        nr: Nornir,
        options: RunOptions,
        observers: list[Observer] | None = None,
        config: EngineConfig | None = None,
        *,
        recovery: Recovery | None = None,
        rundir: RunDir | None = None,
    ) -> None:
        """``recovery`` with ``rundir``: continue a dead run (``drill resume``/``abort``) in
        its directory and journal instead of starting a new one."""
        if (recovery is None) != (rundir is None):
            raise ValueError("a recovery needs the dead run's directory, and only it")
        self.runbook = runbook
        self.nr = nr
        self.options = options
        self.config = config or EngineConfig()
        self.recovery = recovery
        model = runbook.model
        self.run_id = rundir.path.name if rundir else make_run_id(model.name)
        self.rundir = rundir or RunDir.create(self.run_id, self.config.state_base)
        self.record = _new_record(self.run_id, runbook, options)
        secrets = inventory_secrets(nr)
        if rundir is None:
            # The copy is for people reading the run; secrets in inline configs stay out.
            self.rundir.save_runbook(mask_secrets(runbook.text, secrets))
        self.journal = Journal(self.rundir.journal_path, secrets)
        self.bus = EventBus([self.journal, *(observers or [])])
        initial = recovery.state if recovery is not None else State.PENDING
        self.lifecycle = Lifecycle([self._state_changed], initial=initial)
        self.ctx = StepContext(
            nr=nr,
            runbook=runbook,
            options=options,
            bus=self.bus,
            rundir=self.rundir,
            secrets=secrets,
        )
        self.progress = _Progress()
        # Probes measure a run's own traffic; a recovery cannot continue the dead run's.
        self.probes = probe_glue.Probes(
            model.probes if recovery is None else [], self.rundir.path / "probes"
        )
        self._rolling_back = False
        self._isolate_index = 1  # the isolate phase's own step is 1; cut steps follow
        if recovery is not None:
            self._remember(recovery)

    def _remember(self, recovery: Recovery) -> None:
        """Put back in memory what the dead run had, as the journal tells it."""
        changes = self.ctx.changes
        if recovery.started is not None:
            self.record.started = recovery.started
        self.record.steps.extend(recovery.history)  # the report shows the whole run
        self.progress.snapshots = dict(recovery.snapshots)
        for key, saved in recovery.preconfig.items():
            for host, path in saved.items():
                changes.save_preconfig(key, host, path)
        for key, committed in recovery.commits.items():
            for host in committed:
                changes.mark_commit(key, host)
        for key, hosts in recovery.pending_confirm.items():
            if key.phase is Phase.ISOLATE:
                continue  # an isolation cut: its timer reverts it (isolation.settle_dead)
            for host in hosts:
                # unconfirmed commit-confirm: the rollback lets the driver cancel it
                changes.mark_pending_confirm(key, host)
        steps = self.runbook.model.steps
        for key, rec in recovery.done:
            if 1 <= key.index <= len(steps):
                self.progress.executed.append(Executed(key, steps[key.index - 1], rec))

    # --- the run ----------------------------------------------------------------------

    def run(self) -> RunRecord:
        if self.recovery is None:
            hosts = sorted({h for s in self._all_steps() for h in self.ctx.hosts_for(s)})
            self.bus.emit(RunStarted(self.record, str(self.rundir.path), hosts))
        else:
            self._note(
                f"{self.recovery.action} by pid {os.getpid()}: the run's process died in "
                + self.recovery.died_in
            )
        try:
            with self._signals():
                try:
                    self._begin()
                except signals.LeaveChanged:
                    signals.leave_changed(self)
                finally:
                    if self.recovery is None:
                        self.record.probes = self.probes.stop(self.record.steps)
        finally:
            self.record.ended = datetime.now(UTC)
            if self.lifecycle.state in OUTCOME_OF:
                self.record.outcome = OUTCOME_OF[self.lifecycle.state]
            self.bus.emit(RunEnded(self.record, self.lifecycle.state))
            self.bus.close()
            self.journal.close()
            self.nr.close_connections(on_good=True, on_failed=True)
        return self.record

    def _begin(self) -> None:
        if self.recovery is None:
            self.lifecycle.fire(Trigger.START)
            self._drive()
            return
        if self.recovery.isolation is not None:
            isolation.settle_dead(self.recovery.isolation, self.bus, self._note)
        if self.recovery.action == "abort":
            self._abort()
        else:
            self._resume(self.recovery)

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
        key = StepKey(phase=Phase.PRECHECK, index=0, name="snapshot")
        with self._step_scope(key, rec, hosts) as ctx:
            paths, results = restore.snapshot(ctx, hosts)
            self.progress.snapshots = paths
            self._apply(rec, StepOutcome.from_hosts(results, "cannot snapshot"))
        return rec.status is StepStatus.OK

    def _run_all(self, steps: Sequence[Step], phase: Phase) -> bool:
        """Every step of a check phase runs, so one report shows all that is wrong."""
        ok = True
        for index, step in enumerate(steps):
            rec = self._run_step(step, phase, index)
            ok = ok and rec.status is not StepStatus.FAILED
        return ok

    def _verdict(self, step: Step, rec: StepRecord) -> Trigger | None:
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

    def _execute(self, start: int = 0, interrupted: StepKey | None = None) -> Trigger | None:
        """Run ``steps`` from ``start`` (0-based), then the postchecks; returns the trigger
        that ends execution badly, or None when the postchecks pass. ``interrupted``: the
        step a dead run was in, re-verified before it is run again."""
        steps = self.runbook.model.steps
        for index in range(start, len(steps)):
            step = steps[index]
            key = _key(Phase.STEP, index, step)
            rec = StepRecord(step.name, step.kind, Phase.STEP)
            self.progress.executed = [e for e in self.progress.executed if e.key != key]
            self.progress.executed.append(Executed(key, step, rec))
            if key == interrupted and isinstance(step, ConfigStep) and self._done(step, key):
                rec.status, rec.message = StepStatus.OK, "resumed: effect verified, not repeated"
                with self._step_scope(key, rec, self.ctx.hosts_for(step)):
                    pass
                continue
            self._run_step(step, Phase.STEP, index, rec)
            verdict = self._verdict(step, rec)
            if verdict is not None:
                return verdict
        self.lifecycle.fire(Trigger.STEPS_DONE)
        return self._postchecks()

    def _postchecks(self) -> Trigger | None:
        passed = self._run_all(self.runbook.model.postchecks, Phase.POSTCHECK)
        if passed and self.runbook.model.isolate is not None:
            passed = self._isolate(self.runbook.model.isolate)
        # The interruption is part of the verdict: a probe over its limit fails the drill.
        self.record.probes = self.probes.stop(self.record.steps)
        for problem in self.probes.problems:
            self._note(problem)
        if passed and not self.probes.problems:
            self.lifecycle.fire(Trigger.POSTCHECKS_PASSED)
            return None
        self.lifecycle.fire(Trigger.POSTCHECKS_FAILED)
        return Trigger.POSTCHECKS_FAILED

    def _isolate(self, spec: IsolateSpec) -> bool:
        """The isolation rehearsal, while the probes still run; False: a flow that must
        survive the site broke (or the rehearsal could not be made)."""
        site = spec.site or self.runbook.model.evacuate or "?"
        rec = StepRecord(f"isolate {site} for {spec.for_}", "isolate", Phase.ISOLATE)
        key = StepKey(phase=Phase.ISOLATE, index=1, name=rec.name)
        with self._step_scope(key, rec, []):
            self._apply(rec, self._safe(lambda: self._rehearse(spec), rec))
        return rec.status is not StepStatus.FAILED

    def _rehearse(self, spec: IsolateSpec) -> StepOutcome:
        where = isolation.setup(
            spec, self.runbook.model.evacuate, self.runbook.path.parent, self._catalog()
        )
        devices = None
        if spec.cut:
            devices = DeviceCut(spec, self._run_cut, self._isolation_scope)
        rehearsal = isolation.Rehearsal(
            where, self.ctx, self._note, devices, self.options.isolation_plan
        )
        self.record.isolation = rehearsal.result
        result = rehearsal.run()
        return isolation.outcome(result, self._note)

    def _run_cut(
        self, step: ConfigStep, number: int, revert_after: int
    ) -> tuple[StepKey, StepRecord]:
        """One cut step of a device isolation, committed under its revert timer, unconfirmed."""
        self._isolate_index += 1
        key = StepKey(phase=Phase.ISOLATE, index=self._isolate_index, name=step.name)
        rec = StepRecord(step.name, step.kind, Phase.ISOLATE)
        hosts = self.ctx.hosts_for(step)
        with self._step_scope(key, rec, hosts) as ctx:
            ctx.step.revert_after = revert_after
            self._apply(rec, self._safe(lambda: run_step(step, ctx, hosts), rec))
        return key, rec

    @contextlib.contextmanager
    def _isolation_scope(self, name: str) -> Iterator[StepContext]:
        self._isolate_index += 1
        rec = StepRecord(name, "isolate", Phase.ISOLATE)
        key = StepKey(phase=Phase.ISOLATE, index=self._isolate_index, name=name)
        with self._step_scope(key, rec, []) as ctx:
            yield ctx

    def _catalog(self) -> Path | None:
        if self.options.catalog is not None:
            return self.options.catalog
        flows = self.runbook.model.flows
        return self.runbook.path.parent / flows.catalog if flows is not None else None

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
        spec = self.runbook.model.isolate
        if spec is not None:
            site = spec.site or self.runbook.model.evacuate or "?"
            rec = StepRecord(f"isolate {site} for {spec.for_}", "isolate", Phase.ISOLATE)
            rec.status, rec.message = StepStatus.SKIPPED, "dry-run: listed, not run"
            with self._step_scope(StepKey(phase=Phase.ISOLATE, index=1, name=rec.name), rec, []):
                pass
        self.lifecycle.fire(Trigger.DRY_RUN_DONE if ok else Trigger.DRY_RUN_FAILED)

    # --- recovery -------------------------------------------------------------------

    def _resume(self, recovery: Recovery) -> None:
        state = self.lifecycle.state
        if state in (State.PENDING, State.PRECHECKING):
            # Nothing was changed before the steps: start the drill over, from its prechecks.
            self.record.steps.clear()
            self.progress.executed.clear()
            if state is State.PENDING:
                self.lifecycle.fire(Trigger.START)
            self._drive()
        elif state is State.ROLLING_BACK:
            self._rollback()
        elif state is State.EXECUTING:
            start, interrupted = recovery.next_index(), recovery.interrupted
            self._settle(lambda: self._execute(start, interrupted))
        elif state is State.POSTCHECKING:
            self._settle(self._postchecks)
        else:
            self._note(f"nothing to resume in state {state.value}")

    def _abort(self) -> None:
        state = self.lifecycle.state
        touched = self.recovery is not None and self.recovery.touched
        if state is State.PENDING:
            self.lifecycle.fire(Trigger.START)
            state = self.lifecycle.state
        if state is State.PRECHECKING and not touched:
            self._note("aborted before any change: nothing to roll back")
            self.lifecycle.fire(Trigger.ABORT)
            return
        if state in (State.EXECUTING, State.POSTCHECKING):
            self.lifecycle.fire(Trigger.ABORT)
        elif state in FINAL_STATES and Trigger.ROLL_BACK not in self.lifecycle.allowed():
            self._note(f"nothing to roll back in state {state.value}")
            return
        elif state is not State.ROLLING_BACK:
            # a final state without run_ended, or one left for the operator: roll back again
            self.lifecycle.fire(Trigger.ROLL_BACK)
        self._rollback()

    def _done(self, step: ConfigStep, key: StepKey) -> bool:
        """Re-verify the effect of the step the process died in (never repeat it blindly)."""
        hosts = self.ctx.hosts_for(step)
        rec = StepRecord(f"re-verify {step.name!r}", "check", Phase.REVERIFY)
        with self._step_scope(reverify_key(key), rec, hosts) as ctx:
            outcome = self._safe(lambda: reverify(step, ctx, hosts, rec.name), rec)
            self._apply(rec, outcome)
        self._note(
            f"step {step.name!r} was in progress when the run died: its effect is "
            + ("in place; not repeated" if outcome.ok else "not (fully) in place; running it again")
        )
        return outcome.ok

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
            actions = actions_for(done, changed, self.runbook.hosts_for, run_step)
            for number, action in enumerate(actions):
                rec = StepRecord(action.name, action.kind, Phase.ROLLBACK)
                key = StepKey(phase=Phase.ROLLBACK, index=number, name=action.name, of=done.key)
                with self._step_scope(key, rec, action.hosts) as ctx:
                    self._apply(rec, self._attempt(functools.partial(action.run, ctx), rec))
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

    def _run_step(
        self, step: Step, phase: Phase, index: int, rec: StepRecord | None = None
    ) -> StepRecord:
        rec = rec or StepRecord(step.name, step.kind, phase)
        rec.phase = phase
        key = _key(phase, index, step)
        if step.when_mode is not None and self.runbook.model.mode not in step.when_mode:
            return self._skip(step, phase, index, f"not in mode {self.runbook.model.mode}", rec)
        hosts = self.ctx.hosts_for(step)
        own_timeout = step.kind in ("wait_until", "command")
        with self._step_scope(key, rec, hosts) as ctx:
            # wait_until and command enforce their own timeout; for host steps it stops
            # hosts from starting late (a thread cannot be killed mid-call).
            if step.timeout is not None and not own_timeout:
                ctx.step.deadline = time.monotonic() + float(step.timeout)
            outcome = self._attempt(
                lambda: run_step(step, ctx, hosts),
                rec,
                retries=step.retries,
                hosts=hosts,
                retry=lambda targets: run_step(step, ctx, targets),
            )
            self._apply(rec, outcome)
        return rec

    def _attempt(
        self,
        call: Callable[[], StepOutcome],
        rec: StepRecord,
        retries: int = 0,
        hosts: list[str] | None = None,
        retry: Callable[[list[str]], StepOutcome] | None = None,
    ) -> StepOutcome:
        """Run a step; retry up to ``retries`` times, each time only on the hosts that failed."""
        outcome = self._safe(call, rec)
        tries = 1
        while not outcome.ok and tries <= retries and retry is not None:
            tries += 1
            failing = [h for h in (hosts or []) if outcome.hosts.get(h, HostResult()).failed]
            targets = failing or list(hosts or [])
            again = self._safe(functools.partial(retry, targets), rec)
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
        self, step: Step, phase: Phase, index: int, why: str, rec: StepRecord | None = None
    ) -> StepRecord:
        rec = rec or StepRecord(step.name, step.kind, phase)
        rec.status, rec.message = StepStatus.SKIPPED, why
        with self._step_scope(_key(phase, index, step), rec, self.ctx.hosts_for(step)):
            pass
        rec.status, rec.message = StepStatus.SKIPPED, why
        return rec

    @contextlib.contextmanager
    def _step_scope(self, key: StepKey, rec: StepRecord, hosts: list[str]) -> Iterator[StepContext]:
        """Journal the step BEFORE it runs and its end in ``finally``: an interrupted step
        stays visible as ``interrupted``. Yields the context the step runs in."""
        rec.started = datetime.now(UTC)
        self.record.steps.append(rec)
        scope = StepScope(key, rec)
        self.bus.emit(StepStarted(key, rec, hosts, self.options.dry_run))
        started = time.monotonic()
        try:
            yield self.ctx.within(scope)
        except BaseException:
            rec.status = StepStatus.INTERRUPTED
            rec.message = rec.message or "interrupted"
            raise
        finally:
            rec.ended = datetime.now(UTC)
            log.debug("step %s took %.3fs", key, time.monotonic() - started)
            for host, result in rec.hosts.items():
                if host not in scope.reported:  # local steps, hosts never reached
                    self.bus.emit(HostDone(key, rec, host, result))
            scope.deadline = None
            self.bus.emit(StepEnded(key, rec))

    # --- plumbing -------------------------------------------------------------------

    def _all_steps(self) -> list[Step]:
        model = self.runbook.model
        cut = list(model.isolate.cut) if model.isolate is not None else []
        return [*model.prechecks, *model.steps, *model.postchecks, *cut]

    def _state_changed(self, source: State, dest: State, trigger: Trigger) -> None:
        self.bus.emit(StateChanged(source, dest, trigger))

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


def _key(phase: Phase, index: int, step: Step) -> StepKey:
    return StepKey(phase=phase, index=index + 1, name=step.name)


def _new_record(run_id: str, runbook: LoadedRunbookLike, options: RunOptions) -> RunRecord:
    model = runbook.model
    rto = rto_plan(model)
    return RunRecord(
        run_id=run_id,
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


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
