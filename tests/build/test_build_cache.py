"""The build's phase-1 cache, resume after a kill, the eval-first dedup order, big input files.

Phase 1 (split assignment, clean, filters, dedup keys, MinHash signatures, eval n-grams) is kept
per shard under ``<root>/cache/<corpus>/phase1/<fp>/``; what a build reused is reported in
``BuildResult.phase1`` (and printed by ``corpuskit build``), which is what these tests assert:
never timings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import xxhash
from click.testing import CliRunner

from corpuskit import api
from corpuskit.build import DUPLICATES, BuildResult, cache_root
from corpuskit.cli import cli
from corpuskit.fetch import fetch_entry
from corpuskit.shards import iter_documents, read_manifest
from tests.conftest import make_documents
from tests.reliability.test_crash_helpers import REPO, debris, tree_digest

NAME = "cachy"
VAL, TEST = 0.1, 0.1


def _split(doc_id: str) -> str:
    """The split ``build`` assigns to a document of a corpus without its own (seed 0)."""
    u = xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=0) / float(2**64)
    return "val" if u < VAL else "test" if u < VAL + TEST else "train"


def _catalog(tmp_path: Path, source: str, reader: str = "") -> Path:
    catalog = tmp_path / f"{NAME}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {NAME}
    title: Cache test corpus
    description: Generated documents with planted duplicates.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {source}
{reader}    recipe: {{tokenizer: byte, val_fraction: {VAL}, test_fraction: {TEST}}}
""",
        encoding="utf-8",
    )
    return catalog


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> dict:
    """300 long documents in one file each, fetched into several small raw shards; planted: an
    exact duplicate group spanning train, val and test, and a near-duplicate of a val document
    that comes *earlier* in shard order, in train."""
    parts = [d.replace("\n", " ") for d in make_documents(1500, seed=11)]
    docs = [" ".join(parts[i : i + 5]) for i in range(0, 1500, 5)]
    names = [f"doc{i:04d}.txt" for i in range(len(docs))]
    split = [_split(f"{NAME}/{n}") for n in names]
    first_train = split.index("train")
    last_val = max(i for i, s in enumerate(split) if s == "val")
    last_test = max(i for i, s in enumerate(split) if s == "test")
    docs[last_val] = docs[first_train]
    docs[last_test] = docs[first_train]
    near_train = next(i for i, s in enumerate(split) if s == "train" and i > first_train)
    near_val = max(i for i, s in enumerate(split) if s == "val" and i < last_val)
    assert near_train < near_val
    words = docs[near_val].split()
    words[7] = "changed"
    docs[near_train] = " ".join(words)
    folder = tmp_path / "texts"
    folder.mkdir()
    for name, text in zip(names, docs, strict=True):
        (folder / name).write_text(text, encoding="utf-8")
    source = f'{{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}'
    catalog = _catalog(tmp_path, source)
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    entry = api.load_catalog().get(NAME)
    fetch_entry(entry, data_dir, progress=False, shard_bytes=60_000)
    shards = len(read_manifest(data_dir / "raw" / NAME)["shards"])
    assert shards >= 4
    return {
        "shards": shards,
        "names": names,
        "exact": (first_train, last_val, last_test),
        "near": (near_train, near_val),
    }


def _build(root: Path, **settings: object) -> BuildResult:
    settings = {"workers": 1, **settings}
    return api.build(NAME, data_dir=root, progress=False, **settings)  # type: ignore[arg-type]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _copy_raw(data_dir: Path, other: Path) -> Path:
    shutil.copytree(data_dir / "raw", other / "raw")
    return other


def test_second_build_does_no_work(corpus: dict, data_dir: Path) -> None:
    first = _build(data_dir)
    assert first.phase1 is not None
    assert first.phase1["shards"] == corpus["shards"] and first.phase1["reused"] == 0
    [cache] = [p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]
    assert first.phase1["cache"] == str(cache.absolute())
    assert len(list(cache.glob("done-*.json"))) == corpus["shards"]
    second = _build(data_dir)
    assert second.skipped and second.clean_skipped and second.tokens_skipped
    assert second.phase1 is None  # the clean artifact was up to date: phase 1 not consulted
    assert second.clean_dir == first.clean_dir and second.tokens_dir == first.tokens_dir


