"""The build's orchestration: the clean artifact under its lock, in a staging folder, with its
manifest written last; then the token build (``encode.py``).

Phases: phase 1 per shard (``cache.py``, ``shard_phase.py``), the global stages' grouping and
decisions (``grouping.py``), the finish per shard (``finish.py``); this module streams the
finished shards into ``data/clean/<corpus>/<fp>/part-*.arrow`` in shard order, with
``duplicates.parquet`` and ``dropped-samples.jsonl`` beside them. Every per-shard step goes
through one ``Executor.map_ordered``: whatever the executor and worker count, the outputs are
byte-identical.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpuskit.artifacts import artifact_lock
from corpuskit.build.cache import Phase1Job, phase1
from corpuskit.build.config import BuildConfig, BuildResult
from corpuskit.build.finish import DROPPED_SAMPLES, FinishTask, finish_phase, write_samples
from corpuskit.build.grouping import global_phase
from corpuskit.build.plan import Plan, make_plan
from corpuskit.build.shard_phase import Phase1Cache
from corpuskit.build.splits import carves_val
from corpuskit.catalog import CorpusEntry
from corpuskit.encode import build_tokens
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor, make_executor
from corpuskit.faults import checkpoint
from corpuskit.paths import ENV_HOME, clean_root, data_root, raw_dir
from corpuskit.shards import (
    ShardWriter,
    existing_manifest,
    new_manifest,
    read_batches,
    require_intact,
    reusable,
    shard_paths,
    staging_dir,
    write_manifest,
)
from corpuskit.stages.base import StageStats


def _identity(
    entry: CorpusEntry, config: BuildConfig, plan: Plan, raw_manifest: dict[str, Any],
    resplit: bool,
) -> dict[str, Any]:
    """The clean artifact's identity: raw input, stage settings, split settings."""
    stage_config = {
        **plan.identity(),
        "splits": {
            "resplit": resplit,
            **({"carve_val": True} if carves_val(raw_manifest, resplit) else {}),
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "seed": config.seed,
        },
    }
    return new_manifest(
        "clean", entry.name, inputs={"raw": raw_manifest["fingerprint"]}, config=stage_config
    )


def build_clean(
    entry: CorpusEntry,
    root: Path,
    config: BuildConfig,
    *,
    progress: bool = True,
    executor: Executor | None = None,
    report: dict[str, Any] | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any], bool]:
    """The cleaned artifact (reused when one with the same fingerprint exists and every file it
    records is there, of its size; a damaged one is built again, with a warning).

    ``executor`` runs the per-shard phases; without one, the config's executor is started here
    and stopped at the end. ``report``, when given, receives what phase 1 reused from its cache
    (``shards``, ``reused``, ``partly_reused``, ``cache``); it stays empty when the clean
    artifact itself is reused. ``force`` builds it again from the raw shards, phase-1 cache
    ignored (and rewritten); the old artifact is replaced only once the new one is complete.
    A damaged raw artifact is an error naming the file: fetching is not the build's to do.
    """
    if executor is None:
        with _executor(config) as own:
            return build_clean(
                entry, root, config, progress=progress, executor=own, report=report, force=force
            )
    raw = raw_dir(root, entry.name)
    raw_manifest = existing_manifest(raw)
    if raw_manifest is None:
        raise CorpuskitError(
            f"corpus {entry.name!r} is not fetched yet; run `corpuskit fetch {entry.name}` first"
        )
    require_intact(raw, raw_manifest)
    plan = make_plan(entry, config)
    resplit = set(raw_manifest["splits"]) <= {"train"}
    identity = _identity(entry, config, plan, raw_manifest, resplit)
    target = clean_root(root, entry.name) / identity["fingerprint"]
    current = None if force else _reusable(target, entry.name)
    if current is not None:
        return target, current, True
    with artifact_lock(target):
        # Another process may have built it while this one waited for the lock.
        current = None if force else _reusable(target, entry.name, warn=False)
        if current is not None:
            return target, current, True
        job = Phase1Job(entry, config, plan, raw_manifest, resplit, shard_paths(raw, raw_manifest))
        manifest = _build_clean_locked(
            job, root, identity, target, executor, progress, {} if report is None else report,
            force,
        )
        return target, manifest, False


def _reusable(target: Path, corpus: str, warn: bool = True) -> dict[str, Any] | None:
    """The manifest of a complete artifact at ``target`` whose recorded files are all there, of
    their size; None (after a warning naming a damaged file) when it must be built again."""
    current = existing_manifest(target)
    if current is not None and reusable(
        target, current, f"building {corpus} again", warn=warn
    ):
        return current
    return None


