"""The Ray executor: real data built on a local Ray cluster is byte-identical to the local build.

One Ray instance (2 CPUs, no dashboard, its own temporary folder) serves the whole module and is
shut down by the fixture; the executor finds it already running and leaves it alone. Each test
fetches the same corpus into two data roots as many small shards (so there is real per-shard
work to distribute), builds one with the local executor and one with Ray, and compares every
file of the cleaned and the token artifacts by sha256: shards, manifests (stats included),
duplicates, dropped samples, tokenizer, ``.bin``/``.idx`` and ``meta.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.build import build_root
from corpuskit.build import run as build
from corpuskit.catalog import Catalog
from corpuskit.cli import cli
from corpuskit.errors import CorpuskitError
from corpuskit.executors import make_executor
from corpuskit.fetch import fetch_entry
from corpuskit.shards import ShardWriter
from tests.conftest import private_ray

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'corpuskit[ray]')")

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"

# Every stage on, so that every phase (exact, near and line dedup, decontamination, stopwords,
# the quality filter, per-shard packing of three splits) runs on Ray.
FULL: dict[str, Any] = {
    "val_fraction": 0.1,
    "test_fraction": 0.05,
    "quality": True,
    "near_dedup": True,
    "stopwords": "filter",
    "decontaminate": "drop",
    "decontaminate_ngram": 8,
    "paragraph_dedup": "lines",
}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    with private_ray(256, "ckray-"):
        yield


@pytest.fixture(autouse=True)
def small_clean_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cleaned artifacts of several shards, so that packing runs as several Ray tasks too."""
    monkeypatch.setattr(build, "ShardWriter", functools.partial(ShardWriter, shard_bytes=8_000))


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _catalog(tmp_path: Path, name: str, folder: Path, domains: list[str]) -> Path:
    catalog = tmp_path / f"{name}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {name}
    title: {name}
    description: Real documents from ../shared/data, one file each.
    license: see ../shared/data
    languages: [en]
    domains: {json.dumps(domains)}
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
""",
        encoding="utf-8",
    )
    return catalog


def _both(
    tmp_path: Path, name: str, catalog: Path | None, shard_bytes: int, **config: Any
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Build ``name`` with the local executor and with Ray; the digests of both builds."""
    entry = Catalog.load([catalog] if catalog else ()).get(name)
    outputs = []
    for executor in ("local", "ray"):
        root = tmp_path / executor
        raw = fetch_entry(entry, root, progress=False, shard_bytes=shard_bytes)
        assert len(raw.manifest["shards"]) > 3, "the corpus should span several shards"
        result = api.build(
            name,
            data_dir=root,
            catalog=[catalog] if catalog else (),
            executor=executor,
            workers=2,
            progress=False,
            **config,
        )
        assert not result.skipped
        assert len(result.clean_manifest["shards"]) > 1, "packing should be several tasks"
        outputs.append({"clean": _digests(result.clean_dir), "tokens": _digests(result.tokens_dir)})
    return outputs[0], outputs[1]


def test_generated_corpus_through_the_cli_is_byte_identical(
    ray_cluster: None, tmp_path: Path, tiny_corpus: str, capfd: pytest.CaptureFixture[str]
) -> None:
    entry = Catalog.load().get(tiny_corpus)
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    for root in (local_root, ray_root):
        fetch_entry(entry, root, progress=False, shard_bytes=4096)
    local = api.build(tiny_corpus, data_dir=local_root, workers=2, progress=False, **FULL)
    sets = [f"--set={k}={v}" for k, v in FULL.items()]
    done = CliRunner().invoke(
        cli,
        ["--data-dir", str(ray_root), "build", tiny_corpus, "--executor", "ray", *sets],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    # The same report, line for line, as the local build's (only the folder differs).
    assert "exact_dedup" in done.output and "decontaminate" in done.output
    progress = done.output + capfd.readouterr().err  # click >= 8.2 mixes stderr into output
    for step in ("clean+filter", "dedup+write", "tokenize+pack"):
        assert step in progress, f"no {step} progress bar on the Ray build"
    remote = api.build(tiny_corpus, data_dir=ray_root, progress=False, **FULL)
    assert remote.skipped, "the CLI build and the API build should have the same fingerprint"
    assert _digests(local.clean_dir) == _digests(remote.clean_dir)
    assert _digests(local.tokens_dir) == _digests(remote.tokens_dir)
    assert local.clean_manifest["stats"] == remote.clean_manifest["stats"]
    assert len(local.clean_manifest["shards"]) > 1, "packing should be several tasks"
    assert local.clean_manifest["stats"]["exact_dedup"]["dropped"] == {"exact_duplicate": 2}


def test_real_code_is_byte_identical(ray_cluster: None, tmp_path: Path) -> None:
    source = SHARED_DATA / "code-sample" / "pytorch_examples_source.jsonl"
    if not source.exists():
        pytest.skip(f"real data {source} is absent (../shared is beside the developers' clone)")
    folder = tmp_path / "files"
    folder.mkdir()
    with source.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            (folder / f"{i:04d}.txt").write_text(json.loads(line)["content"], encoding="utf-8")
    catalog = _catalog(tmp_path, "pytorch-examples", folder, ["code"])
    local, remote = _both(
        tmp_path, "pytorch-examples", catalog, 48_000, tokenizer="spm-bpe:1000", **FULL
    )
    assert local == remote
    assert {"train.bin", "val.bin", "test.bin", "train.idx"} <= set(local["tokens"])


def test_real_wikitext_is_byte_identical(ray_cluster: None, tmp_path: Path) -> None:
    source = SHARED_DATA / "wikitext-2" / "wiki.valid.raw"
    if not source.exists():
        pytest.skip(f"real data {source} is absent (../shared is beside the developers' clone)")
    # One document per article: WikiText marks article titles as " = Title = " lines.
    articles = re.split(r"\n(?= = [^=].* = \n)", source.read_text(encoding="utf-8"))
    folder = tmp_path / "files"
    folder.mkdir()
    for i, text in enumerate(a for a in articles if a.strip()):
        (folder / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = _catalog(tmp_path, "wikitext2-valid", folder, ["encyclopedia", "prose"])
    local, remote = _both(
        tmp_path,
        "wikitext2-valid",
        catalog,
        96_000,
        tokenizer="spm-unigram:800",
        bos=True,
        wikitext=True,
        val_fraction=0.1,
        near_dedup=True,
        decontaminate="mark",
    )
    assert local == remote


def test_task_errors_come_back_as_themselves(ray_cluster: None) -> None:
    with make_executor("ray", workers=2) as executor:
        results = executor.map_ordered(build_root, ["/a", "memory://x", "/b"], desc="t")
        assert next(results) == Path("/a")
        with pytest.raises(CorpuskitError, match="not supported as a build root"):
            next(results)


def test_results_keep_input_order_with_a_small_window(ray_cluster: None) -> None:
    with make_executor("ray", workers=1) as executor:
        assert executor.slots() == 1
        got = list(executor.map_ordered(abs, list(range(-30, 0)), desc="t", progress=False))
    assert got == list(range(30, 0, -1))
    assert ray.is_initialized(), "a Ray session started by someone else must be left running"
