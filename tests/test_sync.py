"""``corpuskit sync``: finished artifacts copied between data roots (local paths, ``file://``,
fsspec's ``memory://`` standing in for an object store), manifest last."""

from __future__ import annotations

import hashlib
import importlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.cli import cli
from corpuskit.errors import CorpuskitError

# The module by its full name: the package root's name is the API function.
sync_module = importlib.import_module("corpuskit.sync")  # the module, not the API function

BUILD = {"tokenizer": "byte", "workers": 1, "val_fraction": 0.1}


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for kind in ("raw", "clean", "tokens")
        for p in sorted((root / kind).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture
def built(tmp_path: Path, tiny_corpus: str) -> Path:
    root = tmp_path / "local"
    api.build(tiny_corpus, data_dir=root, progress=False, **BUILD)
    return root


@pytest.fixture
def bucket() -> Iterator[str]:
    url = f"memory://ck-{uuid.uuid4().hex[:8]}/corpuskit"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def test_push_to_an_object_store_and_pull_back(
    built: Path, bucket: str, tmp_path: Path, tiny_corpus: str
) -> None:
    pushed = api.sync(built, bucket)
    assert [r.split("/")[0] for r in pushed.copied] == ["raw", "clean", "tokens", "tokens"]
    assert pushed.copied[-1] == f"tokens/{tiny_corpus}/LATEST"
    assert pushed.bytes > 0
    again = api.sync(built, bucket)
    assert again.copied == [] and len(again.up_to_date) == 3

    pulled_root = tmp_path / "elsewhere"
    pulled = api.sync(bucket, pulled_root)
    assert len(pulled.copied) == 4
    assert tree(pulled_root) == tree(built)
    # the pulled artifacts are the build's own: nothing is rebuilt, training finds LATEST
    rebuilt = api.build(tiny_corpus, data_dir=pulled_root, progress=False, **BUILD)
    assert rebuilt.skipped
    assert api.resolve_build(tiny_corpus, pulled_root).name == pushed.copied[2].split("/")[-1]
    assert not any(p.name.startswith(".") for p in pulled_root.rglob("*") if p.is_dir())


def test_an_interrupted_push_is_never_taken_for_complete(
    built: Path, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sync_module._copy_file
    calls = {"n": 0}

    def dies_at_the_third_file(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("connection reset")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_module, "_copy_file", dies_at_the_third_file)
    with pytest.raises(OSError, match="connection reset"):
        api.sync(built, bucket, kinds=["clean"])
    monkeypatch.setattr(sync_module, "_copy_file", real)
    fs = fsspec.filesystem("memory")
    clean = [p for p in fs.find(bucket) if "/clean/" in p]
    assert clean and not any(p.endswith("manifest.json") for p in clean), "no manifest yet"
    # a reader of the bucket sees no clean artifact at all
    pulled = api.sync(bucket, tmp_path / "reader", kinds=["clean"])
    assert pulled.copied == [] and pulled.up_to_date == []
    # the next push completes it
    done = api.sync(built, bucket, kinds=["clean"])
    assert len(done.copied) == 1
    api.sync(bucket, tmp_path / "reader", kinds=["clean"])
    assert tree(tmp_path / "reader") == {k: v for k, v in tree(built).items() if "clean/" in k}


def test_a_changed_raw_artifact_replaces_the_old_one_without_stale_files(
    tmp_path: Path, bucket: str, tiny_corpus: str
) -> None:
    root = tmp_path / "local"
    from corpuskit.catalog import Catalog
    from corpuskit.fetch import fetch_entry

    entry = Catalog.load().get(tiny_corpus)
    first = fetch_entry(entry, root, progress=False, shard_bytes=4_000)
    api.sync(root, bucket)
    fs = fsspec.filesystem("memory")
    many = {p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/raw/{tiny_corpus}")}
    fetch_entry(entry, root, progress=False, shard_bytes=40_000, force=True)
    assert len(first.manifest["shards"]) > 3
    result = api.sync(root, bucket)
    assert result.copied == [f"raw/{tiny_corpus}"]
    few = {p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/raw/{tiny_corpus}")}
    assert few < many
    assert few == {p.name for p in (root / "raw" / tiny_corpus).iterdir()}


def test_file_urls_corpus_filter_dry_run_and_the_cli(built: Path, tmp_path: Path) -> None:
    target = tmp_path / "mirror"
    url = target.as_uri()  # file:///...
    runner = CliRunner()
    dry = runner.invoke(cli, ["sync", str(built), url, "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert "would copy 3 artifact(s)" in dry.output and not target.exists()
    none = api.sync(built, url, corpora=["no-such-corpus"])
    assert none.copied == [] and none.up_to_date == []
    done = runner.invoke(cli, ["sync", str(built), url, "--only", "raw", "--json"])
    assert done.exit_code == 0, done.output
    assert [r.split("/")[0] for r in json.loads(done.output)["copied"]] == ["raw"]
    assert tree(target) == {k: v for k, v in tree(built).items() if k.startswith("raw/")}
    with pytest.raises(CorpuskitError, match="not a data root"):
        api.sync(tmp_path / "missing", url)
