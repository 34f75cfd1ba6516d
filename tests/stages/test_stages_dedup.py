"""MinHash-LSH near-duplicates (recall on planted copies, no false merges), stopwords, decontam."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuskit.errors import CorpuskitError
from corpuskit.stages.base import StageStats, run_stage
from corpuskit.stages.components import union_find_roots
from corpuskit.stages.decontam import Decontaminate, contaminated_rows, eval_ngrams
from corpuskit.stages.minhash import (
    MinHashLSH,
    ShardSignatures,
    cluster,
    min_hashes,
)
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


# --------------------------------------------------------------------------- MinHash internals


def test_signatures_do_not_depend_on_batching_or_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    import corpuskit.stages.minhash as minhash

    lsh = MinHashLSH()
    docs = random_docs(40, seed=5) + ["", "two words", "x"] + random_docs(5, seed=6, words=2000)
    whole, has = lsh.signatures(docs)
    assert has.tolist() == [bool(d.split()) for d in docs]
    for size in (1, 7, 64):
        parts = [lsh.signatures(docs[lo : lo + size])[0] for lo in range(0, len(docs), size)]
        assert np.array_equal(np.concatenate(parts), whole)
    monkeypatch.setattr(minhash, "_SCRATCH", 1)  # 256-shingle chunks: long documents are cut
    assert np.array_equal(lsh.signatures(docs)[0], whole)
    assert MinHashLSH().config()["minhash"].startswith(f"{minhash.MINHASH_VERSION}/pyarrow-")


def test_minhash_collision_rate_estimates_jaccard() -> None:
    """Each permutation's minima collide with probability J: the mean over many pairs is J."""
    rng = np.random.default_rng(0)
    lsh = MinHashLSH(num_perm=256)
    perms = lsh.permutations()
    estimates = []
    for _ in range(40):
        common = rng.integers(0, 2**63, 300, dtype=np.uint64)
        a = np.concatenate([common, rng.integers(0, 2**63, 100, dtype=np.uint64)])
        b = np.concatenate([common, rng.integers(0, 2**63, 100, dtype=np.uint64)])
        doc = np.repeat([0, 1], 400)
        sig = min_hashes(doc, np.concatenate([a, b]), 2, perms)
        estimates.append(np.mean(sig[0] == sig[1]))
    assert abs(np.mean(estimates) - 300 / 500) < 0.02
    assert 0.01 < np.std(estimates) < 0.05  # close to the binomial sd, 0.031


def test_partitioned_cluster_equals_unpartitioned(tmp_path: Path) -> None:
    from corpuskit.executors.local import LocalExecutor

    rng = random.Random(11)
    originals = random_docs(120, seed=2)
    copies = [
        near_copy(d, rng, ("edit", "reorder", "boiler")[i % 3]) for i, d in enumerate(originals)
    ]
    copies += [near_copy(d, rng, "edit") for d in copies[:30]]  # chains: clusters of three
    shards = [originals[:50], copies[:90], originals[50:], copies[90:]]
    lsh = MinHashLSH(threshold=0.7)
    whole = run_lsh(lsh, shards, tmp_path)
    assert whole.height > 100
    keys = [tmp_path / f"keys{i}.parquet" for i in range(len(shards))]
    sigs = [tmp_path / f"sig{i}.npy" for i in range(len(shards))]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in shards])])
    excluded = np.array([3, 200], np.int64)
    reference = cluster(lsh, keys, sigs, offsets, excluded)
    assert not set(reference["doc"].to_list()) & {3, 200}
    assert not set(reference["kept"].to_list()) & {3, 200}
    for parts in (2, 3, 7, 64):
        assert cluster(lsh, keys, sigs, offsets, excluded, partitions=parts).equals(reference)
    for workers in (1, 2):
        with LocalExecutor(workers) as executor:
            got = cluster(lsh, keys, sigs, offsets, excluded, executor=executor)
        assert got.equals(reference)


def test_partition_keys_are_the_partitions_share_of_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read in batches of 7 rows (a file is several batches), the partitions' keys together
    are every key of every file once, numbered from the file's offset, excluded ones left out."""
    import polars as pl

    from corpuskit.stages import minhash_files

    rng = np.random.default_rng(4)
    sizes = [5, 0, 13]
    paths, frames = [], []
    for i, n in enumerate(sizes):
        frame = pl.DataFrame(
            {
                "row": np.repeat(np.arange(n), 3).astype(np.int64),
                "band": np.tile(np.arange(3, dtype=np.int16), n),
                "key": rng.integers(0, 2**64 - 1, 3 * n, dtype=np.uint64),
            }
        )
        frame.write_parquet(tmp_path / f"k{i}.parquet")
        paths.append(str(tmp_path / f"k{i}.parquet"))
        frames.append(frame.with_columns(pl.col("row") + [0, 5, 5][i]).rename({"row": "doc"}))
    offsets = np.array([0, 5, 5, 18], np.int64)
    excluded = np.array([2, 17], np.int64)
    monkeypatch.setattr(minhash_files, "KEY_BATCH_ROWS", 7)
    got = pl.concat(
        [minhash_files.partition_keys(paths, offsets, excluded, p, 4) for p in range(4)]
    ).sort("doc", "band")
    want = pl.concat(frames).filter(~pl.col("doc").is_in([2, 17])).sort("doc", "band")
    assert got.equals(want)
    for p in range(4):
        part = minhash_files.partition_keys(paths, offsets, excluded, p, 4)
        assert (part["key"] % 4 == p).all()


