"""The executor interface and its local implementation; per-shard packing; the build's root.

Nothing here needs Ray (``test_executor_ray.py`` has the Ray side).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.build import BuildConfig, build_root
from corpuskit.build import run as build
from corpuskit.catalog import Catalog
from corpuskit.encode import pack_split, pack_splits
from corpuskit.errors import CorpuskitError
from corpuskit.executors import make_executor
from corpuskit.executors.local import LocalExecutor
from corpuskit.fetch import fetch_entry
from corpuskit.shards import ShardWriter
from corpuskit.tokenizers import train_tokenizer


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("workers", [1, 2])
def test_local_results_keep_input_order(workers: int) -> None:
    with LocalExecutor(workers) as executor:
        got = list(executor.map_ordered(abs, list(range(-9, 0)), desc="t", progress=False))
        # A second step reuses the pool (same size) and still keeps the order.
        again = list(executor.map_ordered(abs, list(range(-5, 0)), desc="t", progress=False))
    assert got == list(range(9, 0, -1)) and again == [5, 4, 3, 2, 1]


def test_threads_per_call_shrink_the_pool() -> None:
    executor = LocalExecutor(2)
    # Two threads per call on two workers: one call at a time, in this process (no pool).
    assert list(executor.map_ordered(abs, [-1, -2], desc="t", threads=2, progress=False)) == [1, 2]
    assert executor._pool is None
    executor.close()


def test_choosing_an_executor() -> None:
    assert make_executor("local", workers=3).slots() == 3
    with pytest.raises(CorpuskitError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(CorpuskitError, match="--address is for --executor ray"):
        make_executor("local", address="auto")
    with pytest.raises(CorpuskitError, match="--executor must be one of"):
        BuildConfig(executor="spark").validate()
    with pytest.raises(CorpuskitError, match="--address is for --executor ray"):
        BuildConfig(address="auto").validate()
    # Where a build runs is not what it writes.
    assert "executor" not in BuildConfig(executor="ray").output_config()


def test_build_root_accepts_file_urls_and_refuses_object_stores(tmp_path: Path) -> None:
    assert build_root(f"file://{tmp_path}") == tmp_path
    assert build_root(tmp_path) == tmp_path
    for url in ("memory://corpora", "s3://bucket/corpora"):
        with pytest.raises(CorpuskitError, match="not supported as a build root"):
            build_root(url)


def test_a_file_url_data_root_builds(tmp_path: Path, tiny_corpus: str) -> None:
    result = api.build(
        tiny_corpus, data_dir=f"file://{tmp_path / 'root'}", tokenizer="byte", progress=False
    )
    assert result.tokens_dir.is_relative_to(tmp_path / "root")
    assert (result.tokens_dir / "train.bin").stat().st_size > 0


@pytest.mark.parametrize(("spec", "bos"), [("byte", False), ("spm-bpe:300", True)])
def test_per_shard_packing_equals_one_pass(
    tmp_path: Path,
    tiny_corpus: str,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    bos: bool,
) -> None:
    """Packs concatenated in shard order are the bytes one sequential pass writes."""
    # Small clean shards, so that packing is many tasks whose parts must be joined.
    monkeypatch.setattr(build, "ShardWriter", functools.partial(ShardWriter, shard_bytes=6000))
    entry = Catalog.load().get(tiny_corpus)
    fetch_entry(entry, tmp_path, progress=False, shard_bytes=4096)
    config = BuildConfig(val_fraction=0.2, test_fraction=0.1, workers=1)
    clean_dir, manifest, _ = build.build_clean(entry, tmp_path, config, progress=False)
    assert len(manifest["shards"]) > 3
    tokenizer = train_tokenizer(spec, iter(["river stone market"] * 200))
    splits = sorted(manifest["splits"])
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir()
    many.mkdir()
    expected = {
        s: pack_split(clean_dir, s, tokenizer, one, threads=1, progress=False, bos=bos)
        for s in splits
    }
    info = tokenizer.save(many)
    with LocalExecutor(2) as executor:
        got = pack_splits(clean_dir, splits, tokenizer, info, many, executor, bos=bos)
    assert got == expected
    for split in splits:
        for suffix in ("bin", "idx"):
            assert _sha(one / f"{split}.{suffix}") == _sha(many / f"{split}.{suffix}")
    assert not (many / "_pack").exists()


def test_ray_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is absent
    with pytest.raises(CorpuskitError, match=r"pip install 'corpuskit\[ray\]'"):
        make_executor("ray")


def _die_on_two(item: int) -> int:
    """A worker that is killed outright (as by the OOM killer) on item 2."""
    import os
    import signal

    if item == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_a_killed_worker_is_a_one_line_error_not_a_traceback() -> None:
    from corpuskit.errors import CorpuskitError
    from corpuskit.executors.local import LocalExecutor

    with LocalExecutor(2) as executor:
        with pytest.raises(CorpuskitError, match="worker process died"):
            list(executor.map_ordered(_die_on_two, [1, 2, 3, 4], desc="t", progress=False))
        # The broken pool is dropped: the next map starts a fresh one.
        assert list(executor.map_ordered(_die_on_two, [1, 3], desc="t", progress=False)) == [1, 3]
