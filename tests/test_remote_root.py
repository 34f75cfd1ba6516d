"""A data root on object storage: fetch and build work in a local mirror and push back."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from corpuskit import api
from corpuskit.remote import mirror_dir, remote_url


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CORPUSKIT_MIRROR_DIR", str(tmp_path / "mirrors"))
    monkeypatch.delenv("CORPUSKIT_HOME", raising=False)
    url = f"memory://corpuskit-test-{tmp_path.name}/root"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def test_which_roots_are_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORPUSKIT_HOME", raising=False)
    assert remote_url("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert remote_url("file:///tmp/x") is None
    assert remote_url("data") is None
    assert remote_url(None) is None
    monkeypatch.setenv("CORPUSKIT_HOME", "gs://b/p")
    assert remote_url(None) == "gs://b/p"


def test_build_on_a_remote_root_pushes_complete_artifacts(
    tiny_corpus: str, remote: str, tmp_path: Path
) -> None:
    fs = fsspec.filesystem("memory")
    first = api.build(tiny_corpus, data_dir=remote, progress=False, tokenizer="byte")
    assert not first.clean_skipped and not first.tokens_skipped
    # Every artifact the build made is on the remote root, manifest included, and LATEST.
    fp = first.tokens_dir.name
    for rel in (
        f"raw/{tiny_corpus}/manifest.json",
        f"clean/{tiny_corpus}/{first.clean_dir.name}/manifest.json",
        f"tokens/{tiny_corpus}/{fp}/meta.json",
        f"tokens/{tiny_corpus}/{fp}/train.bin",
        f"tokens/{tiny_corpus}/LATEST",
    ):
        assert fs.exists(f"{remote}/{rel}"), rel
    local = mirror_dir(remote)
    assert fs.cat(f"{remote}/tokens/{tiny_corpus}/{fp}/train.bin") == (
        local / "tokens" / tiny_corpus / fp / "train.bin"
    ).read_bytes()

    # A new machine (an empty mirror) finds the artifacts remotely: no work is redone.
    import shutil

    shutil.rmtree(local)
    again = api.build(tiny_corpus, data_dir=remote, progress=False, tokenizer="byte")
    assert again.clean_skipped and again.tokens_skipped


def test_fetch_on_a_remote_root(tiny_corpus: str, remote: str) -> None:
    fs = fsspec.filesystem("memory")
    result = api.fetch(tiny_corpus, data_dir=remote, progress=False)
    assert result.documents == 200
    assert fs.exists(f"{remote}/raw/{tiny_corpus}/manifest.json")
    assert api.fetch(tiny_corpus, data_dir=remote, progress=False).skipped


def test_cli_says_where_the_artifacts_went(
    tiny_corpus: str, remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_main

    code, out, err = run_main(capsys, "-q", "--data-dir", remote, "fetch", tiny_corpus)
    assert code == 0, err
    assert f"a local mirror of {remote}" in out
