"""Manifests record every file's size and hash; damaged artifacts are never used as if whole.

One small corpus is fetched (several raw shards) and built once per module; every test works
on its own copy of that data root and damages it the way a user's disk, a stray ``rm`` or an
interrupted copy would: a file deleted, truncated, or a manifest from an older corpuskit.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash

from corpuskit import api
from corpuskit.build import cache_root
from corpuskit.fetch import fetch_entry
from corpuskit.shards import (
    MANIFEST,
    DamagedArtifactError,
    read_batches,
    read_manifest,
    size_problems,
)
from tests.conftest import make_documents, run_main

NAME = "trusty"


def _write_corpus(base: Path) -> Path:
    folder = base / "texts"
    folder.mkdir()
    for i, text in enumerate(make_documents(240, seed=5)):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = base / f"{NAME}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {NAME}
    title: Trust test corpus
    description: Generated documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
    recipe: {{tokenizer: byte, val_fraction: 0.1}}
""",
        encoding="utf-8",
    )
    return catalog


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``(catalog, data root)``: the corpus fetched into 3+ raw shards and built once."""
    base = tmp_path_factory.mktemp("trust")
    catalog = _write_corpus(base)
    root = base / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORPUSKIT_CATALOG", str(catalog))
        mp.delenv("CORPUSKIT_HOME", raising=False)
        entry = api.load_catalog().get(NAME)
        fetch_entry(entry, root, progress=False, shard_bytes=15_000)
        api.build(NAME, data_dir=root, progress=False, workers=1)
    assert len(read_manifest(root / "raw" / NAME)["shards"]) >= 3
    yield catalog, root


@pytest.fixture
def root(template: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the built data root, as ``CORPUSKIT_HOME``."""
    catalog, built = template
    copy = tmp_path / "data"
    shutil.copytree(built, copy)
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    monkeypatch.setenv("CORPUSKIT_HOME", str(copy))
    return copy


def artifacts(root: Path) -> dict[str, Path]:
    """The raw, clean and token artifact folders of the corpus."""
    [clean] = [p for p in (root / "clean" / NAME).iterdir() if not p.name.startswith(".")]
    tokens = root / "tokens" / NAME / (root / "tokens" / NAME / "LATEST").read_text().strip()
    return {"raw": root / "raw" / NAME, "clean": clean, "tokens": tokens}


def _build(root: Path, **options: object) -> api.BuildResult:
    return api.build(NAME, data_dir=root, progress=False, workers=1, **options)  # type: ignore


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_every_manifest_records_size_and_hash_of_every_file(root: Path) -> None:
    for kind, folder in artifacts(root).items():
        manifest = json.loads((folder / MANIFEST).read_text())
        on_disk = {
            p.relative_to(folder).as_posix(): p
            for p in folder.rglob("*")
            if p.is_file() and p.name != MANIFEST
        }
        assert set(manifest["files"]) == set(on_disk), kind
        for name, path in on_disk.items():
            record = manifest["files"][name]
            assert record["bytes"] == path.stat().st_size, (kind, name)
            assert record["xxh3_128"] == xxhash.xxh3_128(path.read_bytes()).hexdigest()
    tokens = json.loads((artifacts(root)["tokens"] / MANIFEST).read_text())["files"]
    assert {"train.bin", "train.idx", "val.bin", "val.idx", "meta.json"} <= set(tokens)


