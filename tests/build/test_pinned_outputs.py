"""Byte-identical to the build before the redesign (issue 17): every output file of three builds
with every stage on is pinned by sha256, recorded from the code before ``build.py`` became a
package.

Three corpora: a generated one (runs everywhere), a slice of the running interpreter's standard
library (code: the code-quality filter) and WikiText-2 validation articles (prose: quality,
repetition, stopwords, decontamination). Each pin also records a digest of its input; when the
input differs (another Python version, a different WikiText file) the test skips and says so,
instead of failing on data it was never pinned on. ``CORPUSKIT_PIN_RECORD=1`` rewrites the pins
(only ever from code known to be right).

JSON files are compared as canonical JSON with the fingerprints of the raw, clean and token
artifacts replaced by placeholders: the raw fingerprint holds the input folder's path (a new
temporary folder every run) and the others derive from it; a manifest's ``files`` records are
left out (they hash those JSON files' raw bytes). Everything else in them, the recorded
stage configuration included, is pinned.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from corpuskit import api
from corpuskit.catalog import Catalog
from corpuskit.fetch import fetch_entry
from tests.conftest import SHARED_DATA, make_documents

PINS = Path(__file__).with_name("pinned_outputs.json")
RECORD = os.environ.get("CORPUSKIT_PIN_RECORD") == "1"
STDLIB_PACKAGES = ("json", "email", "collections", "concurrent", "importlib", "logging")

EVERY_STAGE: dict[str, Any] = {
    "val_fraction": 0.1,
    "test_fraction": 0.05,
    "quality": True,
    "near_dedup": True,
    "decontaminate": "drop",
    "decontaminate_ngram": 8,
    "workers": 2,
}


def _catalog(tmp_path: Path, name: str, folder: Path, domains: list[str]) -> Path:
    catalog = tmp_path / f"{name}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {name}
    title: {name}
    description: Documents for the pinned-output test.
    license: see the test
    languages: [en]
    domains: {json.dumps(domains)}
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
""",
        encoding="utf-8",
    )
    return catalog


def _write(folder: Path, texts: list[str]) -> str:
    """One file per document; the digest of them all (the pin's input)."""
    folder.mkdir()
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        (folder / f"{i:04d}.txt").write_text(text, encoding="utf-8")
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()


def _normalised(path: Path, names: dict[str, str]) -> str:
    """sha256 of a file; JSON files as canonical JSON with fingerprints named by ``names``."""
    if path.suffix != ".json":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    data = json.loads(path.read_text(encoding="utf-8"))
    if path.name == "manifest.json":
        # Its file records hash the JSON files' raw bytes (fingerprints included); every file
        # it records is pinned on its own here.
        data.pop("files", None)
    if path.name == "meta.json":
        # Who encoded depends on what is installed (kitoken or not); the ids it wrote are the
        # .bin files, pinned on their own.
        data.pop("encoder", None)
    text = json.dumps(data, sort_keys=True)
    for fp, name in names.items():
        text = text.replace(fp, name)
    return hashlib.sha256(text.encode()).hexdigest()


def _digests(result: api.BuildResult, raw_fp: str) -> dict[str, str]:
    names = {raw_fp: "<raw>", result.clean_dir.name: "<clean>", result.tokens_dir.name: "<tokens>"}
    out = {}
    for kind, folder in (("clean", result.clean_dir), ("tokens", result.tokens_dir)):
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                out[f"{kind}/{p.relative_to(folder).as_posix()}"] = _normalised(p, names)
    return out


def _build_and_check(
    tmp_path: Path, name: str, texts: list[str], domains: list[str], **config: Any
) -> None:
    source = _write(tmp_path / "files", texts)
    catalog = _catalog(tmp_path, name, tmp_path / "files", domains)
    entry = Catalog.load([catalog]).get(name)
    root = tmp_path / "data"
    raw = fetch_entry(entry, root, progress=False, shard_bytes=64_000)  # several shards
    result = api.build(name, data_dir=root, catalog=[catalog], progress=False, **config)
    got = {"input": source, "outputs": _digests(result, raw.manifest["fingerprint"])}
    pins = json.loads(PINS.read_text(encoding="utf-8")) if PINS.exists() else {}
    if RECORD:
        pins[name] = got
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    if name not in pins:
        pytest.fail(f"no pin for {name}; record one with CORPUSKIT_PIN_RECORD=1 on known-good code")
    if pins[name]["input"] != source:
        pytest.skip(f"the {name} input differs from the one pinned (another Python or data file)")
    expected = pins[name]["outputs"]
    assert sorted(got["outputs"]) == sorted(expected), "other files than the pinned build"
    differ = [k for k in expected if got["outputs"][k] != expected[k]]
    assert not differ, f"files differ from the build before the redesign: {differ}"
    if importlib.util.find_spec("kitoken") and str(config.get("tokenizer", "")).startswith(
        "spm-bpe"
    ):  # the pinned ids were sentencepiece's: kitoken wrote the same
        assert result.meta["encoder"]["name"] == "kitoken", result.meta["encoder"]


def test_generated_corpus_every_stage(tmp_path: Path) -> None:
    docs = make_documents(300, seed=7)
    docs[20] = docs[5]
    docs[21] = docs[5].upper()
    docs[22] = docs[6] + " extra words at the end of it"  # a near duplicate
    for i in range(30, 40):  # a shared paragraph of boilerplate
        docs[i] = docs[i] + "\n\nSubscribe to the river stone market letter for more."
    _build_and_check(
        tmp_path, "pin-generated", docs, ["prose"], tokenizer="spm-bpe:400",
        repetition=True, stopwords="filter", **EVERY_STAGE,
    )


def test_python_stdlib_slice_every_stage(tmp_path: Path) -> None:
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for pkg in STDLIB_PACKAGES for p in (lib / pkg).glob("*.py"))
    texts = [p.read_text(encoding="utf-8") for p in files]
    _build_and_check(tmp_path, "pin-stdlib", texts, ["code"], tokenizer="byte", **EVERY_STAGE)


def test_wikitext_sample_every_stage(tmp_path: Path) -> None:
    source = SHARED_DATA / "wikitext-2" / "wiki.valid.raw"
    if not source.exists():
        pytest.skip(f"real data {source} is absent (../shared is beside the developers' clone)")
    articles = re.split(r"\n(?= = [^=].* = \n)", source.read_text(encoding="utf-8"))
    texts = [a for a in articles if a.strip()]
    _build_and_check(
        tmp_path, "pin-wikitext", texts, ["encyclopedia", "prose"], tokenizer="spm-unigram:800",
        wikitext=True, repetition=True, stopwords="remove", bos=True, **EVERY_STAGE,
    )
