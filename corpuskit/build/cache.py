"""The phase-1 cache (``<root>/cache/<corpus>/phase1/<fp>/``) and phase 1 over every shard.

Phase 1 is cached per shard, by what it depends on: the raw fetch's fingerprint, the clean and
filter settings, the split settings (when the build assigns splits) and ``PHASE1_VERSION``.
Changing dedup, stopwords or decontamination settings re-runs the grouping and the finish only;
each global stage's signatures sit in a subfolder named by its own signature settings, so a
signature setting recomputes only those (from the cached documents). A killed build resumes
from the shards that finished. ``cache=False`` (``--no-cache``) computes phase 1 inside the
staging folder instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.artifacts import artifact_lock, existing_json, sweep_leftovers
from corpuskit.build.config import BuildConfig
from corpuskit.build.plan import Plan
from corpuskit.build.shard_phase import Phase1Cache, ShardTask, shard_phase, stats_from_json
from corpuskit.build.splits import carves_val
from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor
from corpuskit.shards import fingerprint, new_manifest, write_json_atomic
from corpuskit.stages.base import RANKS, StageStats

# Bump when what phase 1 writes changes (3: each global stage's signatures in its own folder).
PHASE1_VERSION = 3
IDENTITY = "identity.json"

_log = logging.getLogger(__name__)


def cache_root(root: Path, corpus: str) -> Path:
    """``<root>/cache/<corpus>/phase1``: one folder per phase-1 fingerprint."""
    return root / "cache" / corpus / "phase1"


def cached(marker: Path) -> bool:
    """Whether a phase-1 ``done-i.json`` marker and the files it records are whole.

    An unreadable marker, a marker of an older corpuskit (no file sizes), or a recorded file
    missing or of another size discards that cache entry: the shard is computed again (with a
    warning naming the file when something was damaged), never read half-written.
    """
    if not marker.exists():
        return False
    done = existing_json(marker)
    files = done.get("files") if isinstance(done, dict) else None
    if not isinstance(files, dict):
        _log.info("phase-1 cache marker %s is unreadable or old: computing the shard again", marker)
        return False
    for name, size in files.items():
        try:
            got: int | None = (marker.parent / name).stat().st_size
        except FileNotFoundError:
            got = None
        if got != size:
            found = "missing" if got is None else f"{got} bytes, recorded {size}"
            _log.warning(
                "build cache file %s is damaged (%s): discarding it, computing the shard again",
                marker.parent / name,
                found,
            )
            return False
    return True


def phase1_identity(
    entry: CorpusEntry, plan: Plan, raw_manifest: dict[str, Any], resplit: bool, config: BuildConfig
) -> dict[str, Any]:
    """What the clean+filter output of every shard depends on, and nothing else."""
    splits: dict[str, Any] = {"resplit": resplit}
    if carves_val(raw_manifest, resplit):
        splits.update(carve_val=True, val_fraction=config.val_fraction, seed=config.seed)
    if resplit:
        splits.update(
            val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed
        )
    return new_manifest(
        "phase1",
        entry.name,
        inputs={"raw": raw_manifest["fingerprint"]},
        config={
            "version": PHASE1_VERSION,
            "stages": [s.config() for s in plan.shard_stages],
            "splits": splits,
        },
    )


def derived_folders(folder: Path, plan: Plan) -> tuple[tuple[str, Path], ...]:
    """Each global stage's signature subfolder, named by the settings its files depend on."""
    return tuple(
        (s.name, folder / f"{s.name}-{fingerprint(s.signature_settings())}")
        for s in plan.global_stages
    )


def _prune(folder: Path, raw_fingerprint: str) -> None:
    """Remove the corpus's other phase-1 caches whose raw input is gone.

    ``data/raw/<corpus>/`` holds one fetch at a time, so a cache made from an earlier fetch can
    only be hit again if the very same data is fetched again; it is deleted when a cache of the
    current fetch is complete. Caches of the current fetch (other filter settings) are kept. A
    cache another process holds is left alone.
    """
    for other in folder.parent.iterdir():
        if other == folder or other.name.startswith(".") or not other.is_dir():
            continue
        identity = existing_json(other / IDENTITY)
        if identity is not None and identity.get("inputs", {}).get("raw") == raw_fingerprint:
            continue
        lock = artifact_lock(other, timeout=0)
        try:
            lock.acquire()
        except CorpuskitError:
            continue
        try:
            shutil.rmtree(other, ignore_errors=True)
        finally:
            lock.release()


