"""settlement: clears large authorizations and settles the day's batch. Runs in dc1 only: it
was left out of DR because settlement "can wait a day". ``GET /clear`` answers
``settlement@dc1-srv``; a background loop reads the authorization count from ``db`` every
2 s (service-to-service traffic that runs all the time).

Its reads of db leave from its own service address, as every service's calls do.

Run: ``python3 settlement.py ADDRESS PORT``.
"""

from __future__ import annotations

import sys
import threading
import time

import svc
from pgwire import PgError, query
from svc import call_from, me, serve_http

state = {"batch": "none yet"}


def batch_loop() -> None:
    while True:
        try:
            rows = query(
                "db.pay.example", "SELECT count(*) FROM auths", timeout=1, source=svc.SOURCE
            )
            state["batch"] = f"{rows[0][0]} authorizations"
        except (OSError, PgError) as exc:
            state["batch"] = f"db unreachable: {exc}"
        time.sleep(2)


def handle(path: str, args: dict[str, str]) -> tuple[int, str]:
    if path in ("/clear", "/whoami"):
        return 200, me("settlement")
    if path == "/batch":
        return 200, f"{me('settlement')} {state['batch']}"
    return 404, f"{me('settlement')} no such page"


if __name__ == "__main__":
    addresses = sys.argv[1].split(",")
    call_from(addresses[0])
    threading.Thread(target=batch_loop, daemon=True).start()
    serve_http(addresses, int(sys.argv[2]), handle)
