"""Catalog large flows files with several processes: each aggregates a byte range of a file
(cut at line starts), the parent merges the partial results in file order. Small files stay
in one process: forking costs more than it saves below PARALLEL_MIN_BYTES."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from drill.errors import Diagnostic, InputError
from drill.flows.catalog import CatalogBuilder, Partial
from drill.flows.records import read_jsonl
from drill.flows.services import ServiceTable

log = logging.getLogger(__name__)

PARALLEL_MIN_BYTES = 64 * 1024 * 1024
MAX_WORKERS = 4
_TABLE: ServiceTable | None = None  # set before fork; workers inherit it


def catalog_files(
    paths: Sequence[Path], table: ServiceTable, workers: int | None = None
) -> CatalogBuilder:
    builder = CatalogBuilder(table)
    count = workers if workers is not None else min(MAX_WORKERS, os.cpu_count() or 1)
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(
                [Diagnostic(str(path), 1, 1, f"cannot read file: {exc.strerror}")]
            ) from None
        if count < 2 or size < PARALLEL_MIN_BYTES:
            builder.add_all(read_jsonl(path))
            continue
        for result in _in_parallel(path, table, _ranges(path, size, count)):
            if isinstance(result, list):
                raise InputError(result)
            builder.merge(result)
    return builder


def _in_parallel(
    path: Path, table: ServiceTable, ranges: list[tuple[int, int]]
) -> list[Partial | list[Diagnostic]]:
    global _TABLE
    _TABLE = table
    log.debug("%s: %d workers", path, len(ranges))
    with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
        return pool.starmap(_work, [(str(path), start, end) for start, end in ranges])


def _ranges(path: Path, size: int, count: int) -> list[tuple[int, int]]:
    """``count`` byte ranges of about equal size, each starting at a line start."""
    starts = [0]
    with path.open("rb") as handle:
        for k in range(1, count):
            handle.seek(size * k // count)
            handle.readline()  # to the start of the next line
            starts.append(max(handle.tell(), starts[-1]))
    ends = [*starts[1:], size]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


def _work(path: str, start: int, end: int) -> Partial | list[Diagnostic]:
    assert _TABLE is not None
    builder = CatalogBuilder(_TABLE)
    try:
        builder.add_all(read_jsonl(Path(path), start, end))
    except InputError as exc:
        # line numbers counted from `start`: make them the file's
        before = _lines_before(Path(path), start)
        return [replace(d, line=d.line + before) for d in exc.diagnostics]
    return builder.partial()


def _lines_before(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as handle:
        while offset > 0:
            chunk = handle.read(min(offset, 1 << 22))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count
