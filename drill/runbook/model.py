"""The runbook model (apiVersion drill/v1): the one definition the loader, the JSON Schema,
the planner and the engine share. Field names here are the YAML keys users write."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drill.names import MAX_NAME, name_problem
from drill.runbook.durations import Duration, positive

# Counts are strict integers: YAML `true` or `"3"` is a mistake, not 1 or 3.
StrictCount = Annotated[int, Field(strict=True)]
Bound = Annotated[float, Field(allow_inf_nan=False)]


def _valid_name(value: str, what: str) -> str:
    problem = name_problem(value, what)
    if problem:
        raise ValueError(problem)
    return value


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a runbook must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- assertions -----------------------------------------------------------------------

Scalar = str | int | float | bool | None


class Predicate(Strict):
    """Comparisons applied to one value. Several keys in one predicate must all hold."""

    equals: Any = None
    not_equals: Any = None
    tolerance: str | float | None = Field(
        default=None, description="for numeric equals: absolute (5) or relative ('10%')"
    )
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    regex: str | None = None
    lt: Bound | None = None
    le: Bound | None = None
    gt: Bound | None = None
    ge: Bound | None = None
    range: tuple[Bound, Bound] | None = Field(default=None, description="inclusive [low, high]")
    exists: bool | None = None

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("tolerance is a number or a percentage, not true/false")
        return value

    @field_validator("tolerance")
    @classmethod
    def _tolerance_form(cls, value: str | float | None) -> str | float | None:
        if isinstance(value, str):
            if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,6})?%", value.strip(), re.ASCII):
                raise ValueError(f"tolerance {value!r}: use a number (absolute) or e.g. '10%'")
            if float(value.strip()[:-1]) > 100:
                raise ValueError(f"tolerance {value!r}: a relative tolerance is at most 100%")
        if isinstance(value, int | float):
            # .inf or .nan would make every `equals` hold: a check that proves nothing.
            if not math.isfinite(value):
                raise ValueError("tolerance must be a finite number")
            if value < 0:
                raise ValueError("tolerance must not be negative")
        return value

    @field_validator("range")
    @classmethod
    def _range_order(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"range [{value[0]:g}, {value[1]:g}]: low is above high")
        return value

    def _check_tolerance(self) -> None:
        if self.tolerance is not None and "equals" not in self.model_fields_set:
            raise ValueError("'tolerance' applies to 'equals' only")

    @model_validator(mode="after")
    def _not_empty(self) -> Predicate:
        if not self.model_fields_set:
            raise ValueError("a predicate needs at least one comparison")
        self._check_tolerance()
        return self


class Assertion(Predicate):
    """One assertion over a getter result.

    ``path`` is dotted, ``*`` matches every key/index at that level (``global.peers.*.is_up``).
    Without a quantifier the predicate applies to the single value at ``path``; with
    ``all``/``any`` it applies to every value matched; ``count`` compares how many values
    matched (or the length of the collection at ``path``) with a predicate.
    """

    path: str = ""
    all: Predicate | None = None
    any: Predicate | None = None
    count: Predicate | None = None
    message: str | None = Field(default=None, description="shown when the assertion fails")

    @model_validator(mode="after")
    def _not_empty(self) -> Assertion:
        own = self.model_fields_set - {"path", "message", "all", "any", "count"}
        quantifiers = [q for q in ("all", "any", "count") if q in self.model_fields_set]
        if len(quantifiers) > 1:
            raise ValueError(f"use one of all/any/count, not {', '.join(quantifiers)}")
        if quantifiers and own:
            raise ValueError(f"put comparisons inside '{quantifiers[0]}', not beside it")
        if not quantifiers and not own:
            raise ValueError("an assertion needs a comparison or one of all/any/count")
        self._check_tolerance()
        return self


# --- steps ----------------------------------------------------------------------------

OnFailure = Literal["rollback", "continue", "stop"]
Vantage = Annotated[
    str,
    Field(
        description=(
            "where a check/command/probe runs from: 'local' (this host), 'netns:NAME' "
            "(a Linux network namespace), or 'lab:LABDIR:NODE' (a node of a drill lab)"
        )
    ),
]


class CheckSpec(Strict):
    """What to read and what must hold. Used by check and wait_until steps and as a
    config step's ``check``."""

    getter: str | None = Field(
        default=None, description="NAPALM getter name, e.g. get_bgp_neighbors, or 'cli'"
    )
    args: dict[str, Any] = Field(default_factory=dict, description="getter keyword arguments")
    commands: list[str] | None = Field(
        default=None, description="for getter 'cli': commands whose JSON output is checked"
    )
    http: str | None = Field(default=None, description="URL fetched from the vantage point")
    traceroute: str | None = Field(
        default=None, description="destination traced from the vantage point"
    )
    from_: Vantage | None = Field(default=None, alias="from")
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    avoid_site: str | None = Field(
        default=None,
        description="traceroute only: fail when a hop belongs to a host with this 'site'",
    )


