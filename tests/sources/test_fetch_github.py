"""The github source against a loopback archive server: globs, one document per file with path,
language and license, and extracted files verified against the lock file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from tests.sources.test_fetch_helpers import LoopbackServer, Route, tar_gz_bytes

SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "ghp_PLANTEDsecret987"


def _archive(model: bytes = b"import torch\n\nclass GPT:\n    pass\n") -> bytes:
    top = f"nanoGPT-{SHA}"
    return tar_gz_bytes({
        f"{top}/model.py": model,
        f"{top}/README.md": b"# nanoGPT\n",
        f"{top}/data/prepare.py": b"print('hi')\n",
        f"{top}/tests/test_x.py": b"assert True\n",
        f"{top}/assets/logo.py": b"\x00\x01binary",
        f"{top}/bad.py": b"caf\xe9\n",
    })


@pytest.fixture
def gh_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CORPUSKIT_OFFLINE", "CORPUSKIT_LOCK", "CORPUSKIT_MIRROR", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    cat = tmp_path / "g.yaml"
    cat.write_text(
        f"""corpora:
  - name: gh-code
    title: A fake repository
    description: Code.
    license: MIT
    languages: [python]
    domains: [code]
    source:
      type: github
      repo: karpathy/nanoGPT
      commit: {SHA}
      globs: ["**/*.py", "*.md"]
      exclude: ["tests/**"]
    reader: code
""",
        encoding="utf-8",
    )
    return cat


def test_one_document_per_file_with_path_language_license(
    gh_catalog: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as srv:
        srv.routes[f"/karpathy/nanoGPT/archive/{SHA}.tar.gz"] = Route(_archive())
        monkeypatch.setenv("CORPUSKIT_GITHUB_ENDPOINT", srv.url)
        result = api.fetch("gh-code", catalog=[gh_catalog], progress=False)
    assert srv.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    docs = {d["path"]: d for d in iter_documents(result.path)}
    assert sorted(docs) == ["README.md", "data/prepare.py", "model.py"]
    assert docs["model.py"]["language"] == "python" and docs["README.md"]["language"] == "markdown"
    assert docs["model.py"]["license"] == "MIT" and docs["model.py"]["id"] == "gh-code/model.py"
    assert docs["model.py"]["text"].startswith("import torch\n\nclass GPT:\n    pass")
    assert result.manifest["skipped"] == {"binary": 1, "not_utf8": 1}
    lock = (data_dir / "corpuskit-lock.json").read_text()
    assert TOKEN not in lock and TOKEN not in json.dumps(result.manifest)
    assert json.loads(lock)["corpora"]["gh-code"]["pin"] == SHA


def test_changed_files_for_the_same_commit_are_refused(
    gh_catalog: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as srv:
        route = Route(_archive())
        srv.routes[f"/karpathy/nanoGPT/archive/{SHA}.tar.gz"] = route
        monkeypatch.setenv("CORPUSKIT_GITHUB_ENDPOINT", srv.url)
        api.fetch("gh-code", catalog=[gh_catalog], progress=False)
        # Same commit, other bytes: the download cache is cleared, the archive re-served.
        import shutil

        shutil.rmtree(data_dir / "downloads")
        route.body = _archive(model=b"print('tampered')\n")
        with pytest.raises(CorpuskitError, match="differ from the lock file.*model.py"):
            api.fetch("gh-code", catalog=[gh_catalog], progress=False, force=True)
    assert next(iter_documents(data_dir / "raw" / "gh-code"))["text"]  # old artifact intact