def test_dedup_and_later_stage_changes_reuse_phase_one(corpus: dict, data_dir: Path) -> None:
    n = corpus["shards"]
    base = _build(data_dir)
    assert base.phase1 is not None and base.phase1["reused"] == 0
    # Near-dedup on: clean+filter output reused, signatures computed for every shard.
    near = _build(data_dir, near_dedup=True)
    assert near.phase1 is not None
    assert (near.phase1["reused"], near.phase1["partly_reused"]) == (0, n)
    assert near.clean_dir != base.clean_dir
    # Only the grouping threshold changes: signatures are reused too, nothing is computed.
    looser = _build(data_dir, near_dedup=True, minhash_threshold=0.7)
    assert looser.phase1 is not None
    assert (looser.phase1["reused"], looser.phase1["partly_reused"]) == (n, 0)
    # Stopwords, dedup off, the tokenizer: phase 1 entirely reused.
    for settings in ({"stopwords": "filter", "min_stopword_fraction": 0.05}, {"dedup": False}):
        result = _build(data_dir, **settings)
        assert result.phase1 is not None and result.phase1["reused"] == n, settings
    # Signature settings change: signatures recomputed, clean+filter output still reused.
    sigs = _build(data_dir, near_dedup=True, minhash_bands=16)
    assert sigs.phase1 is not None and sigs.phase1["partly_reused"] == n
    # The cached results are the uncached results, byte for byte.
    fresh = _build(_copy_raw(data_dir, data_dir.parent / "fresh"), near_dedup=True, cache=False)
    assert fresh.phase1 is not None and fresh.phase1["cache"] is None
    assert _files(fresh.clean_dir) == _files(near.clean_dir)
    assert not (data_dir.parent / "fresh" / "cache").exists()
    assert len([p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]) == 1


def test_filter_or_split_change_recomputes_phase_one(corpus: dict, data_dir: Path) -> None:
    n = corpus["shards"]
    _build(data_dir)
    changed = _build(data_dir, min_chars=200)
    assert changed.phase1 is not None
    assert (changed.phase1["reused"], changed.phase1["partly_reused"]) == (0, 0)
    resplit = _build(data_dir, val_fraction=0.2)
    assert resplit.phase1 is not None and resplit.phase1["reused"] == 0
    caches = [p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]
    assert len(caches) == 3  # same raw input: every setting's cache is kept
    back = _build(data_dir, min_chars=200, dedup=False)
    assert back.phase1 is not None and back.phase1["reused"] == n


def test_a_new_fetch_prunes_caches_of_the_old_one(
    corpus: dict, data_dir: Path, tmp_path: Path
) -> None:
    _build(data_dir)
    (tmp_path / "texts" / "doc0000.txt").write_text("A new first document.", encoding="utf-8")
    entry = api.load_catalog().get(NAME)
    fetch_entry(entry, data_dir, progress=False, shard_bytes=60_000)
    result = _build(data_dir)
    assert result.phase1 is not None and result.phase1["reused"] == 0
    caches = [p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]
    assert [str(p.absolute()) for p in caches] == [result.phase1["cache"]]


