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


def machine_info() -> dict[str, Any]:
    """What every result is recorded with: machine, cores, memory and package versions."""
    import os
    import platform
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in (
        "corpuskit",
        "datatrove",
        "datasketch",
        "rensa",
        "sentencepiece",
        "tokenizers",
        "polars",
        "pyarrow",
        "numpy",
        "datasets",
    ):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = int(fh.readline().split()[1]) / 2**20
    except OSError:
        mem_gb = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": packages,
    }
