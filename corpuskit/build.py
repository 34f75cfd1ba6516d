"""``build``: raw shards → cleaned, deduplicated shards → packed token files.

Phases, each an artifact with a manifest whose fingerprint names its folder:

1. per shard, in worker processes: split assignment, ``clean``, ``length`` filter, and the
   exact-duplicate key of every document (written to a staging shard);
2. global: keep the first occurrence of every key, in shard-then-row order (deterministic);
3. per shard: drop the duplicates and write ``data/clean/<corpus>/<fp>/part-*.arrow``;
4. tokenizer training on the cleaned train split, then encoding and packing of every split into
   ``data/tokens/<corpus>/<fp>/``.

Whatever the worker count, the outputs are byte-identical: shards keep their input order and
every global decision is made in one place in a fixed order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from corpuskit.catalog import CorpusEntry
from corpuskit.encode import build_tokens
from corpuskit.errors import CorpuskitError
from corpuskit.executors.local import map_ordered
from corpuskit.fetch import artifact_lock
from corpuskit.paths import clean_root, raw_dir
from corpuskit.shards import (
    MANIFEST,
    ShardWriter,
    existing_manifest,
    new_manifest,
    read_batches,
    shard_paths,
    staging_dir,
    write_json_atomic,
)
from corpuskit.stages.base import StageStats, run_stage
from corpuskit.stages.clean import Clean, LengthFilter
from corpuskit.tokenizers import parse_spec

SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val"}


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides a build's output (``workers`` only decides its speed)."""

    tokenizer: str = "spm-bpe:4096"
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    normalization: str = "NFC"
    code: bool | None = None
    min_chars: int = 1
    max_chars: int | None = None
    dedup: bool = True
    seed: int = 0
    sentence_budget: int = 1_000_000
    workers: int = 0

    def validate(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise CorpuskitError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise CorpuskitError(
                "--val-fraction plus --test-fraction must leave some training data"
            )
        if self.normalization not in ("NFC", "NFKC", "none"):
            raise CorpuskitError("--normalization must be NFC, NFKC or none")
        parse_spec(self.tokenizer)

    def output_config(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("workers")
        return out


@dataclass
class BuildResult:
    corpus: str
    clean_dir: Path
    tokens_dir: Path
    clean_skipped: bool
    tokens_skipped: bool
    clean_manifest: dict[str, Any] = field(repr=False)
    meta: dict[str, Any] = field(repr=False)

    @property
    def skipped(self) -> bool:
        return self.clean_skipped and self.tokens_skipped


# --------------------------------------------------------------------------- phase 1 (workers)


@dataclass(frozen=True)
class _CleanTask:
    source: str
    staged: str
    stages: tuple[Any, ...]
    resplit: bool
    val_fraction: float
    test_fraction: float
    seed: int
    dedup: bool


def _assign_splits(batch: pa.RecordBatch, task: _CleanTask) -> pa.RecordBatch:
    if task.resplit:
        ids = batch.column("id").to_pylist()
        scale = float(2**64)
        splits = []
        for doc_id in ids:
            u = xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=task.seed) / scale
            splits.append(
                "val"
                if u < task.val_fraction
                else "test"
                if u < task.val_fraction + task.test_fraction
                else "train"
            )
        column = pa.array(splits, pa.string())
    else:
        column = batch.column("split")
        for old, new in SPLIT_ALIASES.items():
            column = pc.replace_substring_regex(column, f"^{old}$", new)
    return batch.set_column(batch.schema.get_field_index("split"), "split", column)


def _dedup_key(text: str) -> bytes:
    """Exact-duplicate key: case and whitespace differences do not make a document new."""
    return xxhash.xxh3_128_digest(" ".join(text.lower().split()).encode("utf-8"))


def _clean_shard(task: _CleanTask) -> tuple[list[bytes], dict[str, StageStats]]:
    stats = {stage.name: StageStats() for stage in task.stages}
    keys: list[bytes] = []
    writer: ShardWriter | None = None
    for batch in read_batches(Path(task.source)):
        batch = _assign_splits(batch, task)
        for stage in task.stages:
            batch = run_stage(stage, batch, stats[stage.name])
        if writer is None:
            staged = Path(task.staged)
            # One file per task: an unbounded shard size and the task's own file name.
            writer = ShardWriter(
                staged.parent, batch.schema, shard_bytes=2**62, name_pattern=staged.name
            )
        if task.dedup:
            keys.extend(_dedup_key(t) for t in batch.column("text").to_pylist())
        writer.write_batch(batch)
    if writer is not None:
        writer.close()
    return keys, stats


# --------------------------------------------------------------------------- phase 2 (global)


def _first_occurrences(
    keys_per_shard: list[list[bytes]],
) -> tuple[list[list[bool]], int, list[int]]:
    """Keep masks per shard; also the number of duplicate clusters and their sizes."""
    seen: dict[bytes, int] = {}
    cluster_sizes: dict[bytes, int] = {}
    masks = []
    for keys in keys_per_shard:
        mask = []
        for key in keys:
            if key in seen:
                cluster_sizes[key] = cluster_sizes.get(key, 1) + 1
                mask.append(False)
            else:
                seen[key] = 1
                mask.append(True)
        masks.append(mask)
    sizes = sorted(cluster_sizes.values(), reverse=True)
    return masks, len(sizes), sizes


# --------------------------------------------------------------------------- phase 3


def _write_clean(
    staged: list[Path], masks: list[list[bool]] | None, out_dir: Path, dedup: StageStats
) -> ShardWriter | None:
    writer: ShardWriter | None = None
    for i, path in enumerate(staged):
        if not path.exists():
            continue
        offset = 0
        for batch in read_batches(path):
            dedup.documents_in += batch.num_rows
            if masks is not None:
                keep = pa.array(masks[i][offset : offset + batch.num_rows])
                offset += batch.num_rows
                dropped = batch.num_rows - int(pc.sum(keep).as_py() or 0)
                if dropped:
                    dedup.dropped["exact_duplicate"] += dropped
                batch = batch.filter(keep)
            dedup.documents_out += batch.num_rows
            if writer is None:
                writer = ShardWriter(out_dir, batch.schema)
            writer.write_batch(batch)
        path.unlink()
    return writer


def build_clean(
    entry: CorpusEntry, root: Path, config: BuildConfig, *, progress: bool = True
) -> tuple[Path, dict[str, Any], bool]:
    raw = raw_dir(root, entry.name)
    raw_manifest = existing_manifest(raw)
    if raw_manifest is None:
        raise CorpuskitError(
            f"corpus {entry.name!r} is not fetched yet; run `corpuskit fetch {entry.name}` first"
        )
    code = config.code if config.code is not None else "code" in entry.domains
    stages = (
        Clean(normalization=config.normalization, code=code),  # type: ignore[arg-type]
        LengthFilter(min_chars=config.min_chars, max_chars=config.max_chars),
    )
    resplit = set(raw_manifest["splits"]) <= {"train"}
    stage_config = {
        "stages": [s.config() for s in stages],
        "dedup": {"exact": config.dedup},
        "splits": {
            "resplit": resplit,
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "seed": config.seed,
        },
    }
    identity = new_manifest(
        "clean", entry.name, inputs={"raw": raw_manifest["fingerprint"]}, config=stage_config
    )
    target = clean_root(root, entry.name) / identity["fingerprint"]
    current = existing_manifest(target)
    if current is not None:
        return target, current, True
    with artifact_lock(target), staging_dir(target) as tmp:
        sources = shard_paths(raw, raw_manifest)
        tasks = [
            _CleanTask(
                str(src),
                str(tmp / f"staged-{i:05d}.arrow"),
                stages,
                resplit,
                config.val_fraction,
                config.test_fraction,
                config.seed,
                config.dedup,
            )
            for i, src in enumerate(sources)
        ]
        stats = {s.name: StageStats() for s in stages}
        keys_per_shard: list[list[bytes]] = []
        for keys, shard_stats in map_ordered(
            _clean_shard, tasks, workers=config.workers, desc="clean", progress=progress
        ):
            keys_per_shard.append(keys)
            for name, st in shard_stats.items():
                stats[name].merge(st)
        masks, clusters, sizes = (
            _first_occurrences(keys_per_shard) if config.dedup else (None, 0, [])
        )
        dedup_stats = StageStats()
        writer = _write_clean([Path(t.staged) for t in tasks], masks, tmp, dedup_stats)
        shards = writer.close() if writer else []
        if not shards:
            raise CorpuskitError(
                f"every document of {entry.name!r} was removed by the build stages; "
                "loosen the filters (e.g. --min-chars)"
            )
        all_stats = {name: st.to_dict() for name, st in stats.items()}
        if config.dedup:
            all_stats["exact_dedup"] = {
                **dedup_stats.to_dict(),
                "clusters": clusters,
                "largest_clusters": sizes[:10],
            }
        assert writer is not None
        manifest = {
            **identity,
            "splits": dict(sorted(writer.split_counts.items())),
            "stats": all_stats,
            "shards": [s.__dict__ for s in shards],
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    return target, manifest, False


def build_entry(
    entry: CorpusEntry, root: Path, config: BuildConfig, *, progress: bool = True
) -> BuildResult:
    config.validate()
    clean_dir, clean_manifest, clean_skipped = build_clean(entry, root, config, progress=progress)
    tokens_dir, meta, tokens_skipped = build_tokens(
        entry, root, clean_dir, clean_manifest, config, progress=progress
    )
    return BuildResult(
        entry.name, clean_dir, tokens_dir, clean_skipped, tokens_skipped, clean_manifest, meta
    )