class StepBase(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = ""
    on: list[str] = Field(
        default_factory=list, description="targets or host names; empty for local steps"
    )
    timeout: Duration | None = None
    retries: StrictCount = Field(default=0, ge=0, le=100)
    on_failure: OnFailure = "rollback"
    when_mode: list[Literal["planned", "unplanned", "rehearsal"]] | None = Field(
        default=None, description="run only in these modes"
    )

    @field_validator("on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value, "step name")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Duration | None) -> Duration | None:
        return positive(value)


class ConfirmSpec(Strict):
    timeout: Duration

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Duration) -> Duration | None:
        return positive(value)


class ConfigStep(StepBase):
    kind: Literal["config"]
    mode: Literal["merge", "replace"] = "merge"
    config: str | None = Field(default=None, description="inline config (Jinja2 template)")
    template: str | None = Field(default=None, description="template file, relative to runbook")
    rollback: Literal["auto", "none"] | list[Step] = "auto"
    batch: StrictCount | None = Field(default=None, ge=1)
    check: CheckSpec | None = None
    confirm: ConfirmSpec | None = None
    max_removed: str = Field(
        default="50%",
        pattern=r"^(100|[0-9]{1,2})%$",
        description="replace only: refuse a candidate that would remove more than this share "
        "of the running config's lines",
    )
    allow_wipe: bool = Field(
        default=False,
        strict=True,
        description="replace only: opt out of the replace safety rules (an empty candidate, "
        "or one that removes more than max_removed, is then committed)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ConfigStep:
        if (self.config is None) == (self.template is None):
            raise ValueError("a config step needs exactly one of 'config' or 'template'")
        return self


class CheckStep(StepBase, CheckSpec):
    kind: Literal["check"]


class WaitUntilStep(StepBase, CheckSpec):
    kind: Literal["wait_until"]
    interval: Duration = Field(default_factory=lambda: Duration.parse("1s"))
    timeout: Duration = Field(default_factory=lambda: Duration.parse("60s"))

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: Duration) -> Duration | None:
        return positive(value)


class ValidateStep(StepBase):
    kind: Literal["validate"]
    file: str = Field(description="NAPALM validation file, relative to the runbook")


class PauseStep(StepBase):
    kind: Literal["pause"]
    duration: Duration


class ApprovalStep(StepBase):
    kind: Literal["approval"]
    prompt: str = "Continue?"


class CommandStep(StepBase):
    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    from_: Vantage | None = Field(default=None, alias="from")
    read_only: bool = Field(default=False, description="runs in dry-run too")
    rollback: Literal["none"] | list[Step] = "none"


class FaultStep(StepBase):
    """Inject or clear faults on a drill lab (drill.lab.faults): an unplanned failure, e.g. a
    whole site blackholed at once. On real networks the same runbook shuts interfaces in a
    config step under commit-confirm instead."""

    kind: Literal["fault"]
    lab: str = Field(description="lab directory or topology file, relative to the runbook")
    action: Literal["blackhole", "down", "clear"]
    nodes: list[str] = Field(default_factory=list, description="every link of these nodes")
    links: list[str] = Field(default_factory=list, description="links as NODE:NODE")
    rollback: Literal["auto", "none"] = Field(
        default="auto", description="auto: a rollback clears the faults this step injected"
    )

    @model_validator(mode="after")
    def _targets(self) -> FaultStep:
        if self.action != "clear" and not (self.nodes or self.links):
            raise ValueError(f"a fault step with action {self.action} needs 'nodes' or 'links'")
        return self


Step = Annotated[
    ConfigStep
    | CheckStep
    | WaitUntilStep
    | ValidateStep
    | PauseStep
    | ApprovalStep
    | CommandStep
    | FaultStep,
    Field(discriminator="kind"),
]
STEP_KINDS = (
    "config",
    "check",
    "wait_until",
    "validate",
    "pause",
    "approval",
    "command",
    "fault",
)

# --- probes ---------------------------------------------------------------------------


class _Named(Strict):
    name: str = Field(max_length=MAX_NAME)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value, "probe name")


