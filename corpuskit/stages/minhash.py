"""Near-duplicate detection with MinHash-LSH, in the three phases of a global stage.

1. **Signatures, per batch** (in the workers): the lowercased ``\\w+`` words of the batch are
   found in numpy from the UTF-8 bytes and hashed by polars (``match_words``), word n-grams
   ("shingles") are hashed from them (``shingle_hashes``), and each shingle's high 32 bits
   ``y`` go through ``num_perm`` random bijections ``(a * y + b) mod 2**32`` (``a`` odd) in
   uint32, permutation-major in cache-sized chunks, reduced to the minimum per document with
   ``np.minimum.reduceat`` (``min_hashes``). Because the shingle hashes are well mixed, each
   value of two documents' signatures is equal with probability their Jaccard similarity J,
   nearly independently across values (``tests/stages/test_stages_dedup.py`` checks the mean and
   the spread). The signature is cut into ``bands`` bands of ``rows`` values; each band is
   hashed to one 64-bit bucket key. Keys and signatures go to disk per shard (Parquet and
   ``.npy``), never into one big dictionary. A document's signature depends on its text only,
   not on the batch or chunk it was computed in.
2. **Grouping, global** (``cluster``): buckets are partitioned by key; for each partition
   (``candidate_edges``, a pure function an executor may run anywhere) polars reads every
   shard's bucket keys of that partition and groups by ``(band, key)``; every document in a
   bucket is a candidate duplicate of the bucket's first document. Candidates are optionally
   verified by the Jaccard similarity estimated from the full signatures. The driver joins
   the pairs of all partitions with a union-find whose root is always the smallest global row,
   so the first document in the caller's numbering is kept whatever the partitioning, the order
   of the work or the executor (the build numbers test, then val, then train documents).
3. **Filter, per batch**: every non-root member is dropped (``MinHashLSH.apply``).

``MinHashLSH`` implements the ``GlobalStage`` contract of ``stages/base.py``; it never sees the
executor that runs its tasks.

With the defaults (128 permutations, 20 bands of 6 rows, threshold 0.8) a pair with Jaccard
0.8 becomes a candidate with probability ``1 - (1 - 0.8**6)**20 = 0.998``, one with 0.7 with
0.92, one with 0.5 with 0.27 and one with 0.3 with 0.014; verification then removes the
false candidates. The estimate from 128 values has a standard deviation of about 0.035 near
0.8, so verifying at 0.8 itself would also reject about half of the pairs just above it;
verification therefore cuts ``verify_sigmas`` (2) standard errors below the threshold, at 0.73
(``benchmarks/near_dup_quality.py`` measures recall and precision on planted copies).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from corpuskit.errors import CorpuskitError
from corpuskit.stages.base import (
    RANKS,
    Decision,
    GroupingContext,
    ShardRows,
    StageStats,
    TaskRunner,
    cluster_stats,
    drop_rows,
    dropped_here,
    partition_count,
    run_tasks,
)
from corpuskit.stages.components import Edges, EdgesFile, join_edges
from corpuskit.stages.minhash_files import gather_signatures, partition_keys
from corpuskit.stages.words import (
    HASH_VERSION,
    match_words,
    mix64,
    shingle_hashes,
    short_document_hashes,
)

# Version of the signature values (hash family, key bits, seeding). It is part of
# ``MinHashLSH.config()``, so changing how signatures are computed changes build fingerprints.
# 1: ``((a * x + b) mod 2**61-1) & 0xffffffff`` in uint64 (datasketch's family).
# 2: ``(a * y + b) mod 2**32`` in uint32, ``a`` odd, ``y`` the high 32 bits of the shingle hash.
MINHASH_VERSION = 2
_MAX_HASH = np.uint32(0xFFFFFFFF)
_SCRATCH = 1 << 19  # values permuted at once (2 MiB of uint32): the working set stays in cache


def min_hashes(
    doc: np.ndarray, shingles: np.ndarray, docs: int, permutations: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """MinHash signatures ``uint32 [docs, num_perm]`` of the shingle hashes of a batch.

    ``doc`` (non-decreasing) gives each shingle's document row; a row without shingles keeps
    the all-ones signature. Permutation ``i`` maps the high 32 bits ``y`` of a shingle hash to
    ``(a[i] * y + b[i]) mod 2**32`` with ``a[i]`` odd: a bijection of the 32-bit keys, so over
    well-mixed shingle hashes (``shingle_hashes`` ends with splitmix64's finaliser) every
    shingle of a set is equally likely to hold the minimum, and two sets share a minimum with
    probability their Jaccard similarity. The values are computed permutation-major in
    cache-sized chunks of shingles, ``[num_perm, chunk]``, so that the per-document minimum
    (``np.minimum.reduceat`` along the last axis) runs over contiguous memory; a document cut by
    a chunk boundary is combined with ``np.minimum``, so the result does not depend on how
    documents are split into batches or chunks.
    """
    a, b = permutations
    perms = len(a)
    sig_t = np.full((perms, docs), _MAX_HASH, dtype=np.uint32)
    if not len(shingles):
        return np.ascontiguousarray(sig_t.T)
    y = (shingles >> np.uint64(32)).astype(np.uint32)
    a_col, b_col = a[:, None], b[:, None]
    chunk = max(256, _SCRATCH // perms)
    scratch = np.empty((perms, chunk), np.uint32)
    firsts = np.flatnonzero(doc[1:] != doc[:-1]) + 1  # where each document's shingles begin
    for lo in range(0, len(y), chunk):
        hi = min(lo + chunk, len(y))
        values = scratch[:, : hi - lo]
        np.multiply(a_col, y[None, lo:hi], out=values)  # wraps modulo 2**32
        np.add(values, b_col, out=values)
        inner = firsts[np.searchsorted(firsts, lo, "right") : np.searchsorted(firsts, hi)]
        starts = np.concatenate([[0], inner - lo])
        reduced = np.minimum.reduceat(values, starts, axis=1)
        rows = doc[lo + starts]
        if lo and rows[0] == doc[lo - 1]:  # the first document began in the previous chunk
            np.minimum(reduced[:, 0], sig_t[:, rows[0]], out=reduced[:, 0])
        sig_t[:, rows] = reduced
    return np.ascontiguousarray(sig_t.T)


@dataclass(frozen=True)
class MinHashLSH:
    """Configuration and per-batch work of near-duplicate detection."""

    ngram: int = 5
    num_perm: int = 128
    bands: int = 20
    rows: int = 6
    threshold: float = 0.8
    verify: bool = True
    # Verification rejects a candidate only when its estimated similarity is this many standard
    # errors of a ``num_perm`` estimate below the threshold: a pair at the threshold is kept
    # with probability 0.977 (at 2.0) instead of one half. 0 verifies at the threshold itself.
    verify_sigmas: float = 2.0
    seed: int = 0
    name: str = "near_dedup"

    def config(self) -> dict[str, Any]:
        # Arrow lowercases the words (``match_words``): its version is part of the hash too.
        return {
            **asdict(self),
            "hash": HASH_VERSION,
            "minhash": f"{MINHASH_VERSION}/pyarrow-{pa.__version__}",
        }

    def validate(self) -> None:
        if self.ngram < 1 or self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise CorpuskitError("minhash ngram, perm, bands and rows must be positive")
        if self.bands * self.rows > self.num_perm:
            raise CorpuskitError(
                f"minhash bands x rows ({self.bands} x {self.rows}) exceeds the number of "
                f"permutations ({self.num_perm})"
            )
        if not 0 < self.threshold <= 1:
            raise CorpuskitError("minhash threshold must be in (0, 1]")
        if self.verify_sigmas < 0:
            raise CorpuskitError("minhash verify_sigmas must be 0 or more")

    def verify_cutoff(self) -> float:
        """The estimated similarity below which a candidate pair is rejected.

        Each of the ``num_perm`` values matches with probability J, so the estimate of a pair
        at the threshold ``t`` has standard error ``sqrt(t (1 - t) / num_perm)`` (0.035 for
        0.8 and 128); cutting at ``t`` itself would drop half of the pairs that sit at it.
        """
        t = self.threshold
        return t - self.verify_sigmas * float(np.sqrt(t * (1 - t) / self.num_perm))

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)``, uint32 each: ``a`` odd (so ``a * y + b mod 2**32`` is a bijection)."""
        rng = np.random.default_rng(self.seed)
        a = rng.integers(0, 1 << 32, size=self.num_perm, dtype=np.uint64).astype(np.uint32)
        b = rng.integers(0, 1 << 32, size=self.num_perm, dtype=np.uint64).astype(np.uint32)
        return a | np.uint32(1), b

    def signatures(self, texts: pa.Array | list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(signatures uint32 [docs, num_perm], has_shingles bool [docs])`` for a batch.

        A document shorter than ``ngram`` words has one shingle (all its words); one with no
        words at all has no signature and never takes part in LSH.
        """
        words = match_words(texts, seed=self.seed)
        doc, shingles = shingle_hashes(words, self.ngram)
        short_doc, short_hash = short_document_hashes(words, self.ngram)
        if len(short_doc):
            doc = np.concatenate([doc, short_doc])
            shingles = np.concatenate([shingles, short_hash])
            order = np.argsort(doc, kind="stable")
            doc, shingles = doc[order], shingles[order]
        return min_hashes(doc, shingles, len(words.counts), self.permutations()), words.counts > 0

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One uint64 bucket key per band: ``[docs, bands]``."""
        keys = np.zeros((len(sig), self.bands), np.uint64)
        with np.errstate(over="ignore"):
            for band in range(self.bands):
                acc = np.full(len(sig), np.uint64(band + 1))
                for col in sig[:, band * self.rows : (band + 1) * self.rows].T:
                    acc = mix64(acc * np.uint64(0x9E3779B97F4A7C15) + col.astype(np.uint64))
                keys[:, band] = acc
        return keys

    # ------------------------------------------------------------ the GlobalStage contract

    def signature_settings(self) -> dict[str, Any]:
        """The signatures' settings: threshold and verification are the grouping's only."""
        settings = self.config()
        for name in ("threshold", "verify", "verify_sigmas", "name"):
            settings.pop(name, None)
        return settings

    def sink(self) -> _NearSink:
        return _NearSink(self)

    def grouping_tasks(self, context: GroupingContext) -> list[ClusterPartition]:
        return _near_tasks(self, context)

    @staticmethod
    def group(task: ClusterPartition) -> Edges | EdgesFile:
        edges = candidate_edges(task)
        if task.edges_dir is None:
            return edges
        return edges.save(Path(task.edges_dir) / f"near-edges-{task.part:05d}.npz")

    def decide(self, answers: list[Edges | EdgesFile], context: GroupingContext) -> Decision:
        drops = join_edges(answers)
        return Decision(drops=drops, stats=cluster_stats(drops))

    def apply(
        self, batch: pa.RecordBatch, rows: np.ndarray | None, work: Path, index: int,
        stats: StageStats,
    ) -> tuple[pa.RecordBatch, np.ndarray]:
        hit = dropped_here(work, self.name, index, rows)
        return drop_rows(batch, hit, "near_duplicate", stats), ~hit


@dataclass
class ShardSignatures:
    """Accumulates one shard's signatures and bucket keys, then writes them to disk."""

    lsh: MinHashLSH
    sigs: list[np.ndarray]
    keys: list[pl.DataFrame]
    rows: int = 0

    @classmethod
    def new(cls, lsh: MinHashLSH) -> ShardSignatures:
        return cls(lsh, [], [])

    def add(self, texts: pa.Array) -> None:
        sig, has = self.lsh.signatures(texts)
        keys = self.lsh.band_keys(sig)
        present = np.flatnonzero(has)
        self.keys.append(
            pl.DataFrame(
                {
                    "row": np.repeat(present + self.rows, self.lsh.bands).astype(np.int64),
                    "band": np.tile(np.arange(self.lsh.bands, dtype=np.int16), len(present)),
                    "key": keys[present].reshape(-1),
                }
            )
        )
        self.sigs.append(sig)
        self.rows += len(sig)

    def write(self, sig_path: Path, keys_path: Path) -> None:
        sig = (
            np.concatenate(self.sigs) if self.sigs else np.zeros((0, self.lsh.num_perm), np.uint32)
        )
        np.save(sig_path, sig)
        frame = (
            pl.concat(self.keys)
            if self.keys
            else pl.DataFrame(schema={"row": pl.Int64, "band": pl.Int16, "key": pl.UInt64})
        )
        frame.write_parquet(keys_path)


@dataclass(frozen=True)
class ClusterPartition:
    """One independent piece of the global grouping: the buckets whose key is ``part`` modulo
    ``parts``, over every shard's bucket keys (a bucket is one ``(band, key)``, so it lies in
    exactly one partition)."""

    lsh: MinHashLSH
    keys_paths: tuple[str, ...]
    sig_paths: tuple[str, ...]
    offsets: np.ndarray
    excluded: np.ndarray
    part: int = 0
    parts: int = 1
    # Where the build's grouping task writes its pairs (``group``); None: returned in memory.
    edges_dir: str | None = None


def candidate_edges(task: ClusterPartition) -> Edges:
    """``(first, doc, similarity)``, sorted and unique: the verified candidate pairs of one
    partition, each document paired with the first (smallest) document of its bucket (numpy
    arrays, not a polars frame: the driver holds every partition's pairs at once, and numpy
    memory goes back to the system as soon as it is freed).

    A pure function of its files and arguments, so an executor may run the partitions
    anywhere (worker processes, Ray tasks) and in any order.
    """
    lsh, offsets = task.lsh, task.offsets
    if not task.keys_paths:
        return Edges.empty()
    # Each document with the first document of each of its buckets, as a window: a group_by
    # that gathered every bucket's documents into a list took 390 MB for a partition of
    # 2M keys (almost all buckets hold one document), the window 150 MB, in half the time.
    edges = (
        partition_keys(task.keys_paths, task.offsets, task.excluded, task.part, task.parts)
        .lazy()
        .with_columns(pl.col("doc").min().over("band", "key").alias("first"))
        .filter(pl.col("doc") != pl.col("first"))
        .select("first", "doc")
        .unique()
        .sort("first", "doc")
        .collect()
    )
    u = edges["first"].to_numpy()
    v = edges["doc"].to_numpy()
    similarity = np.ones(len(u))
    if lsh.verify and len(u):
        paths = [Path(p) for p in task.sig_paths]
        for lo in range(0, len(u), 1 << 16):  # bounded batches of pairs
            hi = min(lo + (1 << 16), len(u))
            similarity[lo:hi] = np.mean(
                gather_signatures(paths, offsets, u[lo:hi])
                == gather_signatures(paths, offsets, v[lo:hi]),
                axis=1,
            )
        passed = similarity >= lsh.verify_cutoff()
        u, v, similarity = u[passed], v[passed], similarity[passed]
    return Edges(u.astype(np.int64), v.astype(np.int64), similarity)


def cluster_tasks(
    lsh: MinHashLSH,
    keys_paths: list[Path],
    sig_paths: list[Path],
    offsets: np.ndarray,
    excluded: np.ndarray,
    partitions: int,
    edges_dir: Path | None = None,
) -> list[ClusterPartition]:
    """The grouping cut into ``partitions`` by bucket key: pure tasks for ``candidate_edges``.

    ``offsets[i]`` is the global row of file ``i``'s first document; ``excluded`` lists global
    rows already removed (exact duplicates), which take no part.
    """
    if not keys_paths:
        return []
    return [
        ClusterPartition(
            lsh,
            tuple(str(p) for p in keys_paths),
            tuple(str(p) for p in sig_paths),
            np.asarray(offsets, np.int64),
            np.asarray(excluded, np.int64),
            part,
            max(1, partitions),
            None if edges_dir is None else str(edges_dir),
        )
        for part in range(max(1, partitions))
    ]


def cluster(
    lsh: MinHashLSH,
    keys_paths: list[Path],
    sig_paths: list[Path],
    offsets: np.ndarray,
    excluded: np.ndarray,
    executor: TaskRunner | None = None,
    partitions: int | None = None,
) -> pl.DataFrame:
    """Global phase in one call: ``(doc, kept, similarity)`` for every near-duplicate to drop.

    The buckets are split into ``partitions`` by key (default: one, or the runner's slots);
    each partition runs ``candidate_edges``, on ``executor`` (anything with ``map_ordered``)
    when given, and ``join_edges`` joins them: the same result for any number of partitions,
    workers or executors.
    """
    if partitions is None:
        partitions = partition_count(executor)
    tasks = cluster_tasks(lsh, keys_paths, sig_paths, offsets, excluded, partitions)
    return join_edges(run_tasks(executor, candidate_edges, tasks, desc="near-dup buckets"))


@dataclass
class _NearSink:
    """One shard's MinHash signatures and bucket keys, one file pair per split rank (the
    grouping numbers documents test, then val, then train, each rank shard by shard)."""

    lsh: MinHashLSH
    ranks: list[ShardSignatures] = field(default_factory=list)

    def add(self, batch: pa.RecordBatch, rows: ShardRows) -> None:
        if not self.ranks:
            self.ranks = [ShardSignatures.new(self.lsh) for _ in range(RANKS)]
        texts = batch.column("text")
        for r in range(RANKS):
            mask = rows.rank == r
            n = int(mask.sum())
            if n:
                self.ranks[r].add(texts if n == len(mask) else texts.filter(pa.array(mask)))

    def write(self, tmp: Path, index: int) -> list[str]:
        names: list[str] = []
        for r, sig in enumerate(self.ranks):
            if sig.rows:
                pair = [f"sigs-{index:05d}-r{r}.npy", f"bands-{index:05d}-r{r}.parquet"]
                sig.write(tmp / pair[0], tmp / pair[1])
                names += pair
        return names


def _near_tasks(lsh: MinHashLSH, context: GroupingContext) -> list[ClusterPartition]:
    """One "file" of the grouping per non-empty (split rank, shard), in the dedup order."""
    numbering, folder = context.numbering, context.folder
    shards, starts = numbering.shards, numbering.starts
    groups = [(r, i) for r in range(RANKS) for i in range(shards) if numbering.counts[i, r] > 0]
    return cluster_tasks(
        lsh,
        [folder / f"bands-{i:05d}-r{r}.parquet" for r, i in groups],
        [folder / f"sigs-{i:05d}-r{r}.npy" for r, i in groups],
        np.array([starts[r * shards + i] for r, i in groups] + [starts[-1]], np.int64),
        np.load(context.excluded),
        context.partitions,
        context.work,
    )
