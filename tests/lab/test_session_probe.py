"""Session probes on the real lab, to the echo endpoints on app1 (192.0.2.11) and app2
(192.0.2.12) that labs/two-dc starts on port 7007.

* A planned switchover (the shipped dc1-to-dc2 and dc2-to-dc1 runbooks, with session probes
  added) keeps every session: there is no stateful device on the path, and the moves are
  make-before-break.
* Sessions the test kills on purpose (an nftables reject rule on app2 for 7 of the 50
  connections) are counted exactly: the report's count equals the drop in the server's own
  connection table (``ss -tn`` on app2), read by command steps of the same drill.

Serialize lab use: ``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_session_probe.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SESSION_PROBES = """\
  - name: sessions-to-app1
    kind: session
    target: 192.0.2.11
    port: 7007
    sessions: 50
    interval: 100ms
    from: netns:two-dc-client
    max_lost_sessions: 0
  - name: sessions-to-app2
    kind: session
    target: 192.0.2.12
    port: 7007
    sessions: 50
    interval: 100ms
    from: netns:two-dc-client
    max_lost_sessions: 0
"""
# Resets the server side of the first 7 sessions (by client port): a reject in app2's output
# hook answers the echo with a RST to the local socket, so the server's table drops them.
RESET_SCRIPT = """\
set -e
ports=$(ss -Htn state established '( sport = :7007 )' | awk '{print $4}' \\
        | sed 's/.*://' | sort -n | head -7 | paste -sd, -)
echo "resetting client ports $ports"
nft add table inet drill_test_reset
nft add chain inet drill_test_reset out '{ type filter hook output priority 0; }'
nft add rule inet drill_test_reset out tcp sport 7007 tcp dport "{ $ports }" reject with tcp reset
"""
COUNT = ["sh", "-c", "ss -Htn state established '( sport = :7007 )' | wc -l"]


def shipped_with_sessions(name: str, lab: Any, tmp_path: Path) -> Path:
    """A shipped runbook with session probes added and its inventory made absolute."""
    text = (REPO / "runbooks" / name).read_text()
    text = text.replace("inventory: ../labs/two-dc/inventory", f"inventory: {lab.inventory_dir}")
    assert "\nprobes:\n" in text
    text = text.replace("\nprobes:\n", "\nprobes:\n" + SESSION_PROBES, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def run(path: Path, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    report_dir = tmp_path / path.stem
    argv = [sys.executable, "-m", "drill", "run", str(path), "--yes",
            "--report-dir", str(report_dir)]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stderr + done.stdout
    return done.returncode, json.loads(report_file.read_text()), done.stdout + done.stderr


def sessions(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report["probes"] if p["kind"] == "session"}


def test_planned_switchover_and_failback_keep_every_session(lab: Any, tmp_path: Path) -> None:
    code, report, output = run(shipped_with_sessions("dc1-to-dc2.yml", lab, tmp_path), tmp_path)
    try:
        assert code == 0, output
        for probe in sessions(report).values():
            assert probe["sessions_opened"] == 50, probe
            assert probe["sessions_survived"] == 50, probe
            assert probe["sessions_lost"] == 0, probe
            assert probe["sent"] > 50 * 10, probe  # they talked the whole drill
    finally:
        code, report, output = run(shipped_with_sessions("dc2-to-dc1.yml", lab, tmp_path), tmp_path)
    assert code == 0, output
    assert [p["sessions_lost"] for p in sessions(report).values()] == [0, 0]


def test_lost_sessions_agree_with_the_servers_connection_table(lab: Any, tmp_path: Path) -> None:
    script = tmp_path / "reset.sh"
    script.write_text(RESET_SCRIPT)
    runbook = tmp_path / "sessions-reset.yml"
    runbook.write_text(
        f"""\
apiVersion: drill/v1
name: sessions-reset
inventory: {lab.inventory_dir}
probes:
  - name: sessions-to-app2
    kind: session
    target: 192.0.2.12
    sessions: 50
    interval: 100ms
    timeout: 1s
    from: netns:two-dc-client
steps:
  - name: count-before
    kind: command
    from: netns:two-dc-app2
    argv: {json.dumps(COUNT)}
  - name: reset-seven
    kind: command
    from: netns:two-dc-app2
    argv: [sh, {script}]
    rollback:
      - name: undo-reset-seven
        kind: command
        from: netns:two-dc-app2
        argv: [nft, delete, table, inet, drill_test_reset]
  - name: let-them-notice
    kind: pause
    duration: 2s
  - name: count-after
    kind: command
    from: netns:two-dc-app2
    argv: {json.dumps(COUNT)}
  - name: remove-reject-rule
    kind: command
    from: netns:two-dc-app2
    argv: [nft, delete, table, inet, drill_test_reset]
"""
    )
    try:
        code, report, output = run(runbook, tmp_path)
    finally:
        lab.exec("app2", ["nft", "delete", "table", "inet", "drill_test_reset"])
    assert code == 0, output
    steps = {s["name"]: s for s in report["steps"]}

    def counted(step: str) -> int:
        return int(steps[step]["hosts"]["netns:two-dc-app2"]["diff"].strip())

    before, after = counted("count-before"), counted("count-after")
    assert before == 50
    probe = sessions(report)["sessions-to-app2"]
    assert probe["sessions_opened"] == 50
    assert probe["sessions_lost"] == before - after == 7, (before, after, probe)
    assert probe["sessions_survived"] == 43
    # each loss is dated by the message that got no answer: after the rule went in
    cut = datetime.fromisoformat(steps["reset-seven"]["started"].replace("Z", "+00:00"))
    assert all(
        datetime.fromisoformat(x["at"].replace("Z", "+00:00")) >= cut
        for x in probe["session_losses"]
    ), probe["session_losses"]
    assert probe["by_step"]["count-before"]["lost"] == 0
    assert probe["sessions_stalled"] == 7  # the server's side was reset; the client waited