class PacketProbe(_Named):
    kind: Literal["packet"]
    target: str = Field(description="destination address")
    protocol: Literal["icmp", "udp"] = "icmp"
    port: StrictCount | None = Field(default=None, ge=1, le=65535)
    rate: StrictCount = Field(default=1000, ge=1, le=20000, description="packets per second")
    from_: Vantage = Field(default="local", alias="from")
    max_loss: StrictCount | None = Field(
        default=None, ge=0, description="packets; exceeding it fails"
    )
    max_gap: Duration | None = None


class ServiceProbe(_Named):
    kind: Literal["service"]
    url: str
    rate: StrictCount = Field(default=20, ge=1, le=1000, description="requests per second")
    timeout: Duration = Field(default_factory=lambda: Duration.parse("1s"))
    from_: Vantage = Field(default="local", alias="from")
    max_loss: StrictCount | None = Field(default=None, ge=0, description="failed requests")
    max_gap: Duration | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Duration) -> Duration | None:
        return positive(value)


class SessionProbe(_Named):
    """Long-lived TCP sessions to an echo endpoint at a fixed address (docs/probes.md)."""

    kind: Literal["session"]
    target: str = Field(description="echo endpoint address: a server's own, not a moving VIP")
    port: StrictCount = Field(default=7007, ge=1, le=65535)
    sessions: StrictCount = Field(default=50, ge=1, le=1000, description="connections kept open")
    interval: Duration = Field(
        default_factory=lambda: Duration.parse("100ms"), description="between two messages"
    )
    timeout: Duration = Field(
        default_factory=lambda: Duration.parse("3s"), description="no answer by then: stalled"
    )
    from_: Vantage = Field(default="local", alias="from")
    max_lost_sessions: StrictCount | None = Field(
        default=None, ge=0, description="exceeding it fails"
    )

    @field_validator("interval", "timeout")
    @classmethod
    def _positive(cls, value: Duration) -> Duration:
        if float(value) <= 0:
            raise ValueError("must be longer than 0")
        return value


Probe = Annotated[PacketProbe | ServiceProbe | SessionProbe, Field(discriminator="kind")]

# --- the runbook ----------------------------------------------------------------------


class TargetSelector(Strict):
    """Hosts selected by name, group, or inventory data; all given criteria must match."""

    hosts: list[str] | None = None
    groups: list[str] | None = None
    data: dict[str, Any] | None = Field(default=None, description="e.g. {site: dc1, role: edge}")


class FlowsRef(Strict):
    catalog: str = Field(description="flow catalog (drill flows catalog), relative to the runbook")


class BfdTimers(Strict):
    interval: Duration = Field(description="the slower side's negotiated interval")
    multiplier: StrictCount = Field(default=3, ge=1, le=255)


class VrrpTimers(Strict):
    advert: Duration = Field(description="advertisement interval")
    priority: StrictCount = Field(
        default=100, ge=1, le=254, description="the backup that takes over"
    )


class RtoBound(Strict):
    """The physical bound of an unplanned failover: the slowest failure detection (they run
    in parallel) plus what must follow it (route computation, FIB, gratuitous ARP)."""

    bfd: BfdTimers | None = None
    vrrp: VrrpTimers | None = None
    bgp_hold: Duration | None = Field(default=None, description="detection without BFD")
    plus: Duration = Field(default_factory=lambda: Duration.parse("0ms"))

    @model_validator(mode="after")
    def _some_detection(self) -> RtoBound:
        if self.bfd is None and self.vrrp is None and self.bgp_hold is None:
            raise ValueError("a bound needs at least one of bfd, vrrp, bgp_hold")
        return self


