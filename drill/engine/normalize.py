"""Running configs compared for the restore proof, per platform."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def generic(text: str) -> str:
    """Trailing blanks and blank lines at the end carry no meaning.

    >>> generic("a  \\nb\\n\\n")
    'a\\nb\\n'
    """
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines()) + "\n"


def normalizer_for(platform: str | None) -> Callable[[str], str]:
    if platform == "frr":
        try:
            # Imported by name: the FRR driver is written alongside and may not be there yet.
            module = importlib.import_module("drill.drivers.frr.config")
        except ImportError:
            log.warning("drill.drivers.frr.config is missing: comparing FRR configs verbatim")
            return generic
        normalize = module.normalize_running_config
        return lambda text: str(normalize(text))
    return generic
