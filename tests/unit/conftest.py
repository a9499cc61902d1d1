"""Shared by the unit tests: the fake NAPALM driver package ``engine_data``.

pytest's importlib mode puts no test directory on sys.path, so the package is registered
here once, before any test module imports it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _register_engine_data() -> None:
    if "engine_data" in sys.modules:
        return
    here = Path(__file__).parent / "engine_data"
    spec = importlib.util.spec_from_file_location(
        "engine_data", here / "__init__.py", submodule_search_locations=[str(here)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_data"] = module
    spec.loader.exec_module(module)


_register_engine_data()
