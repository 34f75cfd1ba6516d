"""Near-duplicate detection at equal recall: corpuskit's MinHash stage vs datasketch vs rensa.

Input: documents from ``corpora.scaled_documents`` (real paragraphs recombined), 30% of them
planted near-duplicates of an earlier document with a small edit. Ground truth is the planted
pairs whose true Jaccard similarity (lowercased ``\\w+`` word 5-grams, computed exactly) is at
least 0.8; recall is the share of those duplicates a contender removes, and "false removals"
counts removed documents that were not planted duplicates (some may be real near-duplicates in
the source samples).

Every contender does the same job with the same LSH geometry (``num_perm`` values cut into
``bands`` x ``rows``, threshold 0.8, each candidate verified by its estimated Jaccard, first
occurrence kept), one process, from raw text to the list of documents to drop:

- ``corpuskit``: ``MinHashLSH.signatures`` and ``band_keys`` per batch of 1,024 documents
  (``ShardSignatures``, written to disk as in a build), then the global ``cluster`` phase;
- ``datasketch``: Python shingling, ``MinHash.bulk``, ``MinHashLSH(params=(bands, rows))``,
  query-then-insert with ``jaccard`` verification (its documented streaming pattern);
- ``rensa``: the same with ``RMinHash`` and ``RMinHashLSH`` (Rust).

Each contender first runs once on 50 documents (imports, one-time tables), untimed. Several
geometries run; the summary compares each contender at the cheapest geometry where its
recall reaches the target (the best recall every contender reaches), so time is compared at
equal recall. CPU seconds are recorded beside wall time: polars may use both cores.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import corpora
from benchmarks.common import Result, machine_info

THRESHOLD = 0.8
NGRAM = 5
_WORD = re.compile(r"\w+")
# (num_perm, bands, rows): the same LSH geometry for every contender.
GEOMETRIES = [(60, 10, 6), (120, 20, 6), (240, 40, 6)]


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < NGRAM:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def truth(docs: list[corpora.Doc]) -> tuple[set[int], dict[str, float]]:
    """Rows of planted duplicates with true Jaccard >= threshold, and every planted pair's J."""
    row_of = {d.id: i for i, d in enumerate(docs)}
    positives, jaccards = set(), {}
    for i, d in enumerate(docs):
        if d.dup_of is None:
            continue
        a, b = shingles(d.text), shingles(docs[row_of[d.dup_of]].text)
        j = len(a & b) / max(1, len(a | b))
        jaccards[d.id] = j
        if j >= THRESHOLD:
            positives.add(i)
    return positives, jaccards


def near_duplicates(lsh: Any, texts: list[str], work: Path) -> Any:
    """The build's code path on one shard: signatures per batch of 1,024, written to ``work``,
    then the global ``cluster`` phase; returns its ``(doc, kept, similarity)`` frame."""
    import pyarrow as pa

    from corpuskit.stages.minhash import ShardSignatures, cluster

    shard = ShardSignatures.new(lsh)
    for lo in range(0, len(texts), 1024):
        shard.add(pa.array(texts[lo : lo + 1024], pa.large_string()))
    shard.write(work / "sigs.npy", work / "bands.parquet")
    return cluster(
        lsh,
        [work / "bands.parquet"],
        [work / "sigs.npy"],
        np.array([0, len(texts)], np.int64),
        np.zeros(0, np.int64),
    )


def corpuskit_dedup(texts: list[str], geometry: tuple[int, int, int], work: Path) -> set[int]:
    from corpuskit.stages.minhash import MinHashLSH

    perm, bands, rows = geometry
    lsh = MinHashLSH(ngram=NGRAM, num_perm=perm, bands=bands, rows=rows, threshold=THRESHOLD)
    return set(near_duplicates(lsh, texts, work)["doc"].to_list())


def query_then_insert(lsh: Any, minhashes: Iterable[tuple[int, Any]]) -> set[int]:
    """The contenders' common loop: a document whose LSH candidates include a kept one with
    estimated Jaccard >= THRESHOLD is dropped (first occurrence kept), else it is kept."""
    dropped, kept = set(), {}
    for i, mh in minhashes:
        if any(mh.jaccard(kept[k]) >= THRESHOLD for k in lsh.query(mh)):
            dropped.add(i)
            continue
        lsh.insert(i, mh)
        kept[i] = mh
    return dropped


def datasketch_dedup(texts: list[str], geometry: tuple[int, int, int], work: Path) -> set[int]:
    from datasketch import MinHash, MinHashLSH

    perm, bands, rows = geometry
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=perm, params=(bands, rows))
    sets = [[s.encode("utf-8") for s in shingles(t)] for t in texts]
    hashes = MinHash.bulk(sets, num_perm=perm)
    return query_then_insert(
        lsh, ((i, mh) for i, (mh, items) in enumerate(zip(hashes, sets, strict=True)) if items)
    )


