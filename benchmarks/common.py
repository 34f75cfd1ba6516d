"""Shared benchmark helpers: timing, a prepared default build, result records."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """One measured contender of one benchmark."""

    benchmark: str
    contender: str
    seconds: float
    work: float
    unit: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.work / self.seconds if self.seconds else float("inf")


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` runs (after the first, which warms caches)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def default_build(workdir: Path, tokenizer: str = "spm-bpe:4096"):
    """Fetch and build the offline default corpus into ``workdir`` (reused across runs)."""
    from corpuskit import api

    return api.build("python-stdlib", data_dir=workdir, tokenizer=tokenizer, progress=False)
