"""auth: card authorization. ``GET /authorize?amount=N`` records the authorization in ``db``
(the primary, behind db.pay.example), has ``hsm`` sign it, and answers the chain it used:
``auth@dc1-srv db@dc1-srv hsm@dc1-srv``.

Large amounts (>= LARGE) are pre-cleared with ``settlement`` synchronously; settlement runs in
dc1 only. That call is the lab's planted hidden dependency (see the README): the drill's
probes use small amounts and never touch it.

``GET /replication`` answers who the primary streams to (``db@dc1-srv -> db@dc2-srv
streaming``), for the lab's convergence check.

Its calls to hsm, db and settlement leave from its own service address (the first ADDRESS),
so flow records name auth as their client (``auth@dc2 -> settlement@dc1``).

Run: ``python3 auth.py ADDRESS[,ADDRESS...] PORT``.
"""

from __future__ import annotations

import sys

import svc
from pgwire import PgError, query
from svc import CallFailed, call, call_from, me, serve_http

DB = "db.pay.example"
HSM = "http://hsm.pay.example:8200"
SETTLEMENT = "http://settlement.pay.example:8300"
LARGE = 1000


def authorize(amount: int) -> tuple[int, str]:
    try:
        signed = call(f"{HSM}/sign?amount={amount}", timeout=2)
    except CallFailed as exc:
        return 502, f"{me('auth')} hsm failed: {exc}"
    try:
        rows = query(
            DB,
            f"INSERT INTO auths (amount, served_by) VALUES ({amount}, '{me('auth')}') "
            "RETURNING current_setting('cluster_name')",
            source=svc.SOURCE,
        )
    except (OSError, PgError) as exc:
        return 503, f"{me('auth')} db failed: {exc}"
    chain = f"{me('auth')} {rows[0][0]} {signed}"
    if amount >= LARGE:
        try:
            chain += " " + call(f"{SETTLEMENT}/clear?amount={amount}", timeout=2)
        except CallFailed as exc:
            return 504, f"{me('auth')} settlement failed: {exc}"
    return 200, chain


def replication() -> tuple[int, str]:
    try:
        rows = query(
            DB,
            "SELECT current_setting('cluster_name'), application_name, state "
            "FROM pg_stat_replication",
            source=svc.SOURCE,
        )
    except (OSError, PgError) as exc:
        return 503, f"{me('auth')} db failed: {exc}"
    if not rows:
        return 503, "no standby connected"
    return 200, " ".join(f"{r[0]} -> {r[1]} {r[2]}" for r in rows)


def handle(path: str, args: dict[str, str]) -> tuple[int, str]:
    if path == "/authorize":
        amount = args.get("amount", "42")
        if not amount.isdigit():
            return 400, f"{me('auth')} amount must be a whole number"
        return authorize(int(amount))
    if path == "/replication":
        return replication()
    if path == "/whoami":
        return 200, me("auth")
    return 404, f"{me('auth')} no such page"


if __name__ == "__main__":
    addresses = sys.argv[1].split(",")
    call_from(addresses[0])
    serve_http(addresses, int(sys.argv[2]), handle)
