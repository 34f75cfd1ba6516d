"""``build``: raw shards → cleaned, filtered, deduplicated shards → packed token files.

Phases, each an artifact with a manifest whose fingerprint names its folder:

1. per shard, as executor tasks (worker processes, or Ray tasks with ``executor="ray"``):
   split assignment, ``clean``, the filters (``length``,
   ``quality`` or ``code_quality``, ``repetition``, ``language``), and the inputs of the global
   stages: exact-duplicate keys, MinHash signatures and LSH bucket keys, and the n-gram hashes
   of val/test documents. All of it is written to disk per shard (Arrow, Parquet, ``.npy``),
   in a cache that outlives the build (``<root>/cache/<corpus>/phase1/<fp>/``, see below);
2. global, in this process: exact duplicates (grouped by key with polars), near-duplicate
   clusters (grouped by LSH bucket with polars, verified, joined by a union-find) and the
   sorted table of evaluation n-grams. Every decision keeps the first occurrence in the dedup
   order: test, then val, then train, then other splits; within a split, shard then row. So a
   duplicate between train and an evaluation split leaves train, and nothing depends on which
   worker finished first;
3. per shard, as executor tasks: the duplicates are dropped, then ``stopwords`` and
   ``decontaminate`` run; this process then streams the results into
   ``data/clean/<corpus>/<fp>/part-*.arrow``, with ``duplicates.parquet`` (every removed
   duplicate and the document it duplicates) and ``dropped-samples.jsonl`` (a few dropped
   documents per stage and reason) beside them;
4. tokenizer training on the cleaned train split, then encoding and packing of every split into
   ``data/tokens/<corpus>/<fp>/``, one executor task per clean shard (``encode.py``).

Phase 1 is cached per shard, by what it depends on: the raw fetch's fingerprint, the clean and
filter settings, the split settings (when the build assigns splits) and ``PHASE1_VERSION``.
Changing dedup, stopwords or decontamination settings re-runs phases 2 and 3 only; MinHash
signatures and eval n-grams sit in subfolders named by their own settings, so a signature
setting recomputes only the signatures (from the cached documents). Each shard's files are
moved into place from a private temporary folder and a ``done-i.json`` marker is written last,
so a killed build resumes from the shards that finished. ``cache=False`` (``--no-cache``)
computes phase 1 inside the staging folder instead.

Every per-shard step goes through one ``Executor.map_ordered`` (``corpuskit/executors/``); the
build does not know whether processes or Ray run it. Whatever the executor and worker count, the
outputs are byte-identical: shards keep their input order, batch
boundaries follow the input's, and every global decision is made in one place in a fixed order.
Memory is bounded by one batch per worker plus the global phase's columnar key tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from corpuskit.catalog import CorpusEntry
from corpuskit.encode import build_tokens
from corpuskit.errors import CorpuskitError
from corpuskit.executors import (
    EXECUTORS,
    Executor,
    make_executor,
    map_partitions,
    partition_count,
)
from corpuskit.faults import checkpoint
from corpuskit.fetch import artifact_lock
from corpuskit.paths import ENV_HOME, clean_root, data_root, raw_dir
from corpuskit.shards import (
    ShardWriter,
    _pid_alive,
    existing_manifest,
    fingerprint,
    new_manifest,
    read_batches,
    require_intact,
    reusable,
    shard_paths,
    staging_dir,
    write_json_atomic,
    write_manifest,
)
from corpuskit.stages.base import StageStats, record_samples, run_stage, text_bytes
from corpuskit.stages.clean import Clean, LengthFilter
from corpuskit.stages.decontam import Decontaminate, eval_ngrams
from corpuskit.stages.filters import CodeFilter, GopherQuality, GopherRepetition, LanguageFilter
from corpuskit.stages.minhash import MinHashLSH, ShardSignatures, cluster
from corpuskit.stages.stopwords import Stopwords, has_stopwords
from corpuskit.tokenizers import parse_spec

SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val"}
DUPLICATES = "duplicates.parquet"
DROPPED_SAMPLES = "dropped-samples.jsonl"
_KEEP, _EXACT, _NEAR = 0, 1, 2

# BuildConfig fields that choose where a build runs, never what it writes.
EXECUTION_FIELDS = ("workers", "executor", "address", "cache")

# Phase-1 cache (``<root>/cache/<corpus>/phase1/<fp>/``): bump when what phase 1 writes changes.
PHASE1_VERSION = 2
IDENTITY = "identity.json"
# Dedup keeps the first copy in this order of splits (then shard, then row): duplicates between
# train and an evaluation split leave train, and the evaluation sets stay whole.
SPLIT_RANK = {"test": 0, "val": 1, "train": 2}
RANKS = 4  # test, val, train, any other split
DEDUP_ORDER = "split (test, val, train, other), then shard, then row"

_log = logging.getLogger(__name__)
_DEFAULT_QUALITY = GopherQuality()
_DEFAULT_REPETITION = GopherRepetition()


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides a build's output (``workers``, ``executor`` and ``address`` only
    decide where it runs and how fast).

    Flat on purpose: every field is a recipe key and a ``--set KEY=VALUE`` on the command line;
    the recipe file may group them in sections (``recipe.py``). Stage thresholds only enter
    the fingerprint when their stage is on.
    """

    # tokenize + splits
    tokenizer: str = "spm-bpe:4096"
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    seed: int = 0
    sentence_budget: int = 1_000_000
    # Bytes of train text sentencepiece may see: lines are kept with probability
    # budget / train bytes, by a hash of the line (deterministic, order-free), so its memory
    # stays bounded when lines are long (a paragraph per line) and the corpus is large.
    sentence_budget_bytes: int = 100_000_000
    bos: bool = False
    # clean
    normalization: str = "NFC"
    code: bool | None = None
    fix_mojibake: bool = True
    html: bool = False
    wikitext: bool = False
    whitespace: str = "normalize"
    # filter
    min_chars: int = 1
    max_chars: int | None = None
    quality: bool = False
    min_words: int = _DEFAULT_QUALITY.min_words
    max_words: int = _DEFAULT_QUALITY.max_words
    min_mean_word_length: float = _DEFAULT_QUALITY.min_mean_word_length
    max_mean_word_length: float = _DEFAULT_QUALITY.max_mean_word_length
    max_symbol_word_ratio: float = _DEFAULT_QUALITY.max_symbol_word_ratio
    max_bullet_lines_ratio: float = _DEFAULT_QUALITY.max_bullet_lines_ratio
    max_ellipsis_lines_ratio: float = _DEFAULT_QUALITY.max_ellipsis_lines_ratio
    min_alpha_words_ratio: float = _DEFAULT_QUALITY.min_alpha_words_ratio
    max_line_length: int = CodeFilter.max_line_length
    max_mean_line_length: float = CodeFilter.max_mean_line_length
    min_alnum_fraction: float = CodeFilter.min_alnum_fraction
    repetition: bool = False
    max_dup_line_fraction: float = _DEFAULT_REPETITION.max_dup_line_fraction
    max_dup_para_fraction: float = _DEFAULT_REPETITION.max_dup_para_fraction
    max_dup_line_char_fraction: float = _DEFAULT_REPETITION.max_dup_line_char_fraction
    max_dup_para_char_fraction: float = _DEFAULT_REPETITION.max_dup_para_char_fraction
    top_ngram_char_fractions: dict[int, float] = field(
        default_factory=lambda: dict(_DEFAULT_REPETITION.top_ngram_char_fractions)
    )
    dup_ngram_char_fractions: dict[int, float] = field(
        default_factory=lambda: dict(_DEFAULT_REPETITION.dup_ngram_char_fractions)
    )
    languages: tuple[str, ...] | None = None
    min_language_score: float = 0.5
    # dedup
    dedup: bool = True
    near_dedup: bool = False
    minhash_ngram: int = 5
    minhash_perm: int = 128
    minhash_bands: int = 20
    minhash_rows: int = 6
    minhash_threshold: float = 0.8
    minhash_verify: bool = True
    minhash_verify_sigmas: float = 2.0
    # stopwords
    stopwords: str = "off"
    stopwords_language: str | None = None
    min_stopwords: int = 2
    min_stopword_fraction: float = 0.2
    # decontaminate
    decontaminate: str = "off"
    decontaminate_ngram: int = 13
    # execution (not part of the output's identity)
    workers: int = 0
    executor: str = "local"
    address: str | None = None
    cache: bool = True  # reuse (and keep) phase-1 outputs in <root>/cache; never changes output

    def validate(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise CorpuskitError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise CorpuskitError(
                "--val-fraction plus --test-fraction must leave some training data"
            )
        if self.whitespace not in ("normalize", "keep"):
            raise CorpuskitError("whitespace must be 'normalize' or 'keep'")
        if self.normalization not in ("NFC", "NFKC", "none"):
            raise CorpuskitError("--normalization must be NFC, NFKC or none")
        if self.stopwords not in ("off", "filter", "remove"):
            raise CorpuskitError("--stopwords must be off, filter or remove")
        if self.decontaminate not in ("off", "drop", "mark"):
            raise CorpuskitError("--decontaminate must be off, drop or mark")
        if self.decontaminate_ngram < 1:
            raise CorpuskitError("--decontaminate-ngram must be positive")
        if self.min_chars < 0 or (self.max_chars is not None and self.max_chars < self.min_chars):
            raise CorpuskitError("--min-chars must be >= 0 and <= --max-chars")
        if self.near_dedup:
            self.minhash().validate()
        if self.executor not in EXECUTORS:
            raise CorpuskitError(f"--executor must be one of {', '.join(EXECUTORS)}")
        if self.address and self.executor != "ray":
            raise CorpuskitError("--address is for --executor ray")
        parse_spec(self.tokenizer)

    def minhash(self) -> MinHashLSH:
        return MinHashLSH(
            ngram=self.minhash_ngram,
            num_perm=self.minhash_perm,
            bands=self.minhash_bands,
            rows=self.minhash_rows,
            threshold=self.minhash_threshold,
            verify=self.minhash_verify,
            verify_sigmas=self.minhash_verify_sigmas,
            seed=self.seed,
        )

    def output_config(self) -> dict[str, Any]:
        out = asdict(self)
        for name in EXECUTION_FIELDS:
            out.pop(name)
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
    # Phase 1 of this run: shards, how many came from the cache, the cache folder (None when
    # the clean artifact itself was reused and phase 1 was not consulted).
    phase1: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def skipped(self) -> bool:
        return self.clean_skipped and self.tokens_skipped


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """The stages a config resolves to for one corpus, in the order they run."""

    code: bool
    shard_stages: tuple[Any, ...]  # phase 1, per batch
    exact: bool
    near: MinHashLSH | None
    stopwords: Stopwords | None
    decontaminate: Decontaminate | None

    def describe(self) -> list[tuple[str, dict[str, Any]]]:
        """``(stage, settings)`` in execution order, for ``--dry-run`` and the manifest."""
        out = [(s.name, s.config()) for s in self.shard_stages]
        if self.exact:
            out.append(("exact_dedup", {"key": "xxh3-128 of lowercased, space-joined words"}))
        if self.near is not None:
            out.append((self.near.name, self.near.config()))
        if self.stopwords is not None:
            out.append((self.stopwords.name, self.stopwords.config()))
        if self.decontaminate is not None:
            out.append((self.decontaminate.name, self.decontaminate.config()))
        return out


def _stopwords_language(entry: CorpusEntry, config: BuildConfig) -> str:
    if config.stopwords_language:
        return config.stopwords_language
    for language in entry.languages:
        if len(language) == 2 and has_stopwords(language):
            return language
    return "en"


def make_plan(entry: CorpusEntry, config: BuildConfig) -> Plan:
    """Resolve a config against a catalog entry: code or prose, which stages, which settings."""
    code = config.code if config.code is not None else "code" in entry.domains
    stages: list[Any] = [
        Clean(
            normalization=config.normalization,  # type: ignore[arg-type]
            code=code,
            fix_mojibake=config.fix_mojibake,
            html=config.html and not code,
            wikitext=config.wikitext and not code,
            whitespace=config.whitespace,  # type: ignore[arg-type]
        ),
        LengthFilter(min_chars=config.min_chars, max_chars=config.max_chars),
    ]
    if config.quality and code:
        stages.append(
            CodeFilter(
                max_line_length=config.max_line_length,
                max_mean_line_length=config.max_mean_line_length,
                min_alnum_fraction=config.min_alnum_fraction,
            )
        )
    elif config.quality:
        stages.append(
            GopherQuality(
                min_words=config.min_words,
                max_words=config.max_words,
                min_mean_word_length=config.min_mean_word_length,
                max_mean_word_length=config.max_mean_word_length,
                max_symbol_word_ratio=config.max_symbol_word_ratio,
                max_bullet_lines_ratio=config.max_bullet_lines_ratio,
                max_ellipsis_lines_ratio=config.max_ellipsis_lines_ratio,
                min_alpha_words_ratio=config.min_alpha_words_ratio,
            )
        )
    if config.repetition and not code:
        stages.append(
            GopherRepetition(
                max_dup_line_fraction=config.max_dup_line_fraction,
                max_dup_para_fraction=config.max_dup_para_fraction,
                max_dup_line_char_fraction=config.max_dup_line_char_fraction,
                max_dup_para_char_fraction=config.max_dup_para_char_fraction,
                top_ngram_char_fractions=tuple(sorted(config.top_ngram_char_fractions.items())),
                dup_ngram_char_fractions=tuple(sorted(config.dup_ngram_char_fractions.items())),
            )
        )
    if config.languages and not code:
        stages.append(
            LanguageFilter(languages=tuple(config.languages), min_score=config.min_language_score)
        )
    stopwords = None
    if config.stopwords != "off":
        stopwords = Stopwords(
            mode=config.stopwords,  # type: ignore[arg-type]
            language=_stopwords_language(entry, config),
            min_count=config.min_stopwords,
            min_fraction=config.min_stopword_fraction,
        )
        stopwords.words()  # an unknown language is a user error now, not in a worker
    decontaminate = None
    if config.decontaminate != "off":
        decontaminate = Decontaminate(
            mode=config.decontaminate,  # type: ignore[arg-type]
            ngram=config.decontaminate_ngram,
        )
    return Plan(
        code=code,
        shard_stages=tuple(stages),
        exact=config.dedup,
        near=config.minhash() if config.near_dedup else None,
        stopwords=stopwords,
        decontaminate=decontaminate,
    )


# --------------------------------------------------------------------------- phase 1 (workers)


@dataclass(frozen=True)
class _Phase1Cache:
    """Where the phase-1 outputs of a build live.

    ``folder`` holds, per shard ``i``, ``staged-i.arrow`` (the documents after clean and the
    filters), ``keys-i.parquet`` (id, exact-duplicate key, split rank and row within the rank)
    and ``done-i.json`` (rows per split rank and the stage statistics), written last. ``near``
    holds the MinHash signatures and bucket keys per shard and split rank, ``evalng`` the val/test
    n-gram hashes, each with its own ``done-i.json`` and its own fingerprint, so that a change of
    the signature settings (or of the decontamination n-gram) recomputes only those files.
    """

    folder: Path
    near: Path | None
    evalng: Path | None

    def file(self, kind: str, index: int, suffix: str) -> Path:
        folder = {"sigs": self.near, "bands": self.near, "evalng": self.evalng}.get(kind)
        return (folder or self.folder) / f"{kind}-{index:05d}.{suffix}"

    def group_file(self, kind: str, index: int, rank: int, suffix: str) -> Path:
        assert self.near is not None
        return self.near / f"{kind}-{index:05d}-r{rank}.{suffix}"

    def done(self, index: int) -> list[Path]:
        """The completion markers shard ``index`` needs, phase 1's own last."""
        name = f"done-{index:05d}.json"
        return [f / name for f in (self.near, self.evalng) if f is not None] + [self.folder / name]


@dataclass(frozen=True)
class _ShardTask:
    index: int
    source: str
    cache: _Phase1Cache
    run_phase1: bool  # False: clean+filter output is cached, only signatures/n-grams are not
    signatures: bool
    evalng: bool
    plan: Plan
    resplit: bool
    val_fraction: float
    test_fraction: float
    seed: int
    # The raw artifact has its own splits but no validation one (e.g. a folder of train and
    # test files): validation is carved out of train by hash, test is kept as it is.
    carve_val: bool = False


def _split_hash(doc_id: str, seed: int) -> float:
    """A document's place in [0, 1), from its id alone: the same split on any machine."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=seed) / float(2**64)


def _assign_splits(batch: pa.RecordBatch, task: _ShardTask) -> pa.RecordBatch:
    if task.resplit:
        ids = batch.column("id").to_pylist()
        splits = []
        for doc_id in ids:
            u = _split_hash(doc_id, task.seed)
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
        if task.carve_val:
            ids = batch.column("id").to_pylist()
            column = pa.array(
                [
                    "val" if s == "train" and _split_hash(i, task.seed) < task.val_fraction else s
                    for i, s in zip(ids, column.to_pylist(), strict=True)
                ],
                pa.string(),
            )
    return batch.set_column(batch.schema.get_field_index("split"), "split", column)


def _dedup_key(text: str) -> int:
    """Exact-duplicate key: case and whitespace differences do not make a document new."""
    return xxhash.xxh3_128_intdigest(" ".join(text.lower().split()).encode("utf-8"))


def _split_ranks(batch: pa.RecordBatch) -> np.ndarray:
    """The dedup priority of every row's split: 0 test, 1 val, 2 train, 3 anything else."""
    splits = batch.column("split").to_pylist()
    return np.array([SPLIT_RANK.get(s, RANKS - 1) for s in splits], np.uint8)


def _stats_json(stats: dict[str, StageStats]) -> dict[str, Any]:
    return {name: {**st.to_dict(), "samples": st.samples} for name, st in stats.items()}


def _stats_from_json(data: dict[str, Any]) -> dict[str, StageStats]:
    out = {}
    for name, st in data.items():
        out[name] = StageStats(
            documents_in=st["documents_in"],
            documents_out=st["documents_out"],
            bytes_in=st["bytes_in"],
            bytes_out=st["bytes_out"],
            changed=st["changed"],
            dropped=Counter(st["dropped"]),
            samples={k: list(v) for k, v in st["samples"].items()},
        )
    return out


def _phase1_batches(
    task: _ShardTask, stats: dict[str, StageStats], tmp: Path
) -> Iterator[pa.RecordBatch]:
    """The shard's documents after clean and the filters: computed from the raw shard (and
    written to ``tmp/staged-i.arrow``), or read back from the cache."""
    staged = task.cache.file("staged", task.index, "arrow")
    if not task.run_phase1:
        if staged.exists():
            yield from read_batches(staged)
        return
    writer: ShardWriter | None = None
    for batch in read_batches(Path(task.source)):
        batch = _assign_splits(batch, task)
        for stage in task.plan.shard_stages:
            batch = run_stage(stage, batch, stats[stage.name])
        if batch.num_rows == 0:
            continue
        if writer is None:
            # One file per task: an unbounded shard size and the task's own file name.
            writer = ShardWriter(tmp, batch.schema, shard_bytes=2**62, name_pattern=staged.name)
        writer.write_batch(batch)
        yield batch
    if writer is not None:
        writer.close()


def _shard_phase(task: _ShardTask) -> int:
    """Phase 1 for one shard, whatever of it is not cached yet; returns its surviving rows.

    Every file is written in a private ``.part-i.tmp-<pid>`` folder, then moved to its final
    name; the ``done-i.json`` markers come last, so a kill at any point leaves either a complete
    shard or one that the next run computes again.
    """
    plan, cache, index = task.plan, task.cache, task.index
    tmp = cache.folder / f".part-{index:05d}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        stats = {stage.name: StageStats() for stage in plan.shard_stages}
        rows = 0
        counts = np.zeros(RANKS, np.int64)
        ids: list[str] = []
        keys: list[int] = []
        ranks: list[np.ndarray] = []
        groups: list[np.ndarray] = []
        near = plan.near if task.signatures else None
        signatures = [ShardSignatures.new(near) for _ in range(RANKS)] if near else []
        eval_rows: list[np.ndarray] = []
        eval_hashes: list[np.ndarray] = []
        for batch in _phase1_batches(task, stats, tmp):
            texts = batch.column("text")
            rank = _split_ranks(batch)
            group = np.zeros(len(rank), np.int64)
            for r in range(RANKS):
                mask = rank == r
                n = int(mask.sum())
                if not n:
                    continue
                group[mask] = counts[r] + np.arange(n)
                counts[r] += n
                if signatures:
                    signatures[r].add(texts if n == len(rank) else texts.filter(pa.array(mask)))
            if task.run_phase1:
                ids.extend(batch.column("id").to_pylist())
                keys.extend(_dedup_key(t) for t in texts.to_pylist())
                ranks.append(rank)
                groups.append(group)
            if task.evalng:
                assert plan.decontaminate is not None
                probe = batch
                if plan.stopwords is not None and plan.stopwords.mode == "remove":
                    # Train text will be compared after stopword removal: hash val/test alike.
                    probe = batch.set_column(
                        batch.schema.get_field_index("text"), "text", plan.stopwords.remove(texts)
                    )
                doc, hashes = eval_ngrams(probe, plan.decontaminate.ngram)
                eval_rows.append(doc + rows)
                eval_hashes.append(hashes)
            rows += batch.num_rows
        moves: list[tuple[Path, Path]] = []
        if task.run_phase1:
            staged = cache.file("staged", index, "arrow")
            if (tmp / staged.name).exists():
                moves.append((tmp / staged.name, staged))
            else:  # no document survived: no file, not even one from an earlier run
                staged.unlink(missing_ok=True)
            key_array = np.array(keys, dtype=object) if keys else np.zeros(0, object)
            out = cache.file("keys", index, "parquet")
            pl.DataFrame(
                {
                    "row": np.arange(len(ids), dtype=np.int64),
                    "id": pl.Series(ids, dtype=pl.String),
                    "hi": np.array([k >> 64 for k in key_array], np.uint64),
                    "lo": np.array([k & (2**64 - 1) for k in key_array], np.uint64),
                    "rank": np.concatenate(ranks) if ranks else np.zeros(0, np.uint8),
                    "grow": np.concatenate(groups) if groups else np.zeros(0, np.int64),
                }
            ).write_parquet(tmp / out.name)
            moves.append((tmp / out.name, out))
        for r, sig in enumerate(signatures):
            if sig.rows:
                final = (
                    cache.group_file("sigs", index, r, "npy"),
                    cache.group_file("bands", index, r, "parquet"),
                )
                sig.write(tmp / final[0].name, tmp / final[1].name)
                moves += [(tmp / p.name, p) for p in final]
        if task.evalng:
            out = cache.file("evalng", index, "parquet")
            pl.DataFrame(
                {
                    "row": np.concatenate(eval_rows) if eval_rows else np.zeros(0, np.int64),
                    "hash": np.concatenate(eval_hashes)
                    if eval_hashes
                    else np.zeros(0, np.uint64),
                }
            ).write_parquet(tmp / out.name)
            moves.append((tmp / out.name, out))
        for src, dst in moves:
            os.replace(src, dst)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint("build.shard_files")
    marker = f"done-{index:05d}.json"
    # Each marker records the sizes of the files it vouches for: a truncated or deleted cache
    # file then discards its shard's entry (recomputed) instead of failing in a later phase.
    files: dict[Path, dict[str, int]] = {}
    for _, dst in moves:
        files.setdefault(dst.parent, {})[dst.name] = dst.stat().st_size
    if task.signatures:
        assert cache.near is not None
        write_json_atomic(cache.near / marker, {"rows": rows, "files": files.get(cache.near, {})})
    if task.evalng:
        assert cache.evalng is not None
        write_json_atomic(
            cache.evalng / marker, {"rows": rows, "files": files.get(cache.evalng, {})}
        )
    if task.run_phase1:
        write_json_atomic(
            cache.folder / marker,
            {
                "rows": rows,
                "ranks": counts.tolist(),
                "stats": _stats_json(stats),
                "files": files.get(cache.folder, {}),
            },
        )
    checkpoint("build.shard_phase")
    return rows


def _cached(marker: Path) -> bool:
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


def _sweep(folder: Path) -> None:
    """Remove what killed runs left in a cache folder (``.<name>.tmp-<pid>`` of dead pids)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        _, sep, pid = path.name.rpartition(".tmp-")
        if not sep or not path.name.startswith(".") or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _carves_val(raw_manifest: dict[str, Any], resplit: bool) -> bool:
    """True when the raw artifact brings splits of its own but no validation split."""
    names = {SPLIT_ALIASES.get(s, s) for s in raw_manifest["splits"]}
    return not resplit and "val" not in names


def cache_root(root: Path, corpus: str) -> Path:
    """``<root>/cache/<corpus>/phase1``: one folder per phase-1 fingerprint."""
    return root / "cache" / corpus / "phase1"


def _phase1_identity(
    entry: CorpusEntry, plan: Plan, raw_manifest: dict[str, Any], resplit: bool, config: BuildConfig
) -> dict[str, Any]:
    """What the clean+filter output of every shard depends on, and nothing else."""
    splits: dict[str, Any] = {"resplit": resplit}
    if _carves_val(raw_manifest, resplit):
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


def _derived_folders(folder: Path, plan: Plan) -> tuple[Path | None, Path | None]:
    """Signature and eval n-gram subfolders, named by the settings they depend on."""
    near = evalng = None
    if plan.near is not None:
        settings = plan.near.config()
        # Used by the grouping, not the signatures.
        for name in ("threshold", "verify", "verify_sigmas", "name"):
            settings.pop(name, None)
        near = folder / f"near-{fingerprint(settings)}"
    if plan.decontaminate is not None:
        settings = {"ngram": plan.decontaminate.ngram, "hash": plan.decontaminate.config()["hash"]}
        if plan.stopwords is not None and plan.stopwords.mode == "remove":
            words = plan.stopwords.config()
            settings["stopwords_removed"] = {k: words[k] for k in ("language", "list")}
        evalng = folder / f"evalng-{fingerprint(settings)}"
    return near, evalng


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


def existing_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _phase1(
    entry: CorpusEntry,
    root: Path,
    config: BuildConfig,
    plan: Plan,
    raw_manifest: dict[str, Any],
    resplit: bool,
    sources: list[Path],
    work: Path,
    executor: Executor,
    progress: bool,
    report: dict[str, Any],
    force: bool = False,
) -> Iterator[tuple[_Phase1Cache, np.ndarray, dict[str, StageStats]]]:
    """Phase 1 for every shard, reusing the cache (``force``: none of it, every marker removed
    first); yields the cache, the rows per shard and split rank, and the phase-1 statistics.
    The cache's lock is held until the block ends (phases 2 and 3 read its files)."""
    if config.cache:
        identity = _phase1_identity(entry, plan, raw_manifest, resplit, config)
        # Absolute paths: a task may run in another working directory (a Ray worker) or on
        # another machine that mounts the same shared storage at the same path.
        folder = (cache_root(root, entry.name) / identity["fingerprint"]).absolute()
        lock: Any = artifact_lock(folder)
    else:
        identity, folder, lock = None, work / "phase1", contextlib.nullcontext()
    with lock:
        folder.mkdir(parents=True, exist_ok=True)
        near, evalng = _derived_folders(folder, plan)
        cache = _Phase1Cache(folder, near, evalng)
        for sub in (folder, near, evalng):
            if sub is not None:
                sub.mkdir(exist_ok=True)
                _sweep(sub)
        tasks = []
        for i, src in enumerate(sources):
            if force:
                for m in cache.done(i):
                    m.unlink(missing_ok=True)
            name = f"done-{i:05d}.json"
            own = _cached(folder / name)
            near_ok = near is None or _cached(near / name)
            evalng_ok = evalng is None or _cached(evalng / name)
            if own and near_ok and evalng_ok:
                continue
            run = not own
            tasks.append(
                _ShardTask(
                    i,
                    str(src.absolute()),
                    cache,
                    run,
                    near is not None and (run or not near_ok),
                    evalng is not None and (run or not evalng_ok),
                    plan,
                    resplit,
                    config.val_fraction,
                    config.test_fraction,
                    config.seed,
                    _carves_val(raw_manifest, resplit),
                )
            )
        report.update(
            shards=len(sources),
            reused=len(sources) - len(tasks),
            partly_reused=sum(not t.run_phase1 for t in tasks),
            cache=str(folder) if identity is not None else None,
        )
        results = executor.map_ordered(_shard_phase, tasks, desc="clean+filter", progress=progress)
        for done_shards, _ in enumerate(results, start=1):
            if done_shards == 1:
                _write_identity(folder, identity)
        _write_identity(folder, identity)
        counts = np.zeros((len(sources), RANKS), np.int64)
        stats: dict[str, StageStats] = {s.name: StageStats() for s in plan.shard_stages}
        for i in range(len(sources)):
            done = json.loads((folder / f"done-{i:05d}.json").read_text(encoding="utf-8"))
            counts[i] = done["ranks"]
            for name, st in _stats_from_json(done["stats"]).items():
                stats[name].merge(st)
        if identity is not None:
            _prune(folder, raw_manifest["fingerprint"])
        yield cache, counts, stats


# --------------------------------------------------------------------------- phase 2 (global)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    """The dedup numbering: group ``rank * shards + shard`` holds that shard's rows of that
    split rank, in row order; ``starts[g]`` is its first global number (plus the total)."""
    return np.concatenate([[0], np.cumsum(counts.T.reshape(-1))]).astype(np.int64)


def _numbered(keys: pl.LazyFrame, rank_starts: Sequence[int]) -> pl.LazyFrame:
    """One shard's keys with ``doc``, each row's number in the dedup order: the first number
    of its split rank's group in this shard (``rank_starts[rank]``) plus its row in the group."""
    return keys.with_columns(
        doc=pl.col("grow")
        + pl.col("rank").replace_strict(
            list(range(RANKS)), list(rank_starts), return_dtype=pl.Int64
        )
    )


def _rank_starts(starts: np.ndarray, shards: int, shard: int) -> tuple[int, ...]:
    """``_group_starts`` of one shard, by split rank."""
    return tuple(int(starts[r * shards + shard]) for r in range(RANKS))


def _scan_keys(cache: _Phase1Cache, starts: np.ndarray, shards: int) -> pl.LazyFrame:
    """Every document's key, id and ``doc``: its number in the dedup order."""
    return pl.concat(
        [
            _numbered(
                pl.scan_parquet(cache.file("keys", i, "parquet")), _rank_starts(starts, shards, i)
            )
            for i in range(shards)
        ]
    )


def _shard_rows(cache: _Phase1Cache, starts: np.ndarray, docs: np.ndarray) -> tuple[
    np.ndarray, np.ndarray
]:
    """``(shard, row)`` of documents given by their number in the dedup order."""
    shards = (len(starts) - 1) // RANKS
    group = np.searchsorted(starts, docs, side="right") - 1
    rank, shard = np.divmod(group, shards)
    within = docs - starts[group]
    rows = np.zeros(len(docs), np.int64)
    for s in np.unique(shard).tolist():
        in_shard = shard == s
        ranks = pl.read_parquet(cache.file("keys", s, "parquet"), columns=["rank"])["rank"]
        ranks = ranks.to_numpy()
        for r in np.unique(rank[in_shard]).tolist():
            pick = in_shard & (rank == r)
            rows[pick] = np.flatnonzero(ranks == r)[within[pick]]
    return shard, rows


def _exact_duplicates(keys: pl.LazyFrame) -> pl.DataFrame:
    """``(doc, kept, similarity)``: every document whose key an earlier document has."""
    first = keys.group_by("hi", "lo").agg(pl.col("doc").min().alias("kept"))
    return (
        keys.join(first, on=["hi", "lo"])
        .filter(pl.col("doc") != pl.col("kept"))
        .select("doc", "kept", pl.lit(1.0).alias("similarity"))
        .sort("doc")
        .collect()
    )


@dataclass(frozen=True)
class _KeyPartition:
    """One hash partition of a global grouping: an executor task, picklable, pure.

    ``files`` are per-shard Parquet files; ``starts[i][r]`` is the global number of shard
    ``i``'s first row of split rank ``r`` (exact keys) or ``starts[i][0]`` its row offset
    (eval n-grams). Every key (or n-gram hash) falls in exactly one partition, so the union of
    the partitions' answers is the unpartitioned answer, whatever their number.
    """

    files: tuple[str, ...]
    starts: tuple[tuple[int, ...], ...]
    partition: int
    partitions: int


def _exact_partition(task: _KeyPartition) -> pl.DataFrame:
    """The exact duplicates among the documents whose key falls in this partition."""
    keys = pl.concat(
        [
            _numbered(
                pl.scan_parquet(f)
                .select("hi", "lo", "grow", "rank")
                .filter(pl.col("lo") % task.partitions == task.partition),
                start,
            )
            for f, start in zip(task.files, task.starts, strict=True)
        ]
    )
    return _exact_duplicates(keys)


def _ngram_partition(task: _KeyPartition, dropped: np.ndarray) -> np.ndarray:
    """Sorted distinct eval n-gram hashes of this partition, from documents not dropped."""
    table = (
        pl.concat(
            [
                pl.scan_parquet(f)
                .filter(pl.col("hash") % task.partitions == task.partition)
                .with_columns(doc=pl.col("row") + int(start[0]))
                for f, start in zip(task.files, task.starts, strict=True)
            ]
        )
        .join(pl.DataFrame({"doc": dropped}).lazy(), on="doc", how="anti")
        .select(pl.col("hash").unique().sort())
        .collect()["hash"]
        .to_numpy()
    )
    return table.astype(np.uint64)


@dataclass(frozen=True)
class _NgramTask:
    part: _KeyPartition
    dropped: str  # a .npy of the global rows already dropped as duplicates


def _ngram_task(task: _NgramTask) -> np.ndarray:
    return _ngram_partition(task.part, np.load(task.dropped))


def _cluster_stats(duplicates: pl.DataFrame) -> dict[str, Any]:
    if duplicates.height == 0:
        return {"clusters": 0, "largest_clusters": []}
    sizes = (
        duplicates.group_by("kept").len().sort(["len", "kept"], descending=[True, False])["len"] + 1
    )
    return {"clusters": len(sizes), "largest_clusters": sizes.head(10).to_list()}


def _global_phase(
    plan: Plan,
    cache: _Phase1Cache,
    counts: np.ndarray,
    out_dir: Path,
    work: Path,
    executor: Executor | None = None,
) -> dict[str, dict[str, Any]]:
    """Decide every duplicate and write the per-shard keep codes and the n-gram table.

    Duplicates are decided over the documents numbered in the dedup order (``_group_starts``:
    test, val, train, other splits; then shard, then row), so the smallest number, the copy
    kept, is an evaluation document whenever one is in the group.
    """
    shards = len(counts)
    rows = counts.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    starts = _group_starts(counts)
    extra: dict[str, dict[str, Any]] = {}
    codes = [np.zeros(n, np.uint8) for n in rows]
    found: list[pl.DataFrame] = []
    if plan.exact or plan.near is not None:
        keys = _scan_keys(cache, starts, shards)
        exact = pl.DataFrame(schema={"doc": pl.Int64, "kept": pl.Int64, "similarity": pl.Float64})
        if plan.exact:
            # A distributed group-by: keys hash-partitioned, one executor task per partition.
            parts = partition_count(executor)
            key_files = tuple(
                str(cache.file("keys", i, "parquet").absolute()) for i in range(shards)
            )
            key_starts = tuple(_rank_starts(starts, shards, i) for i in range(shards))
            exact = pl.concat(
                map_partitions(
                    executor,
                    _exact_partition,
                    [_KeyPartition(key_files, key_starts, p, parts) for p in range(parts)],
                    desc="exact-dup keys",
                )
            ).sort("doc")
            extra["exact_dedup"] = _cluster_stats(exact)
            found.append(exact.with_columns(kind=pl.lit("exact")))
        if plan.near is not None:
            # One "shard" of the grouping per non-empty (split rank, shard) group, in the dedup
            # order; their files were written per group in phase 1.
            groups = [
                (r, i) for r in range(RANKS) for i in range(shards) if counts[i, r] > 0
            ]
            near = cluster(
                plan.near,
                [cache.group_file("bands", i, r, "parquet") for r, i in groups],
                [cache.group_file("sigs", i, r, "npy") for r, i in groups],
                np.array([starts[r * shards + i] for r, i in groups] + [starts[-1]], np.int64),
                exact["doc"].to_numpy(),
                executor=executor,
            )
            extra[plan.near.name] = _cluster_stats(near)
            found.append(near.with_columns(kind=pl.lit("near")))
            checkpoint("build.near_dedup")
        duplicates = pl.concat(found).sort("doc")
        shard_of, row_of = _shard_rows(cache, starts, duplicates["doc"].to_numpy())
        kinds = np.where((duplicates["kind"] == "exact").to_numpy(), _EXACT, _NEAR)
        for s, r, code in zip(shard_of.tolist(), row_of.tolist(), kinds.tolist(), strict=True):
            codes[s][r] = code
        ids = keys.select("doc", "id")
        (
            duplicates.lazy()
            .join(ids, on="doc", how="left")
            .join(ids.rename({"doc": "kept", "id": "duplicate_of"}), on="kept", how="left")
            .sort("doc")
            .select("id", "duplicate_of", "kind", "similarity")
            .collect()
            .write_parquet(out_dir / DUPLICATES)
        )
    for i, code in enumerate(codes):
        np.save(work / f"keep-{i:05d}.npy", code)
    if plan.decontaminate is not None:
        dropped = np.concatenate(
            [np.flatnonzero(c) + offsets[i] for i, c in enumerate(codes)]
        ).astype(np.int64)
        dropped_file = (work / "dropped-rows.npy").absolute()
        np.save(dropped_file, dropped)
        parts = partition_count(executor)
        ng_files = tuple(
            str(cache.file("evalng", i, "parquet").absolute()) for i in range(shards)
        )
        ng_starts = tuple((int(offsets[i]),) for i in range(shards))
        pieces = map_partitions(
            executor,
            _ngram_task,
            [
                _NgramTask(_KeyPartition(ng_files, ng_starts, p, parts), str(dropped_file))
                for p in range(parts)
            ],
            desc="eval n-grams",
        )
        # The partitions are disjoint: sorting their union gives the one sorted table.
        table = np.sort(np.concatenate(pieces)) if pieces else np.zeros(0, np.uint64)
        np.save(work / "eval-ngrams.npy", table.astype(np.uint64))
        extra[plan.decontaminate.name] = {"eval_ngrams": int(len(table))}
    return extra


# --------------------------------------------------------------------------- phase 3 (workers)


@dataclass(frozen=True)
class _FinishTask:
    index: int
    staged: str  # the shard's phase-1 documents (in the cache)
    work: str  # keep codes in, out-*.arrow written here
    stopwords: Stopwords | None
    decontaminate: Decontaminate | None

    def path(self, kind: str, suffix: str) -> Path:
        return Path(self.work) / f"{kind}-{self.index:05d}.{suffix}"


def _finish_phase(task: _FinishTask) -> tuple[str | None, dict[str, StageStats]]:
    """Phase 3 for one shard: drop duplicates, stopwords, decontaminate; write ``out-*``."""
    stats = {"exact_dedup": StageStats(), "near_dedup": StageStats()}
    later = [s for s in (task.stopwords, task.decontaminate) if s is not None]
    stats.update({s.name: StageStats() for s in later})
    staged = Path(task.staged)
    if not staged.exists():
        return None, stats
    codes = np.load(task.path("keep", "npy"))
    out = task.path("out", "arrow")
    writer: ShardWriter | None = None
    offset = 0
    for batch in read_batches(staged):
        code = codes[offset : offset + batch.num_rows]
        offset += batch.num_rows
        for value, name, reason in (
            (_EXACT, "exact_dedup", "exact_duplicate"),
            (_NEAR, "near_dedup", "near_duplicate"),
        ):
            st = stats[name]
            st.documents_in += batch.num_rows
            st.bytes_in += text_bytes(batch)
            hit = code == value
            if hit.any():
                st.dropped[reason] += int(hit.sum())
                record_samples(batch, pa.array(hit), reason, st)
                batch = batch.filter(pa.array(~hit))
                code = code[~hit]
            st.documents_out += batch.num_rows
            st.bytes_out += text_bytes(batch)
        for stage in later:
            batch = run_stage(stage, batch, stats[stage.name])
        if batch.num_rows == 0:
            continue
        if writer is None:
            writer = ShardWriter(out.parent, batch.schema, shard_bytes=2**62, name_pattern=out.name)
        writer.write_batch(batch)
    if writer is not None:
        writer.close()
    checkpoint("build.finish_phase")
    return (str(out) if writer is not None and out.exists() else None), stats


# --------------------------------------------------------------------------- the whole build


def _write_samples(path: Path, stats: dict[str, StageStats]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for stage, st in stats.items():
            for reason in sorted(st.samples):
                for doc in st.samples[reason]:
                    record = {"stage": stage, "reason": reason, **doc}
                    f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


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
    """Phases 1-3: the cleaned artifact (reused when one with the same fingerprint exists and
    every file it records is there, of its size; a damaged one is built again, with a warning).

    ``executor`` runs phases 1 and 3; without one, the config's executor is started here and
    stopped at the end. ``report``, when given, receives what phase 1 reused from its cache
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
    stage_config = {
        "stages": [s.config() for s in plan.shard_stages],
        "dedup": {
            "exact": plan.exact,
            "near": plan.near.config() if plan.near is not None else None,
            "order": DEDUP_ORDER,
        },
        "stopwords": plan.stopwords.config() if plan.stopwords is not None else None,
        "decontaminate": (plan.decontaminate.config() if plan.decontaminate is not None else None),
        "splits": {
            "resplit": resplit,
            **({"carve_val": True} if _carves_val(raw_manifest, resplit) else {}),
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "seed": config.seed,
        },
    }
    identity = new_manifest(
        "clean", entry.name, inputs={"raw": raw_manifest["fingerprint"]}, config=stage_config
    )
    target = clean_root(root, entry.name) / identity["fingerprint"]
    current = None if force else _reusable(target, entry.name)
    if current is not None:
        return target, current, True
    with artifact_lock(target):
        # Another process may have built it while this one waited for the lock.
        current = None if force else _reusable(target, entry.name, warn=False)
        if current is not None:
            return target, current, True
        return _build_clean_locked(
            entry, root, config, plan, raw, raw_manifest, resplit, identity, target, executor,
            progress, {} if report is None else report, force,
        )


def _reusable(target: Path, corpus: str, warn: bool = True) -> dict[str, Any] | None:
    """The manifest of a complete artifact at ``target`` whose recorded files are all there, of
    their size; None (after a warning naming a damaged file) when it must be built again."""
    current = existing_manifest(target)
    if current is not None and reusable(
        target, current, f"building {corpus} again", warn=warn
    ):
        return current
    return None


def _build_clean_locked(
    entry: CorpusEntry,
    root: Path,
    config: BuildConfig,
    plan: Plan,
    raw: Path,
    raw_manifest: dict[str, Any],
    resplit: bool,
    identity: dict[str, Any],
    target: Path,
    executor: Executor,
    progress: bool,
    report: dict[str, Any],
    force: bool = False,
) -> tuple[Path, dict[str, Any], bool]:
    """Phases 1-3 into a staging folder, under the artifact's lock (phase 1 through its
    cache, whose lock is held until phase 3 is done; ``force``: every shard recomputed)."""
    with staging_dir(target) as tmp, contextlib.ExitStack() as stack:
        # On Ctrl-C or SIGTERM the workers stop before the staging folder is removed, so that
        # none of them writes into a folder that is gone (this exit runs before staging's).
        stack.push(_abort_on_interrupt(executor))
        # Absolute paths: a task may run in another working directory (a Ray worker) or on
        # another machine that mounts the same shared storage at the same path.
        work = (tmp / "_work").absolute()
        work.mkdir()
        sources = shard_paths(raw, raw_manifest)
        cache, counts, stats = stack.enter_context(
            _phase1(
                entry, root, config, plan, raw_manifest, resplit, sources, work, executor,
                progress, report, force,
            )
        )
        extra = _global_phase(plan, cache, counts, tmp, work, executor)
        checkpoint("build.global_phase")
        decontaminate = plan.decontaminate
        if decontaminate is not None:
            decontaminate = Decontaminate(
                mode=decontaminate.mode,
                ngram=decontaminate.ngram,
                table=str(work / "eval-ngrams.npy"),
            )
        finish = [
            _FinishTask(
                i, str(cache.file("staged", i, "arrow")), str(work), plan.stopwords, decontaminate
            )
            for i in range(len(sources))
        ]
        late: dict[str, StageStats] = {}
        writer: ShardWriter | None = None
        for out, shard_stats in executor.map_ordered(
            _finish_phase, finish, desc="dedup+write", progress=progress
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
        shutil.rmtree(work)
        shards = writer.close() if writer else []
        if not shards:
            raise CorpuskitError(
                f"every document of {entry.name!r} was removed by the build stages; "
                "loosen the filters (e.g. --min-chars)"
            )
        if plan.exact:
            stats["exact_dedup"] = late["exact_dedup"]
        if plan.near is not None:
            stats["near_dedup"] = late["near_dedup"]
        for stage in (plan.stopwords, plan.decontaminate):
            if stage is not None:
                stats[stage.name] = late[stage.name]
        all_stats = {name: {**st.to_dict(), **extra.get(name, {})} for name, st in stats.items()}
        _write_samples(tmp / DROPPED_SAMPLES, stats)
        checkpoint("build.before_clean_manifest")
        assert writer is not None
        manifest = {
            **identity,
            "splits": dict(sorted(writer.split_counts.items())),
            "stats": all_stats,
            "shards": [s.__dict__ for s in shards],
        }
        manifest = write_manifest(tmp, manifest)
    return target, manifest, False


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
