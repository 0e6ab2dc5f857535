"""Shared helpers for the benchmark scripts: where the shared data is, peak memory, output."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KQA_SHARED", REPO.parent / "shared"))
METAQA = SHARED / "data" / "metaqa"


def require_metaqa() -> Path:
    """The MetaQA folder, or exit cleanly (status 0) saying why the benchmark is skipped."""
    if not (METAQA / "kb.txt").is_file():
        print(f"skipped: MetaQA not found at {METAQA} (expected ../shared/data/metaqa beside the repo)")
        sys.exit(0)
    return METAQA


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    yield box
    box.append(time.perf_counter() - start)


def progress_line(key: str, value: Any) -> None:
    """One figure as soon as it is measured (on stderr, so --json output stays clean): long
    benchmarks should not hold everything back until the end."""
    print(f"  {key}: {value}", file=sys.stderr, flush=True)


def report(title: str, rows: list[tuple[str, Any]], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        print(json.dumps({"benchmark": title, **{k: v for k, v in rows}, **(extra or {})}, indent=2, default=str))
        return
    print(f"== {title} ==")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        shown = f"{value:,.3f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else value)
        print(f"{key:<{width}}  {shown}")


class Rows(list):  # type: ignore[type-arg]
    """Report rows that are also printed as they are added."""

    def append(self, row: tuple[str, Any]) -> None:  # type: ignore[override]
        progress_line(*row)
        super().append(row)