def test_match_words_finds_the_words_of_batch_words() -> None:
    from corpuskit.stages.minhash import match_words
    from corpuskit.stages.words import MATCH_WORDS, batch_words

    texts = [
        "Hello, World! it's 3.5 x_y",
        "",
        None,
        "café naïve — “quoted” résumé",
        "हिन्दी 日本語 Ελληνικά кириллица",
        "emoji😀word 𝔘nicode",
        "   ",
        "end",
        "start",
    ]
    got = match_words(texts)
    want = batch_words(texts, pattern=MATCH_WORDS, lowercase=True)
    assert np.array_equal(got.doc, want.doc)
    assert np.array_equal(got.counts, want.counts)
    assert np.array_equal(got.hashes, want.hashes)
    sliced = pa.array(texts * 3, pa.large_string()).slice(4, 12)
    assert np.array_equal(match_words(sliced).hashes, batch_words(sliced).hashes)


_ALPHABET = "ab Zé_9.,-'\n\tλжहि日😀\u00a0\u0301"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=_ALPHABET, max_size=40), max_size=8))
def test_match_words_property(texts: list[str]) -> None:
    from corpuskit.stages.minhash import match_words
    from corpuskit.stages.words import batch_words

    got, want = match_words(texts), batch_words(texts)
    assert np.array_equal(got.doc, want.doc)
    assert np.array_equal(got.counts, want.counts)
    assert np.array_equal(got.hashes, want.hashes)


def test_match_words_classifies_every_code_point_like_the_regex() -> None:
    """Every ASCII byte and every code point of 1, 2, 3 and 4 UTF-8 bytes (a stride of the
    astral planes), each between two word characters and between two spaces, in documents that
    start and end inside words: the byte decoder and tables agree with polars' ``\\w``.

    The reference is given Arrow's lowercasing, as ``match_words`` is: Arrow's Unicode tables
    are newer than polars' (Arrow lowercases U+AB6C, which polars leaves alone)."""
    import pyarrow.compute as pc

    from corpuskit.stages.minhash import match_words
    from corpuskit.stages.words import batch_words

    points = [*range(0x00, 0xD800), *range(0xE000, 0x10000), *range(0x10000, 0x110000, 97)]
    chars = [chr(c) for c in points]
    texts = ["x" + "x ".join(chars[i : i + 500]) + "x" for i in range(0, len(chars), 500)]
    texts += [" " + " ".join(chars[i : i + 500]) + " " for i in range(0, len(chars), 500)]
    lowered = pc.utf8_lower(pa.array(texts, pa.large_string()))
    got, want = match_words(texts), batch_words(lowered, lowercase=False)
    assert np.array_equal(got.doc, want.doc)
    assert np.array_equal(got.hashes, want.hashes)


def test_match_words_never_joins_words_across_documents() -> None:
    from corpuskit.stages.minhash import match_words
    from corpuskit.stages.words import batch_words

    texts = ["ab", "", "", "cd", "é", "日", "x", "", "y z", "😀a", "b"]
    got, want = match_words(texts), batch_words(texts)
    assert got.counts.tolist() == [1, 0, 0, 1, 1, 1, 1, 0, 2, 1, 1]
    assert np.array_equal(got.doc, want.doc)
    assert np.array_equal(got.hashes, want.hashes)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abc d.", max_size=60), min_size=1, max_size=6), st.integers(1, 5))
def test_signature_of_a_document_ignores_its_batch(texts: list[str], split: int) -> None:
    lsh = MinHashLSH(num_perm=12, bands=4, rows=3, ngram=3)
    whole = lsh.signatures(texts)[0]
    parts = [lsh.signatures(texts[lo : lo + split])[0] for lo in range(0, len(texts), split)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_verification_cuts_standard_errors_below_the_threshold() -> None:
    """A pair at the threshold must not be a coin flip: the cut sits 2 standard errors lower."""
    lsh = MinHashLSH()
    assert lsh.verify_cutoff() == pytest.approx(0.8 - 2 * (0.8 * 0.2 / 128) ** 0.5)
    assert MinHashLSH(verify_sigmas=0.0).verify_cutoff() == 0.8
    # More permutations give a tighter estimate, so the cut moves towards the threshold.
    assert MinHashLSH(num_perm=512).verify_cutoff() > lsh.verify_cutoff()
    with pytest.raises(CorpuskitError, match="verify_sigmas"):
        MinHashLSH(verify_sigmas=-1).validate()


def test_match_words_hashes_the_same_without_arrows_string_view(monkeypatch) -> None:
    """pyarrow without ``string_view`` (older than the cast) takes polars' own conversion: the
    same hashes."""
    from corpuskit.stages.minhash import match_words

    texts = ["Hello, World! a much longer word than twelve bytes", "é日 x", ""]
    want = match_words(texts)
    monkeypatch.delattr(pa, "string_view")
    got = match_words(texts)
    assert np.array_equal(got.hashes, want.hashes)
    assert np.array_equal(got.doc, want.doc)
