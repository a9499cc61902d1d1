"""The hostile-input corpus (tests/data/hostile/*.yml): every case runs ``drill`` in its own
process with a time limit and a memory limit (RLIMIT_AS) and must end with the expected exit
code, no traceback, no secret in its output, within its limits.

Each case is a forked child of this process (drill is imported once, a case costs
milliseconds instead of an interpreter start): the child sets its limits, changes to the
case's directory, points stdin/stdout/stderr at files and calls drill's real entry point.
Hosts are on 127.0.0.1 where nothing listens; no device is needed.

Cases under ``journal/`` (a damaged journal: drill status shows the run ``corrupt``,
resume/abort refuse with exit 2) and ``hooks/`` (test-only variables do nothing in a
production run) are in the same table.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import napalm  # noqa: F401
import nornir  # noqa: F401
import nornir_napalm.plugins.connections  # noqa: F401
import yaml
from nornir.plugins.runners import ThreadedRunner  # noqa: F401

# Imported here, once: forked children share them instead of importing per case.
import drill.cli.app
import drill.cli.recovery_commands
import drill.cli.run_commands
import drill.engine.recovery
import drill.engine.runner
import drill.report.console
import drill.report.junit
import drill.report.report
import drill.runbook.loader  # noqa: F401

CORPUS = Path(__file__).parent.parent / "data" / "hostile"
SECRET = "Hostile-Secret-7q"
TIMEOUT_S = 20.0
MEMORY_BYTES = 1536 * 1024 * 1024  # on top of what this process has mapped already
HEADER = """apiVersion: drill/v1
name: hostile
inventory: inv
targets:
  edges: {hosts: [r1, r2]}
