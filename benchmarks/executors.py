"""Local vs Ray executor on the same machine and input: the overhead of Ray, for fetch and build.

Two measurements, each with the same four contenders side by side in one run:

- ``fetch``: the many-file fetch (``corpuskit fetch NAME --executor ... --workers ...``) of
  ``python-docs`` (every standard-library module parsed with ``ast`` for its docstrings: reading
  is CPU-bound) and ``python-stdlib`` (about 1,800 files read and decoded: reading is cheap, the
  driver's zstd compression dominates), 1 MB raw shards, ``--force`` every time;
- ``build``: ``corpuskit build python-stdlib`` from those raw shards into a fresh clean and token
  artifact, with exact and near dedup and decontamination on (every phase runs).

Contenders:

- ``local x1``: ``--workers 1``: everything in this process (fetch's default);
- ``local x2``: two worker processes (spawned for every command);
- ``ray x2 (warm)``: Ray tasks on a 2-CPU Ray instance started before the clock, as on a
  running cluster (``--address auto``): the cost of scheduling through Ray;
- ``ray x2 (cold)``: ``--executor ray --workers 2`` with no cluster: the command starts a
  private Ray instance and stops it, which is what a one-off command costs.

Every contender's output (raw shards and manifest; clean and token artifacts) is checked to be
byte-identical to ``local x1``'s. ``ratio`` is seconds divided by ``local x1``'s seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Result, best_of

CONFIG: dict[str, Any] = {
    "tokenizer": "spm-bpe:4096",
    "near_dedup": True,
    "decontaminate": "drop",
    "cache": False,  # every build does all of phase 1 (no per-shard cache from the last one)
}
CONTENDERS = ("local x1", "local x2", "ray x2 (warm)", "ray x2 (cold)")
WORKERS = 2


def _digest(*folders: Path) -> str:
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(p.name.encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _side_by_side(
    measure: Callable[[str], str], repeats: int, ray: Any
) -> dict[str, tuple[float, str]]:
    """``measure(executor)`` for every contender: (median seconds, output digest)."""
    out = {
        "local x1": best_of(lambda: measure("local1"), repeats),
        "local x2": best_of(lambda: measure("local2"), repeats),
    }
    ray.init(
        num_cpus=WORKERS, include_dashboard=False, log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        measure("ray")  # first use: Ray starts its worker processes (not timed)
        out["ray x2 (warm)"] = best_of(lambda: measure("ray"), repeats)
    finally:
        ray.shutdown()
    out["ray x2 (cold)"] = best_of(lambda: measure("ray"), repeats)
    return out


def _results(
    benchmark: str, timings: dict[str, tuple[float, str]], mb: float, extra: dict[str, Any]
) -> list[Result]:
    base_s, base_digest = timings["local x1"]
    results = []
    for contender in CONTENDERS:
        seconds, digest = timings[contender]
        notes = {**extra, "ratio": seconds / base_s, "identical": digest == base_digest,
                 "input_mb": mb}
        results.append(Result(benchmark, f"corpuskit {contender}", seconds, mb, "MB", notes))
        print(f"{benchmark:<28} {contender:<15} {seconds:7.2f} s  ratio {seconds / base_s:5.2f}"
              f"  identical={digest == base_digest}", flush=True)
    return results


def run(quick: bool = False) -> list[Result]:
    try:
        import ray
    except ImportError:
        print("executors: Ray is not installed (pip install 'corpuskit[ray]'); skipped")
        return []
    from corpuskit import api
    from corpuskit.catalog import Catalog
    from corpuskit.fetch import fetch_entry

    fetch_repeats, build_repeats = (1, 1) if quick else (3, 2)
    fetched = ["python-docs"] if quick else ["python-docs", "python-stdlib"]
    built = "python-docs" if quick else "python-stdlib"
    work = Path(tempfile.mkdtemp(prefix="ck-bench-exec-"))
    previous_auth = os.environ.get("RAY_AUTH_MODE")
    # A loopback instance that lives for this benchmark: no token written to ~/.ray.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    results: list[Result] = []
    try:
        catalog = Catalog.load()
        last: dict[str, Any] = {}
        for name in fetched:
            entry = catalog.get(name)

            def fetch(executor: str, entry: Any = entry) -> str:
                kind, workers = ("local", 1) if executor == "local1" else (
                    ("local", WORKERS) if executor == "local2" else ("ray", WORKERS)
                )
                result = fetch_entry(
                    entry, work, progress=False, shard_bytes=2**20, force=True,
                    executor=kind, workers=workers,
                )
                last[entry.name] = result
                return _digest(result.path)

            timings = _side_by_side(fetch, fetch_repeats, ray)
            mb = last[name].bytes / 1e6
            results += _results(
                f"executors: fetch {name}", timings, mb,
                {"corpus": name, "raw_shards": len(last[name].manifest["shards"]),
                 "workers": WORKERS},
            )

        def build(executor: str) -> str:
            for kind in ("clean", "tokens"):
                shutil.rmtree(work / kind, ignore_errors=True)
            kind, workers = ("local", 1) if executor == "local1" else (
                ("local", WORKERS) if executor == "local2" else ("ray", WORKERS)
            )
            result = api.build(
                built, data_dir=work, executor=kind, workers=workers, progress=False, **CONFIG
            )
            return _digest(result.clean_dir, result.tokens_dir)

        mb = last[built].bytes / 1e6
        timings = _side_by_side(build, build_repeats, ray)
        results += _results(
            f"executors: build {built}", timings, mb,
            {"corpus": built, "raw_shards": len(last[built].manifest["shards"]),
             "workers": WORKERS},
        )
        return results
    finally:
        if previous_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous_auth
        shutil.rmtree(work, ignore_errors=True)