class RtoSpec(Strict):
    """What the drill's recovery time is compared with (docs/probes.md, "RTO vs bound")."""

    target: Duration | None = Field(default=None, description="the objective")
    probe: str | None = Field(
        default=None, description="probe whose interruption is measured (default: service)"
    )
    after: str | None = Field(
        default=None, description="step that injects the failure: measure from its start"
    )
    before: str | None = Field(
        default=None, description="measure interruptions that start before this step"
    )
    bound: Duration | RtoBound | None = None


class IsolateSpec(Strict):
    """The isolation rehearsal (docs/flows.md, "Isolation rehearsal"): after the postchecks,
    cut ``site`` off silently for ``for`` while every probe runs, plus one generated probe per
    cataloged flow that must survive without the site; a required flow that breaks is a
    hidden dependency and fails the drill. The cut always lifts by itself: in a lab, by a
    timer inside the lab's namespaces; on devices, by the driver's revert timer of each cut
    step's commit, which drill never confirms."""

    site: str | None = Field(default=None, description="default: the runbook's evacuate")
    for_: Duration = Field(alias="for", description="how long the site stays cut off")
    lab: str | None = Field(
        default=None,
        description="drill lab directory, relative to the runbook: the lab cuts the site's "
        "inter-site links with a timer inside its namespaces",
    )
    cut: list[ConfigStep] = Field(
        default_factory=list,
        description="devices: config steps that cut the site off, each committed with the "
        "driver's revert timer set to `for` and never confirmed: every device reverts by itself",
    )
    vantage: dict[str, Vantage] = Field(
        default_factory=dict,
        description="inventory host -> where that host's flows are probed from "
        "(default with lab: the host's lab node)",
    )
    baseline: Duration = Field(
        default_factory=lambda: Duration.parse("3s"),
        description="flow probes run this long before the cut, to know they worked",
    )
    recover: Duration = Field(
        default_factory=lambda: Duration.parse("30s"),
        description="after the cut lifts, how long broken flows may take to answer again",
    )
    interval: Duration = Field(
        default_factory=lambda: Duration.parse("1s"),
        description="one attempt per generated flow probe per interval",
    )
    timeout: Duration = Field(
        default_factory=lambda: Duration.parse("1s"), description="one attempt's timeout"
    )
    max_flows: StrictCount = Field(default=500, ge=1, le=10_000)

    @field_validator("for_", "recover", "interval", "timeout")
    @classmethod
    def _isolation_positive(cls, value: Duration) -> Duration:
        if float(value) <= 0:
            raise ValueError("must be longer than 0")
        return value

    @model_validator(mode="after")
    def _timeout_fits(self) -> IsolateSpec:
        if (self.lab is None) == (not self.cut):
            raise ValueError(
                "an isolation needs exactly one of 'lab' (a drill lab cuts the site) or 'cut' "
                "(config steps for devices, reverted by their own timers)"
            )
        if float(self.timeout) > float(self.interval):
            raise ValueError("timeout must not be longer than interval")
        if 2 * float(self.interval) > float(self.for_):
            # one attempt, or none, inside the cut proves nothing either way
            raise ValueError(
                "interval must be at most half of 'for' (two attempts per flow during the cut)"
            )
        return self


class Runbook(Strict):
    api_version: Literal["drill/v1"] = Field(alias="apiVersion")
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    owner: str = ""
    rto: Duration | RtoSpec | None = None
    mode: Literal["planned", "unplanned", "rehearsal"] = "planned"
    inventory: str | None = Field(
        default=None, description="nornir config file or SimpleInventory dir, relative"
    )
    targets: dict[str, TargetSelector] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    probes: list[Probe] = Field(default_factory=list)
    prechecks: list[Step] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    postchecks: list[Step] = Field(default_factory=list)
    evacuate: str | None = Field(
        default=None,
        description="the site this runbook empties; drill flows check and plan "
        "list recorded flows that would still need it",
    )
    flows: FlowsRef | None = None
    isolate: IsolateSpec | None = None


ConfigStep.model_rebuild()
CommandStep.model_rebuild()
Runbook.model_rebuild()
