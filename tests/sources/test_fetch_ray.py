"""Fetch on Ray: many-file sources read as Ray tasks give the same raw shards and manifest, byte
for byte, as the local executor with 1 worker (this process) and with 2 worker processes.

One local Ray instance (2 CPUs, no dashboard, its own temporary folder) serves the module and is
shut down at the end; the executor finds it running and leaves it alone. The last test lets the
executor start and stop a private instance of its own, as ``corpuskit fetch --executor ray``
does without ``--address``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpuskit.catalog import Catalog
from corpuskit.cli import cli
from corpuskit.fetch import fetch_entry
from tests.conftest import private_ray
from tests.sources.test_fetch_parallel import (
    digests,
    files_catalog,
    generated_folder,
    pytorch_examples_tree,
)

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'corpuskit[ray]')")


def test_cli_fetch_with_a_private_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``corpuskit fetch NAME --executor ray --workers 2``: Ray started and stopped by the
    command; the same shards as ``--workers 1``; ``--address`` is refused without Ray."""
    if ray.is_initialized():  # runs first, before the module's session is started
        pytest.skip("a Ray session is already running in this process")
    folder = generated_folder(tmp_path / "texts", n=120)
    catalog = files_catalog(tmp_path, "gen", folder)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_TMPDIR", tempfile.mkdtemp(prefix="ckfr-", dir="/tmp"))
    runner = CliRunner()
    base = ["--catalog", str(catalog), "-q"]
    done = runner.invoke(
        cli, [*base, "--data-dir", str(tmp_path / "r"), "fetch", "gen", "--executor", "ray",
              "--workers", "2"], catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    assert "gen: fetched: 121 documents" in done.output
    assert not ray.is_initialized(), "the private Ray instance is stopped again"
    done = runner.invoke(
        cli, [*base, "--data-dir", str(tmp_path / "l"), "fetch", "gen"], catch_exceptions=False
    )
    assert done.exit_code == 0, done.output
    assert digests(tmp_path / "r" / "raw" / "gen") == digests(tmp_path / "l" / "raw" / "gen")
    bad = runner.invoke(cli, [*base, "fetch", "gen", "--address", "auto"])
    assert "--address is for --executor ray" in str(bad.exception)
    shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    with private_ray(128, "ckfray-"):
        yield


def _three_ways(tmp_path: Path, catalog: Path, name: str, shard_bytes: int) -> dict[str, dict]:
    entry = Catalog.load([catalog]).get(name)
    out = {}
    for label, executor, workers in (("local1", "local", 1), ("local2", "local", 2),
                                     ("ray", "ray", 2)):
        result = fetch_entry(
            entry, tmp_path / label, progress=False, shard_bytes=shard_bytes,
            executor=executor, workers=workers,
        )
        assert not result.skipped
        out[label] = digests(result.path)
    return out


def test_real_code_tree_is_byte_identical_on_ray(ray_session: None, tmp_path: Path) -> None:
    files = pytorch_examples_tree(tmp_path / "examples")
    catalog = files_catalog(tmp_path, "pt-files", tmp_path / "examples")
    out = _three_ways(tmp_path, catalog, "pt-files", 48_000)
    assert out["local1"] == out["local2"] == out["ray"]
    assert len(out["ray"]) > 4, "several shards"
    assert len(files) > 100
    assert ray.is_initialized(), "a session someone else started must be left running"


def test_generated_folder_is_byte_identical_on_ray(ray_session: None, tmp_path: Path) -> None:
    folder = generated_folder(tmp_path / "texts")
    catalog = files_catalog(tmp_path, "gen", folder)
    out = _three_ways(tmp_path, catalog, "gen", 20_000)
    assert out["local1"] == out["local2"] == out["ray"]
    assert len(out["ray"]) > 5