def rensa_dedup(texts: list[str], geometry: tuple[int, int, int], work: Path) -> set[int]:
    from rensa import RMinHash, RMinHashLSH

    perm, bands, _ = geometry
    lsh = RMinHashLSH(THRESHOLD, perm, bands)

    def minhashes() -> Iterator[tuple[int, Any]]:
        for i, text in enumerate(texts):
            items = list(shingles(text))
            if items:
                mh = RMinHash(perm, 42)
                mh.update(items)
                yield i, mh

    return query_then_insert(lsh, minhashes())


CONTENDERS: dict[str, Callable[[list[str], tuple[int, int, int], Path], set[int]]] = {
    "corpuskit near_dedup": corpuskit_dedup,
    "datasketch": datasketch_dedup,
    "rensa": rensa_dedup,
}


def _available(name: str) -> bool:
    module = name.split()[0]
    if module == "corpuskit":
        return True
    try:
        __import__(module)
    except ImportError:
        print(f"[benchmarks] {module} not installed: pip install -e '.[bench]'")
        return False
    return True


def _timed(fn: Callable[..., set[int]], texts: list[str], geometry: tuple[int, int, int]):
    work = Path(tempfile.mkdtemp(prefix="ck-nd-"))
    try:
        cpu0, start = time.process_time(), time.perf_counter()
        dropped = fn(texts, geometry, work)
        return time.perf_counter() - start, time.process_time() - cpu0, dropped
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(
    quick: bool = False, *, megabytes: float | None = None, repeats: int | None = None
) -> list[Result]:
    """Every contender and geometry ``repeats`` times (3; rounds alternate the contenders, so
    a burst of load hits them all), the median reported."""
    if megabytes is None:
        megabytes = 3.0 if quick else 20.0
    repeats = repeats or 3
    geometries = GEOMETRIES[:2] if quick else GEOMETRIES
    docs = list(corpora.scaled_documents(int(megabytes * 1e6), seed=1))
    texts = [d.text for d in docs]
    mb = corpora.size(docs) / 1e6
    positives, jaccards = truth(docs)
    planted_j = np.array(list(jaccards.values()))
    info = machine_info()
    names = [name for name in CONTENDERS if _available(name)]
    for name in names:  # imports and one-time tables are not what is measured
        _timed(CONTENDERS[name], texts[:50], geometries[0])
    runs: dict[tuple[str, tuple[int, int, int]], list[tuple[float, float, set[int]]]] = {}
    for _ in range(repeats):
        for name in names:
            for geometry in geometries:
                runs.setdefault((name, geometry), []).append(
                    _timed(CONTENDERS[name], texts, geometry)
                )
    results: list[Result] = []
    for (name, geometry), got in runs.items():
        seconds = statistics.median(t for t, _, _ in got)
        cpu = statistics.median(c for _, c, _ in got)
        dropped = got[-1][2]
        assert all(d == dropped for _, _, d in got), f"{name}: runs disagree"
        hits = len(dropped & positives)
        results.append(
            Result(
                "near_dedup",
                f"{name} {geometry[0]}p {geometry[1]}x{geometry[2]}",
                seconds,
                mb,
                "MB",
                {
                    "contender": name,
                    "num_perm": geometry[0],
                    "bands": geometry[1],
                    "rows": geometry[2],
                    "cpu_seconds": cpu,
                    "runs": [round(t, 3) for t, _, _ in got],
                    "documents": len(docs),
                    "docs_per_s": len(docs) / seconds,
                    "planted": len(jaccards),
                    "positives": len(positives),
                    "planted_jaccard_p10": float(np.percentile(planted_j, 10)),
                    "planted_jaccard_median": float(np.median(planted_j)),
                    "recall": hits / max(1, len(positives)),
                    "false_removals": len(dropped - set(jaccards_rows(docs))),
                    "threads": os.cpu_count(),
                    "machine": info,
                },
            )
        )
    return mark_equal_recall(results)


def jaccards_rows(docs: list[corpora.Doc]) -> list[int]:
    return [i for i, d in enumerate(docs) if d.dup_of is not None]


def mark_equal_recall(results: list[Result]) -> list[Result]:
    """Flag, per contender, the cheapest geometry whose recall reaches the common target.

    The target is the best recall that *every* contender reaches at some geometry (minus 0.005
    for sampling noise), so the flagged rows compare speed at equal recall.
    """
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.extra["contender"], []).append(r)
    if not by:
        return results
    target = min(max(r.extra["recall"] for r in rs) for rs in by.values()) - 0.005
    for rs in by.values():
        ok = [r for r in rs if r.extra["recall"] >= target]
        best = min(ok, key=lambda r: r.seconds) if ok else None
        for r in rs:
            r.extra["target_recall"] = target
            r.extra["equal_recall_pick"] = r is best
    return results
