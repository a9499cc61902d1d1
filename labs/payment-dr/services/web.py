"""web: the payment front end. ``GET /?amount=N`` authorizes through ``auth`` and answers
the whole chain, e.g. ``web@dc1-srv auth@dc1-srv db@dc1-srv hsm@dc1-srv``.

Its calls to auth leave from its own instance address (the first ADDRESS, not the VIP).

Run: ``python3 web.py ADDRESS[,ADDRESS...] PORT`` (own address and the service VIP).
"""

from __future__ import annotations

import sys

from svc import CallFailed, call, call_from, me, serve_http

AUTH = "http://auth.pay.example:8080"


def handle(path: str, query: dict[str, str]) -> tuple[int, str]:
    if path == "/whoami":
        return 200, me("web")
    if path != "/":
        return 404, f"{me('web')} no such page"
    amount = query.get("amount", "42")
    if not amount.isdigit():
        return 400, f"{me('web')} amount must be a whole number"
    try:
        chain = call(f"{AUTH}/authorize?amount={amount}", timeout=5)
    except CallFailed as exc:
        return 502, f"{me('web')} auth failed: {exc}"
    return 200, f"{me('web')} {chain}"


if __name__ == "__main__":
    addresses = sys.argv[1].split(",")
    call_from(addresses[0])
    serve_http(addresses, int(sys.argv[2]), handle)