"""
INVENTORY = {
    "hosts.yaml": (
        "r1:\n  hostname: 127.0.0.1\n  port: 1\n  groups: [edge]\n"
        "r2:\n  hostname: 127.0.0.1\n  port: 1\n  groups: [edge]\n"
    ),
    "groups.yaml": "edge:\n  data: {role: edge}\n",
    "defaults.yaml": (
        "platform: frr\nusername: admin\npassword: ${env:HOSTILE_PW}\ndata: {site: dc1}\n"
    ),
}


@dataclass
class Case:
    id: str
    source: str
    expect: int
    argv: list[str] = field(default_factory=lambda: ["validate", "rb.yml"])
    runbook: str | None = None
    raw: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    binary: dict[str, str] = field(default_factory=dict)  # name -> latin-1 text
    # name -> [[text, count], ...]: big files kept small here; {i}, {j} (= i + 1) and
    # {k} (= (i + 1) % count) in a text are replaced by its repetition's numbers
    gen: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    inventory: dict[str, str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    fifo: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)
    stdin: str | None = None
    out_has: str | None = None
    out_lacks: str | None = None
    json_out: bool = False  # stdout must be one JSON document (run --json)
    secret: str = SECRET
    chown: dict[str, int] = field(default_factory=dict)  # path -> uid, before the run
    absent: list[str] = field(default_factory=list)  # must not exist afterwards
    same: dict[str, str] = field(default_factory=dict)  # must still hold this text
    modes_after: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    code: int | None
    output: str  # stdout then stderr
    seconds: float
    timed_out: bool
    root: Path
    stdout: str = ""


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.rglob("*.yml")):
        if path.parent.name in ("files",):
            continue
        for entry in yaml.safe_load(path.read_text()) or []:
            source = str(path.relative_to(CORPUS))
            cases.append(Case(source=source, **entry))
    return cases


def _write(root: Path, case: Case) -> None:
    inventory = INVENTORY if case.inventory is None else case.inventory
    (root / "inv").mkdir()
    for name, text in inventory.items():
        (root / "inv" / name).write_text(text)
    if case.runbook is not None:
        (root / "rb.yml").write_text(HEADER + case.runbook)
    if case.raw is not None:
        (root / "rb.yml").write_text(case.raw)
    for name in case.dirs:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, text in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name, text in case.binary.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("latin-1"))
    for name, parts in case.gen.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("".join(_expand(text, count) for text, count in parts))
    for name in case.fifo:
        os.mkfifo(root / name)
    for name, target in case.symlinks.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.replace("{root}", str(root)), root / name)
    for name, mode in case.modes.items():
        os.chmod(root / name, mode)
    for name, uid in case.chown.items():
        os.chown(root / name, uid, -1)


def _expand(text: str, count: int) -> str:
    if not any(f"{{{v}}}" in text for v in "ijk"):
        return text * count
    return "".join(
        text.replace("{i}", str(i)).replace("{j}", str(i + 1)).replace("{k}", str((i + 1) % count))
        for i in range(count)
    )


def _child(root: Path, case: Case) -> None:
    """In the forked child: limits, directory, environment, files; then drill's main()."""
    code = 1
    try:
        os.setsid()
        mapped = _mapped_bytes()
        limit = mapped + MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (int(TIMEOUT_S), int(TIMEOUT_S) + 1))
        os.chdir(root)
        stdin = "/dev/zero" if case.stdin == "zero" else "/dev/null"
        fd = os.open(stdin, os.O_RDONLY)
        os.dup2(fd, 0)
        out = os.open(root / "stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(root / "stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        env = {
            "DRILL_STATE_DIR": str(root / "state"),
            "HOSTILE_PW": SECRET,
            "HOME": str(root),
        }
        env.update({k: v.replace("{root}", str(root)) for k, v in case.env.items()})
        os.environ.update(env)
        sys.argv = ["drill", *[a.replace("{root}", str(root)) for a in case.argv]]
        from drill.cli.app import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _mapped_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_case(base: Path, case: Case) -> Outcome:
    root = base / case.id
    root.mkdir()
    _write(root, case)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(root, case)
    timed_out = False
    status = 0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > TIMEOUT_S:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    seconds = time.monotonic() - started
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    stdout, stderr = (_text(root / name) for name in ("stdout.txt", "stderr.txt"))
    return Outcome(code, stdout + stderr, seconds, timed_out, root, stdout)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def problems(case: Case, outcome: Outcome) -> list[str]:
    found = []
    if outcome.timed_out:
        found.append(f"hung (killed after {TIMEOUT_S:g}s)")
    elif outcome.code != case.expect:
        found.append(f"exit {outcome.code}, expected {case.expect}")
    found += _output_problems(case, outcome.output)
    found += _files_problems(case, outcome.root)
    if case.json_out:
        try:
            summary = json.loads(outcome.stdout)
        except ValueError:
            found.append("stdout is not JSON")
        else:
            if not isinstance(summary, dict) or not {"run_id", "outcome"} <= set(summary):
                found.append("JSON summary lost its keys")
    return found


def _output_problems(case: Case, output: str) -> list[str]:
    checks = [
        ("Traceback (most recent call last)" in output, "traceback"),
        ("MemoryError" in output, "memory limit hit"),
        (bool(case.secret) and case.secret in output, "secret in the output"),
        ("\x1b" in output, "raw ESC in the output"),
        (case.out_has is not None and case.out_has not in output, f"lacks {case.out_has!r}"),
        (case.out_lacks is not None and case.out_lacks in output, f"has {case.out_lacks!r}"),
    ]
    return [problem for failed, problem in checks if failed]


def _files_problems(case: Case, root: Path) -> list[str]:
    found = [f"{name} was created" for name in case.absent if os.path.lexists(root / name)]
    for name, text in case.same.items():
        if _text(root / name) != text:
            found.append(f"{name} was changed")
    for name, mode in case.modes_after.items():
        actual = stat.S_IMODE(os.stat(root / name).st_mode)
        if actual != mode:
            found.append(f"{name} has mode {actual:04o}, expected {mode:04o}")
    return found


def run_all(base: Path, cases: list[Case]) -> dict[str, tuple[Outcome, list[str]]]:
    # Forks from worker threads: each child only runs drill's main() and exits.
    workers = max(2, min(8, (os.cpu_count() or 2) * 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda c: run_case(base, c), cases))
    return {c.id: (o, problems(c, o)) for c, o in zip(cases, outcomes, strict=True)}


ALL = load_cases()


def test_corpus_is_big_and_unique() -> None:
    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ALL) >= 150
    classes = {c.source.split("-")[0] for c in ALL if "/" not in c.source}
    assert len(classes) >= 8  # every class has its file; hooks and journals have folders


def test_hostile_inputs_held(tmp_path: Path) -> None:
    """ONE table: every case's exit code, no traceback, no secret, no hang, no blow-up."""
    results = run_all(tmp_path, ALL)
    failed = {cid: (o, p) for cid, (o, p) in results.items() if p}
    report = "\n".join(
        f"{cid}: {', '.join(p)} [{o.seconds:.1f}s]\n    {o.output.strip()[-300:]!r}"
        for cid, (o, p) in sorted(failed.items())
    )
    assert not failed, f"{len(failed)} of {len(ALL)} hostile cases not held:\n{report}"


def test_a_case_that_breaks_the_rules_is_caught(tmp_path: Path) -> None:
    """The harness itself: a wrong expected code, a hang and a leak are each reported."""
    wrong = Case(id="wrong", source="self", expect=0, argv=["validate", "nope.yml"])
    outcome = run_case(tmp_path, wrong)
    assert problems(wrong, outcome) == ["exit 2, expected 0"]
    leak = Case(id="leak", source="self", expect=2, argv=["validate", "nope.yml"], secret="nope")
    assert "secret in the output" in problems(leak, run_case(tmp_path, leak))
    assert stat.S_ISDIR(os.stat(tmp_path / "wrong").st_mode)


def hostile_counts() -> dict[str, Any]:
    """For the README row: cases per file."""
    counts: dict[str, int] = {}
    for case in ALL:
        counts[case.source] = counts.get(case.source, 0) + 1
    return counts
