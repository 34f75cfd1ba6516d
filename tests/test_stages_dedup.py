"""MinHash-LSH near-duplicates (recall on planted copies, no false merges), stopwords, decontam."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.stages.base import StageStats, run_stage
from corpuskit.stages.decontam import Decontaminate, contaminated_rows, eval_ngrams
from corpuskit.stages.minhash import MinHashLSH, ShardSignatures, cluster, union_find_roots
from corpuskit.stages.stopwords import Stopwords


def random_docs(n: int, seed: int, words: int = 200) -> list[str]:
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice("abcdefghijklmnoprstuvw") for _ in range(rng.randint(2, 9)))
        for _ in range(4000)
    ]
    docs = []
    for _ in range(n):
        sentences = []
        for _ in range(words // 10):
            sentences.append(" ".join(rng.choice(vocab) for _ in range(10)) + ".")
        docs.append(" ".join(sentences))
    return docs


def near_copy(doc: str, rng: random.Random, kind: str) -> str:
    """A planted near-duplicate whose word 5-gram Jaccard stays at or above 0.8."""
    words = doc.split()
    if kind == "edit":  # 1-2% of the words replaced
        for i in rng.sample(range(len(words)), max(1, len(words) * rng.randint(1, 2) // 100)):
            words[i] = "edited"
        return " ".join(words)
    if kind == "reorder":  # sentences swapped around
        sentences = doc.split(". ")
        i, j = rng.sample(range(len(sentences)), 2)
        sentences[i], sentences[j] = sentences[j], sentences[i]
        return ". ".join(sentences)
    # boilerplate header and footer
    return "Home | About | Contact\n" + doc + "\nCopyright 2024 All rights reserved."


def jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(t: str) -> set[tuple[str, ...]]:
        w = [x.strip(".|").lower() for x in t.split() if x.strip(".|")]
        return set(zip(*[w[i:] for i in range(n)], strict=False))

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def run_lsh(lsh: MinHashLSH, shards: list[list[str]], tmp: Path):  # type: ignore[no-untyped-def]
    keys, sigs, rows = [], [], []
    for i, texts in enumerate(shards):
        acc = ShardSignatures.new(lsh)
        for lo in range(0, len(texts), 64):
            acc.add(pa.array(texts[lo : lo + 64], pa.large_string()))
        acc.write(tmp / f"sig{i}.npy", tmp / f"keys{i}.parquet")
        keys.append(tmp / f"keys{i}.parquet")
        sigs.append(tmp / f"sig{i}.npy")
        rows.append(len(texts))
    offsets = np.concatenate([[0], np.cumsum(rows)])
    return cluster(lsh, keys, sigs, offsets, np.zeros(0, np.int64))


def test_near_duplicate_recall_and_precision(tmp_path: Path) -> None:
    rng = random.Random(7)
    originals = random_docs(300, seed=1)
    copies = [
        near_copy(d, rng, ("edit", "reorder", "boiler")[i % 3])
        for i, d in enumerate(originals[:150])
    ]
    assert min(jaccard(a, b) for a, b in zip(originals, copies, strict=False)) >= 0.8
    # Originals in shard 0, copies spread over shards 1 and 2 (global across shards).
    found = run_lsh(MinHashLSH(), [originals, copies[:75], copies[75:]], tmp_path)
    pairs = dict(zip(found["doc"].to_list(), found["kept"].to_list(), strict=True))
    planted = {300 + i: i for i in range(150)}
    recall = sum(pairs.get(d) == k for d, k in planted.items()) / len(planted)
    assert recall >= 0.9, recall
    false = [d for d in pairs if d not in planted]
    assert false == []  # no merges among the 300 distinct originals
    assert all(pairs[d] < d for d in pairs)  # the first occurrence is the one kept


def test_minhash_estimates_and_edge_cases() -> None:
    lsh = MinHashLSH()
    docs = random_docs(2, seed=3)
    sig, has = lsh.signatures([docs[0], docs[0].upper(), docs[1], "", "two words"])
    assert has.tolist() == [True, True, True, False, True]
    assert np.array_equal(sig[0], sig[1])  # case does not matter
    assert np.mean(sig[0] == sig[2]) < 0.1
    with pytest.raises(CorpuskitError, match="exceeds"):
        MinHashLSH(bands=30, rows=6).validate()


def test_union_find_keeps_smallest_root_in_any_edge_order() -> None:
    edges = np.array([[5, 9], [2, 5], [9, 11], [20, 30]])
    expected = {2: 2, 5: 2, 9: 2, 11: 2, 20: 20, 30: 20}
    assert union_find_roots(edges) == expected
    assert union_find_roots(edges[::-1].copy()) == expected


def _batch(texts: list[str], splits: list[str] | None = None) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": [str(i) for i in range(len(texts))],
            "text": pa.array(texts, pa.large_string()),
            "split": splits or ["train"] * len(texts),
        }
    )


def test_stopwords_filter_and_remove() -> None:
    prose = "The cat sat on the mat and it was happy with the sun."
    table = "Price 10 USD Blue XL Cotton Shirt SKU 1234 Shipping Free"
    stats = StageStats()
    out = run_stage(Stopwords(mode="filter"), _batch([prose, table]), stats)
    assert out.column("id").to_pylist() == ["0"]
    assert dict(stats.dropped) == {"too_few_stopwords": 1}
    removed = Stopwords(mode="remove").remove(pa.array([prose, "Dogs bark.\nThe dog"]))
    assert removed.to_pylist() == ["cat sat mat happy sun.", "Dogs bark.\ndog"]
    with pytest.raises(CorpuskitError, match="no stopword list"):
        Stopwords(language="xx").words()


def test_decontamination_drops_or_marks_train_documents(tmp_path: Path) -> None:
    test_doc = " ".join(f"w{i}" for i in range(40))
    leaked = "Intro words here. " + " ".join(f"w{i}" for i in range(10, 23)) + " and more."
    close = "Intro " + " ".join(f"w{i}" for i in range(10, 22)) + " only twelve."
    data = _batch([test_doc, leaked, close, "unrelated text"], ["test", "train", "train", "val"])
    rows, hashes = eval_ngrams(data, 13)
    assert set(rows.tolist()) == {0}
    table = tmp_path / "ngrams.npy"
    np.save(table, np.unique(hashes))
    stats = StageStats()
    out = run_stage(Decontaminate(mode="drop", table=str(table)), data, stats)
    assert out.column("id").to_pylist() == ["0", "2", "3"]
    assert dict(stats.dropped) == {"contaminated": 1}
    marked = Decontaminate(mode="mark", table=str(table))(data, StageStats())
    assert marked.column("contaminated").to_pylist() == [False, True, False, False]
    assert contaminated_rows(
        pa.array(["W10 w11, w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22"]), 13, np.unique(hashes)
    ).tolist() == [True]
