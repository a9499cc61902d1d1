"""The flows check for a loaded runbook: its ``evacuate`` and ``flows.catalog`` (or the
command line's overrides). Shared by ``drill flows check`` and ``drill plan``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from drill.flows.catalog import load_catalog
from drill.flows.check import CheckResult, check, probe_targets

log = logging.getLogger(__name__)


def run_check(
    loaded: Any,
    runbook_path: Path,
    *,
    catalog_override: Path | None = None,
    site_override: str | None = None,
) -> CheckResult | None:
    """None when neither the runbook nor the flags name both a site and a catalog."""
    model = loaded.model
    site = site_override or getattr(model, "evacuate", None)
    flows = getattr(model, "flows", None)
    catalog_path = catalog_override
    if catalog_path is None and flows is not None:
        catalog_path = runbook_path.parent / flows.catalog  # relative to the runbook
    if site is None or catalog_path is None:
        return None
    catalog = load_catalog(catalog_path)
    return check(catalog, site, probe_targets(model, dict(getattr(loaded, "vars", {}) or {})))
