"""What a program embedding drill may add to ``run``, ``resume`` and ``abort``.

The ``drill`` command passes nothing. A program that calls :func:`drill.cli.app.main` with
observers (the test suite's fault harness, tests/support/faults.py, which kills the process
at chosen journal events) gets them on every run's event bus, after the journal. Nothing
in the environment can add one.
"""

from __future__ import annotations

from dataclasses import dataclass

from drill.engine.events import Observer


@dataclass(frozen=True)
class Extensions:
    observers: tuple[Observer, ...] = ()