def test_a_deleted_raw_shard_is_fetched_again_not_up_to_date(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = artifacts(root)["raw"]
    documents = sum(s["documents"] for s in read_manifest(raw)["splits"].values())
    (raw / "part-00001.arrow").unlink()
    with caplog.at_level(logging.WARNING, logger="corpuskit"):
        result = api.fetch(NAME, progress=False)
    assert not result.skipped and result.documents == documents
    assert not size_problems(raw, read_manifest(raw))
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "part-00001.arrow: missing" in warning and f"fetching {NAME} again" in warning
    assert api.fetch(NAME, progress=False).skipped  # whole again: up to date


def test_build_on_a_truncated_raw_shard_is_one_line_naming_the_fix(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arts = artifacts(root)
    shutil.rmtree(arts["clean"])  # so that the build has to read the raw shards
    _truncate(arts["raw"] / "part-00000.arrow")
    code, _, err = run_main(capsys, "-q", "build", NAME, "--workers", "1")
    line = _one_line(err)
    assert code == 1
    assert "part-00000.arrow" in line and f"`corpuskit fetch {NAME} --force`" in line


def test_a_truncated_train_bin_is_rebuilt_not_reused(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = artifacts(root)["tokens"]
    whole = (tokens / "train.bin").read_bytes()
    _truncate(tokens / "train.bin", 0.9)
    with caplog.at_level(logging.WARNING, logger="corpuskit"):
        result = _build(root)
    assert result.clean_skipped and not result.tokens_skipped
    assert (tokens / "train.bin").read_bytes() == whole
    [warning] = [r.getMessage() for r in caplog.records if "train.bin" in r.getMessage()]
    assert f"building {NAME} again" in warning
    assert _build(root).skipped


def test_a_truncated_clean_shard_is_rebuilt_identically(root: Path) -> None:
    clean = artifacts(root)["clean"]
    whole = {p.name: p.read_bytes() for p in clean.iterdir() if p.is_file()}
    _truncate(clean / "part-00000.arrow")
    result = _build(root)
    assert not result.clean_skipped
    assert {p.name: p.read_bytes() for p in clean.iterdir() if p.is_file()} == whole


def test_an_old_manifest_without_records_is_rebuilt_or_named(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arts = artifacts(root)
    for kind in ("raw", "tokens"):
        path = arts[kind] / MANIFEST
        manifest = json.loads(path.read_text())
        del manifest["files"]
        path.write_text(json.dumps(manifest))
    shutil.rmtree(arts["clean"])
    code, _, err = run_main(capsys, "-q", "build", NAME, "--workers", "1")
    line = _one_line(err)
    assert code == 1 and "older corpuskit" in line and f"corpuskit fetch {NAME} --force" in line
    assert not api.fetch(NAME, progress=False).skipped  # fetched again, now with records
    result = _build(root)
    assert not result.tokens_skipped  # the old token manifest was not trusted either
    assert "files" in read_manifest(arts["tokens"])


def test_build_force_rebuilds_everything_and_keeps_the_old_until_complete(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arts = artifacts(root)
    before = {k: {p.name: p.read_bytes() for p in v.iterdir()} for k, v in arts.items()}
    code, out, err = run_main(capsys, "-q", "build", NAME, "--workers", "1", "--force")
    assert code == 0, err
    assert "up to date" not in out and "0 reused" in out
    after = {k: {p.name: p.read_bytes() for p in v.iterdir()} for k, v in arts.items()}
    assert after == before  # same bytes: a forced rebuild is the same build

    import corpuskit.encode

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(corpuskit.encode, "write_manifest", fail)
    with pytest.raises(RuntimeError):
        _build(root, force=True)
    assert {p.name: p.read_bytes() for p in arts["tokens"].iterdir()} == before["tokens"]
    assert not [p for p in arts["tokens"].parent.iterdir() if ".tmp-" in p.name]


def test_a_truncated_or_deleted_build_cache_entry_is_recomputed(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arts = artifacts(root)
    clean_before = {p.name: p.read_bytes() for p in arts["clean"].iterdir()}
    [cache] = [p for p in cache_root(root, NAME).iterdir() if p.is_dir()]
    _truncate(cache / "staged-00000.arrow")
    (cache / "keys-00001.parquet").unlink()
    (cache / "done-00002.json").write_text('{"rows": ')  # a marker cut short
    shutil.rmtree(arts["clean"])
    with caplog.at_level(logging.WARNING, logger="corpuskit"):
        result = _build(root)
    assert result.phase1 is not None
    assert result.phase1["shards"] - result.phase1["reused"] == 3
    assert {p.name: p.read_bytes() for p in arts["clean"].iterdir()} == clean_before
    damaged = " ".join(r.getMessage() for r in caplog.records)
    assert "staged-00000.arrow" in damaged and "keys-00001.parquet" in damaged


def test_reading_a_truncated_shard_names_the_file_and_the_command(root: Path) -> None:
    shard = artifacts(root)["clean"] / "part-00000.arrow"
    _truncate(shard, 0.3)
    with pytest.raises(DamagedArtifactError) as info:
        list(read_batches(shard))
    message = str(info.value)
    assert "\n" not in message and str(shard) in message
    assert f"`corpuskit build {NAME} --force`" in message
    raw = artifacts(root)["raw"] / "part-00000.arrow"
    raw.unlink()
    with pytest.raises(DamagedArtifactError, match=f"fetch {NAME} --force"):
        list(read_batches(raw))


def test_inspect_and_export_refuse_a_truncated_bin(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = artifacts(root)["tokens"]
    _truncate(tokens / "val.bin", 0.5)
    for argv in (["inspect", NAME], ["export", NAME, str(tmp_path / "out")]):
        code, _, err = run_main(capsys, *argv)
        line = _one_line(err)
        assert code == 1 and "val.bin" in line and f"corpuskit build {NAME} --force" in line
    assert not (tmp_path / "out").exists()


def test_export_refuses_a_truncated_clean_shard(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _truncate(artifacts(root)["clean"] / "part-00000.arrow")
    code, _, err = run_main(capsys, "export", NAME, str(tmp_path / "out"))
    line = _one_line(err)
    assert code == 1 and "part-00000.arrow" in line and "build" in line
    assert not (tmp_path / "out").exists()


def test_sync_refuses_to_spread_a_damaged_artifact(root: Path, tmp_path: Path) -> None:
    from corpuskit.errors import CorpuskitError

    _truncate(artifacts(root)["raw"] / "part-00002.arrow")
    with pytest.raises(CorpuskitError, match=r"part-00002\.arrow .*fetch trusty --force"):
        api.sync(root, tmp_path / "copy")
    assert not (tmp_path / "copy" / "raw" / NAME).exists()
    api.sync(root, tmp_path / "copy2", kinds=["clean", "tokens"])  # the whole ones do copy
    assert (tmp_path / "copy2" / "tokens" / NAME / "LATEST").exists()