def _finish_all(
    plan: Plan, cache: Phase1Cache, shards: int, work: Path, tmp: Path, executor: Executor,
    progress: bool,
) -> tuple[list[Any], ShardWriter | None, dict[str, StageStats]]:
    """The finish phase on every shard, streamed in shard order into the clean shards."""
    finish = [
        FinishTask(i, str(cache.file("staged", i, "arrow")), str(work), plan.finish_stages)
        for i in range(shards)
    ]
    late: dict[str, StageStats] = {}
    writer: ShardWriter | None = None
    for out, shard_stats in executor.map_ordered(
        finish_phase, finish, desc="dedup+write", progress=progress
    ):
        for name, st in shard_stats.items():
            late.setdefault(name, StageStats()).merge(st)
        if out is None:
            continue
        for batch in read_batches(Path(out)):
            if writer is None:
                writer = ShardWriter(tmp, batch.schema)
            writer.write_batch(batch)
            checkpoint("build.clean_batch")
    return (writer.close() if writer else []), writer, late


def _build_clean_locked(
    job: Phase1Job,
    root: Path,
    identity: dict[str, Any],
    target: Path,
    executor: Executor,
    progress: bool,
    report: dict[str, Any],
    force: bool = False,
) -> dict[str, Any]:
    """All phases into a staging folder, under the artifact's lock (phase 1 through its
    cache, whose lock is held until the finish is done; ``force``: every shard recomputed)."""
    with staging_dir(target) as tmp, contextlib.ExitStack() as stack:
        # On Ctrl-C or SIGTERM the workers stop before the staging folder is removed, so that
        # none of them writes into a folder that is gone (this exit runs before staging's).
        stack.push(_abort_on_interrupt(executor))
        # Absolute paths: a task may run in another working directory (a Ray worker) or on
        # another machine that mounts the same shared storage at the same path.
        work = (tmp / "_work").absolute()
        work.mkdir()
        cache, counts, stats = stack.enter_context(
            phase1(job, root, work, executor, progress, report, force)
        )
        extra = global_phase(job.plan, cache, counts, tmp, work, executor)
        checkpoint("build.global_phase")
        shards, writer, late = _finish_all(
            job.plan, cache, len(job.sources), work, tmp, executor, progress
        )
        shutil.rmtree(work)
        if not shards:
            raise CorpuskitError(
                f"every document of {job.entry.name!r} was removed by the build stages; "
                "loosen the filters (e.g. --min-chars)"
            )
        for stage in job.plan.finish_stages:
            stats[stage.name] = late[stage.name]
        all_stats = {name: {**st.to_dict(), **extra.get(name, {})} for name, st in stats.items()}
        write_samples(tmp / DROPPED_SAMPLES, stats)
        checkpoint("build.before_clean_manifest")
        assert writer is not None
        manifest = {
            **identity,
            "splits": dict(sorted(writer.split_counts.items())),
            "stats": all_stats,
            "shards": [s.__dict__ for s in shards],
        }
        return write_manifest(tmp, manifest)


def build_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root of a build; a ``file://`` URL is a local path, other URLs are refused.

    Every step of a build reads and writes through local paths (memory-mapped Arrow, atomic
    renames, lock files), so a cluster shares its data root through a file system mounted at
    the same path on every node, not through an object-store URL (``docs/scale-out.md``).
    """
    raw = data_dir if data_dir is not None else os.environ.get(ENV_HOME)
    if raw is None or "://" not in str(raw):
        return data_root(data_dir)
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(str(raw))
    except (ImportError, ValueError) as exc:
        fs, path = None, str(exc)
    protocols = {fs.protocol} if isinstance(getattr(fs, "protocol", None), str) else set(
        getattr(fs, "protocol", ()) or ()
    )
    if "file" in protocols or "local" in protocols:
        return Path(path)
    raise CorpuskitError(
        f"data root {raw}: build needs a local or shared-file-system path (file:// works); "
        "object stores (s3://, gs://, memory://) are not supported as a build root yet. "
        "Mount the storage on every node and pass its path (see docs/scale-out.md)"
    )


def _abort_on_interrupt(executor: Executor) -> Callable[..., bool]:
    """An exit callback that stops ``executor``'s workers when an interrupt unwinds the block."""

    def on_exit(exc_type: type[BaseException] | None, *_: Any) -> bool:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            executor.abort()
        return False

    return on_exit


def _executor(config: BuildConfig) -> Executor:
    return make_executor(config.executor, workers=config.workers, address=config.address)


def build_entry(
    entry: CorpusEntry,
    root: Path,
    config: BuildConfig,
    *,
    progress: bool = True,
    force: bool = False,
) -> BuildResult:
    """The whole build; one executor (one process pool, one Ray session) serves every step.

    ``force`` rebuilds the clean and token artifacts from scratch (phase-1 cache ignored); each
    old artifact stays in place until its replacement is complete.
    """
    config.validate()
    with _executor(config) as executor:
        phase1: dict[str, Any] = {}
        clean_dir, clean_manifest, clean_skipped = build_clean(
            entry, root, config, progress=progress, executor=executor, report=phase1,
            force=force,
        )
        tokens_dir, meta, tokens_skipped = build_tokens(
            entry, root, clean_dir, clean_manifest, config, progress=progress,
            executor=executor, force=force,
        )
    return BuildResult(
        entry.name,
        clean_dir,
        tokens_dir,
        clean_skipped,
        tokens_skipped,
        clean_manifest,
        meta,
        phase1 or None,
    )
