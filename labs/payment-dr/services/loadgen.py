"""Background load: GET ``URL`` at ``RATE`` requests/s forever, like the lab's customers.

Outcomes are counted in ``--stats FILE`` (``ok N failed M last ...``, rewritten every second)
so a person can see the service traffic the lab carries; nothing depends on it.

Run: ``python3 loadgen.py URL RATE [--stats FILE]``.
"""

from __future__ import annotations

import sys
import time
import urllib.request


def main() -> None:
    url, rate = sys.argv[1], float(sys.argv[2])
    stats = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--stats" else None
    ok = failed = 0
    last = ""
    written = time.monotonic()
    while True:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                last = answer.read().decode().strip()
            ok += 1
        except Exception as exc:  # count and carry on: load never stops
            failed += 1
            last = f"{type(exc).__name__}: {exc}"
        if stats and time.monotonic() - written >= 1:
            with open(stats, "w") as out:
                out.write(f"ok {ok} failed {failed} last {last}\n")
            written = time.monotonic()
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
