"""hsm: the site's hardware security module (a stand-in). ``GET /sign`` answers
``hsm@dc1-srv``. One per site; ``hsm.pay.example`` resolves to the local one in each site.

Run: ``python3 hsm.py ADDRESS PORT``.
"""

from __future__ import annotations

import sys

from svc import me, serve_http


def handle(path: str, query: dict[str, str]) -> tuple[int, str]:
    if path in ("/sign", "/whoami"):
        return 200, me("hsm")
    return 404, f"{me('hsm')} no such page"


if __name__ == "__main__":
    serve_http(sys.argv[1].split(","), int(sys.argv[2]), handle)
