"""Shared fixtures: an isolated data root and a small generated corpus with its own catalog."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"

WORDS = [
    "river", "stone", "market", "engine", "signal", "garden", "window", "theory", "harbor",
    "winter", "letter", "silver", "forest", "mirror", "planet", "bridge", "castle", "ladder",
    "the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at",
]


def make_documents(n: int, seed: int = 0) -> list[str]:
    """Deterministic pseudo-prose: enough variety for a tokenizer, no text from elsewhere."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lines = []
        for _ in range(rng.randint(2, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
            lines.append(" ".join(words).capitalize() + ".")
        docs.append("\n".join(lines))
    return docs


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("CORPUSKIT_HOME", str(root))
    monkeypatch.delenv("CORPUSKIT_CATALOG", raising=False)
    return root


@pytest.fixture
def tiny_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A 'files' corpus of 200 generated documents (3 exact duplicates) named 'tiny'."""
    folder = tmp_path / "tiny-texts"
    folder.mkdir()
    docs = make_documents(200)
    docs[10] = docs[3]
    docs[11] = docs[3].upper()  # same text after case folding: an exact duplicate too
    docs[12] = docs[4] + "  \n"  # differs only in trailing whitespace
    for i, text in enumerate(docs):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp_path / "tiny.yaml"
    catalog.write_text(
        f"""corpora:
  - name: tiny
    title: Tiny generated corpus
    description: Generated test documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
    recipe: {{tokenizer: "spm-bpe:300", val_fraction: 0.1}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    return "tiny"


def needs_shared(*parts: str) -> Path:
    """The path of real data under ../shared/data, or skip with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        why = (
            "this file is not among the shared samples"
            if SHARED_DATA.is_dir()
            else "../shared is only beside the developers' clone"
        )
        pytest.skip(f"real data {path} is absent ({why})")
    return path


@contextlib.contextmanager
def private_ray(object_store_mb: int, prefix: str) -> Iterator[None]:
    """A private loopback Ray (2 CPUs, no dashboard) for a test module, stopped at the end.

    Its temporary folder is short, under /tmp: Ray puts unix sockets there, and their paths
    have a length limit. No auth token is written to ~/.ray.
    """
    import logging
    import shutil
    import tempfile

    import ray

    temp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp,
        object_store_memory=object_store_mb * 2**20,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``corpuskit.cli.main`` as the console script does: ``(exit code, stdout, stderr)``."""
    from corpuskit.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def quick_http(monkeypatch: pytest.MonkeyPatch, retries: int, timeout: float) -> None:
    """Fast retries against loopback servers, and none of the user's offline/mirror settings."""
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", str(retries))
    monkeypatch.setenv("CORPUSKIT_HTTP_TIMEOUT", str(timeout))
    for name in ("CORPUSKIT_OFFLINE", "HF_HUB_OFFLINE", "CORPUSKIT_MIRROR", "CORPUSKIT_LOCK"):
        monkeypatch.delenv(name, raising=False)