def _write_identity(folder: Path, identity: dict[str, Any] | None) -> None:
    """``identity.json`` of a cache, once it holds a finished shard (a build that fails before
    that, e.g. on a full disk, leaves no file behind)."""
    if identity is not None and existing_json(folder / IDENTITY) != identity:
        write_json_atomic(folder / IDENTITY, identity)


def _write_identity(folder: Path, identity: dict[str, Any] | None) -> None:
    """``identity.json`` of a cache, once it holds a finished shard (a build that fails before
    that, e.g. on a full disk, leaves no file behind)."""
    if identity is not None and existing_json(folder / IDENTITY) != identity:
        write_json_atomic(folder / IDENTITY, identity)


@dataclass(frozen=True)
class Phase1Job:
    """One build's phase 1: the shards and how their splits are chosen."""

    entry: CorpusEntry
    config: BuildConfig
    plan: Plan
    raw_manifest: dict[str, Any]
    resplit: bool
    sources: list[Path]


def _tasks(job: Phase1Job, cache: Phase1Cache, force: bool) -> list[ShardTask]:
    """A task for every shard whose phase-1 files are not all cached (``force``: every one)."""
    tasks = []
    carve = carves_val(job.raw_manifest, job.resplit)
    for i, src in enumerate(job.sources):
        if force:
            for m in cache.done(i):
                m.unlink(missing_ok=True)
        name = f"done-{i:05d}.json"
        own = cached(cache.folder / name)
        missing = tuple(s for s, f in cache.derived if not own or not cached(f / name))
        if own and not missing:
            continue
        tasks.append(
            ShardTask(
                i, str(src.absolute()), cache, not own, missing, job.plan, job.resplit,
                job.config.val_fraction, job.config.test_fraction, job.config.seed, carve,
            )
        )
    return tasks


def _collect(folder: Path, plan: Plan, shards: int) -> tuple[np.ndarray, dict[str, StageStats]]:
    """Rows per shard and split rank, and the phase-1 statistics, from the done markers."""
    counts = np.zeros((shards, RANKS), np.int64)
    stats: dict[str, StageStats] = {s.name: StageStats() for s in plan.shard_stages}
    for i in range(shards):
        done = json.loads((folder / f"done-{i:05d}.json").read_text(encoding="utf-8"))
        counts[i] = done["ranks"]
        for name, st in stats_from_json(done["stats"]).items():
            stats[name].merge(st)
    return counts, stats


@contextlib.contextmanager
def phase1(
    job: Phase1Job,
    root: Path,
    work: Path,
    executor: Executor,
    progress: bool,
    report: dict[str, Any],
    force: bool = False,
) -> Iterator[tuple[Phase1Cache, np.ndarray, dict[str, StageStats]]]:
    """Phase 1 for every shard, reusing the cache (``force``: none of it, every marker removed
    first); yields the cache, the rows per shard and split rank, and the phase-1 statistics.
    The cache's lock is held until the block ends (the later phases read its files)."""
    if job.config.cache:
        identity = phase1_identity(
            job.entry, job.plan, job.raw_manifest, job.resplit, job.config
        )
        # Absolute paths: a task may run in another working directory (a Ray worker) or on
        # another machine that mounts the same shared storage at the same path.
        folder = (cache_root(root, job.entry.name) / identity["fingerprint"]).absolute()
        lock: Any = artifact_lock(folder)
    else:
        identity, folder, lock = None, work / "phase1", contextlib.nullcontext()
    with lock:
        folder.mkdir(parents=True, exist_ok=True)
        cache = Phase1Cache(folder, derived_folders(folder, job.plan))
        for sub in (folder, *(f for _, f in cache.derived)):
            sub.mkdir(exist_ok=True)
            sweep_leftovers(sub)
        tasks = _tasks(job, cache, force)
        shards = len(job.sources)
        report.update(
            shards=shards,
            reused=shards - len(tasks),
            partly_reused=sum(not t.run_phase1 for t in tasks),
            cache=str(folder) if identity is not None else None,
        )
        results = executor.map_ordered(shard_phase, tasks, desc="clean+filter", progress=progress)
        for done_shards, _ in enumerate(results, start=1):
            if done_shards == 1:
                _write_identity(folder, identity)
        _write_identity(folder, identity)
        counts, stats = _collect(folder, job.plan, shards)
        if identity is not None:
            _prune(folder, job.raw_manifest["fingerprint"])
        yield cache, counts, stats