@pytest.mark.parametrize(
    ("point", "finished"),
    [
        ("build.shard_phase:3", 3),  # after the third shard's done marker
        ("build.shard_files:3", 2),  # third shard's files in place, its marker not yet written
    ],
)
def test_killed_build_resumes_from_finished_shards(
    corpus: dict, data_dir: Path, tmp_path: Path, point: str, finished: int
) -> None:
    """SIGKILL during phase 1; the re-run reuses the shards that finished, and the whole data
    folder (cache included) ends byte-identical to an uninterrupted build's."""
    argv = ["-q", "build", NAME, "--workers", "1", "--near-dedup"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CORPUSKIT_FAULT_POINT": point}
    killed = subprocess.run(
        [sys.executable, "-m", "corpuskit.cli", *argv], env=env, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    [cache] = [p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]
    assert len(list(cache.glob("done-*.json"))) == finished
    assert not (data_dir / "clean" / NAME).exists() or not any(
        p.name[0] != "." for p in (data_dir / "clean" / NAME).iterdir()
    )
    again = CliRunner().invoke(cli, argv[1:])
    assert again.exit_code == 0, again.output
    n = corpus["shards"]
    done = f"{finished} reused, 0 partly reused, {n - finished:,} computed"
    assert f"{n:>8,} shards: {done}" in again.output
    assert debris(data_dir) == []
    reference = _copy_raw(data_dir, tmp_path / "reference")
    plain = CliRunner().invoke(cli, ["--data-dir", str(reference), *argv[1:]])
    assert plain.exit_code == 0, plain.output
    assert "0 reused" in plain.output
    assert tree_digest(data_dir) == tree_digest(reference)


def test_evaluation_copies_win_the_dedup(corpus: dict, data_dir: Path) -> None:
    """The kept copy of a duplicate group is the test one, then val, then train, whatever the
    shard order: the train copies go, the evaluation sets stay whole."""
    result = _build(data_dir, near_dedup=True)
    names = corpus["names"]
    train, val, test = (f"{NAME}/{names[i]}" for i in corpus["exact"])
    near_train, near_val = (f"{NAME}/{names[i]}" for i in corpus["near"])
    assert [_split(d) for d in (train, val, test, near_train, near_val)] == [
        "train", "val", "test", "train", "val",
    ]
    dupes = {d["id"]: d for d in pq.read_table(result.clean_dir / DUPLICATES).to_pylist()}
    assert dupes[train]["duplicate_of"] == test and dupes[train]["kind"] == "exact"
    assert dupes[val]["duplicate_of"] == test
    assert dupes[near_train]["duplicate_of"] == near_val and dupes[near_train]["kind"] == "near"
    kept = {d["id"]: d["split"] for d in iter_documents(result.clean_dir, ["id", "split"])}
    assert kept[test] == "test" and kept[near_val] == "val"
    assert train not in kept and near_train not in kept and val not in kept
    assert all(d["duplicate_of"] in kept for d in dupes.values())


def test_one_and_two_workers_write_identical_artifacts_and_caches(
    corpus: dict, data_dir: Path, tmp_path: Path
) -> None:
    settings = {"near_dedup": True, "decontaminate": "drop", "stopwords": "remove"}
    one = _build(data_dir, workers=1, **settings)
    other = _copy_raw(data_dir, tmp_path / "other")
    two = _build(other, workers=2, **settings)
    assert _files(one.clean_dir) == _files(two.clean_dir)
    assert tree_digest(data_dir) == tree_digest(other)


def test_a_large_single_file_becomes_many_parallel_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """One JSON Lines file is cut into raw shards by size at fetch, and phase 1 runs one task
    per raw shard (``corpuskit fetch`` uses 16 MB shards; 100 kB here)."""
    big = tmp_path / "big.jsonl"
    docs = [d.replace("\n", " ") for d in make_documents(2000, seed=4)]
    big.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    assert big.stat().st_size > 300_000
    catalog = _catalog(tmp_path, f'{{type: http, files: [{{url: "file://{big}"}}]}}',
                       "    reader: jsonl\n")
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    fetch_entry(api.load_catalog().get(NAME), data_dir, progress=False, shard_bytes=100_000)
    shards = len(read_manifest(data_dir / "raw" / NAME)["shards"])
    assert shards >= 3
    result = _build(data_dir, workers=2)
    assert result.phase1 is not None and result.phase1["shards"] == shards
    [cache] = [p for p in cache_root(data_dir, NAME).iterdir() if p.is_dir()]
    assert len(list(cache.glob("staged-*.arrow"))) == shards


def test_no_cache_flag_keeps_nothing(corpus: dict, data_dir: Path) -> None:
    ran = CliRunner().invoke(cli, ["-q", "build", NAME, "--workers", "1", "--no-cache", "--json"])
    assert ran.exit_code == 0, ran.output
    phase1 = json.loads(ran.output)["phase1"]
    assert phase1["cache"] is None and phase1["reused"] == 0
    assert phase1["shards"] == corpus["shards"]
    assert not (data_dir / "cache").exists()
    assert debris(data_dir) == []
