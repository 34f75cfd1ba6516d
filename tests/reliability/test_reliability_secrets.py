"""Planted credentials (Kaggle key and Basic header, GitHub token, Hugging Face token, a token in
a mirror URL) never appear in any output: stdout, stderr, ``-v`` log records, every file under
the data folder (manifests, lock file, download cache, ``.complete`` markers, shards), error
messages — on success and on every failure path (refused credentials, 5xx bursts, dead hosts).

Adds to the per-source checks in ``test_fetch_kaggle.py``, ``test_fetch_github.py`` and
``test_fetch_hf.py``, which grep stdout/stderr, manifests and lock files on success.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_main
from tests.sources.test_fetch_helpers import LoopbackServer, Route, tar_gz_bytes, zip_bytes

KAGGLE_USER, KAGGLE_KEY = "alice", "kgl_PLANTED_key_7f3a"
GITHUB_TOKEN = "ghp_PLANTED_token_9c1e"
HF_TOKEN = "hf_PLANTED_token_55d0"
URL_TOKEN = "PLANTED_url_token_31b"
SECRETS = [
    KAGGLE_KEY,
    base64.b64encode(f"{KAGGLE_USER}:{KAGGLE_KEY}".encode()).decode(),
    GITHUB_TOKEN,
    HF_TOKEN,
    URL_TOKEN,
]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["one document", "another document"]}), buf)
    return buf.getvalue()


def _catalog(tmp_path: Path) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text(
        f"""corpora:
  - name: s-kaggle
    title: K
    description: Kaggle.
    license: CC0-1.0
    languages: [en]
    domains: [qa]
    source: {{type: kaggle, dataset: someone/qa, version: 2, files: ["q.csv"]}}
    reader: csv
    reader_options: {{text_fields: [Body]}}
  - name: s-github
    title: G
    description: GitHub.
    license: MIT
    languages: [python]
    domains: [code]
    source: {{type: github, repo: someone/code, commit: {COMMIT}, globs: ["*.py"]}}
    reader: code
  - name: s-hf
    title: H
    description: Hub.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: hf
      repo: someone/data
      revision: {COMMIT}
      files: [{{path: data/train.parquet}}]
    reader: parquet
    reader_options: {{text_fields: [text]}}
""",
        encoding="utf-8",
    )
    return path


def _expect(value: str):  # type: ignore[no-untyped-def]
    def check(headers: dict[str, str]) -> int | None:
        return None if headers.get("Authorization") == value else 401

    return check


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", KAGGLE_USER)
    monkeypatch.setenv("KAGGLE_KEY", KAGGLE_KEY)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "1")
    for name in ("KAGGLE_API_TOKEN", "GH_TOKEN", "CORPUSKIT_OFFLINE", "HF_HUB_OFFLINE",
                 "CORPUSKIT_LOCK", "CORPUSKIT_MIRROR"):
        monkeypatch.delenv(name, raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = run_main(capsys, "-v", *argv)
    return code, out + err


def _assert_no_secret(texts: list[str], root: Path) -> None:
    blobs = [t.encode() for t in texts]
    blobs += [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    blobs += [p.name.encode() for p in root.rglob("*")]
    for secret in SECRETS:
        assert not any(secret.encode() in b for b in blobs), f"{secret} leaked"


def test_no_credential_in_any_output_on_success_or_failure(
    tmp_path: Path,
    data_dir: Path,
    secret_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    cat = str(_catalog(tmp_path))
    basic = "Basic " + base64.b64encode(f"{KAGGLE_USER}:{KAGGLE_KEY}".encode()).decode()
    outputs: list[str] = []
    with LoopbackServer() as srv:
        monkeypatch.setenv("CORPUSKIT_KAGGLE_ENDPOINT", srv.url + "/api/v1")
        monkeypatch.setenv("CORPUSKIT_GITHUB_ENDPOINT", srv.url)
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        kaggle = Route(check=_expect(basic), redirect=srv.url.replace("127.0.0.1", "localhost")
                       + "/storage/q.zip")
        srv.routes["/api/v1/datasets/download/someone/qa"] = kaggle
        srv.routes["/storage/q.zip"] = Route(zip_bytes({"q.csv": b"Id,Body\n1,hello there\n"}))
        github = Route(tar_gz_bytes({f"code-{COMMIT}/a.py": b"print('hi')\n"}),
                       check=_expect(f"Bearer {GITHUB_TOKEN}"), faults=["503"])
        srv.routes[f"/someone/code/archive/{COMMIT}.tar.gz"] = github
        hub = Route(_parquet(), check=_expect(f"Bearer {HF_TOKEN}"), faults=["500"])
        srv.routes[f"/datasets/someone/data/resolve/{COMMIT}/data/train.parquet"] = hub

        for name in ("s-kaggle", "s-github", "s-hf"):
            code, text = _run(capsys, "--catalog", cat, "fetch", name, "--json")
            assert code == 0, text
            outputs.append(text)
        # Failure paths: refused credentials, a server that keeps failing, a dead mirror
        # whose URL carries a token.
        for route in (kaggle, github, hub):
            route.check = lambda headers: 401
        (data_dir / "downloads").rename(tmp_path / "dl1")  # so that --force must ask again
        for name in ("s-kaggle", "s-github", "s-hf"):
            code, text = _run(capsys, "--catalog", cat, "fetch", name, "--force")
            assert code == 1 and "Traceback" not in text, text
            outputs.append(text)
        hub.check, hub.faults = None, ["500"] * 10
        if (data_dir / "downloads").exists():
            (data_dir / "downloads").rename(tmp_path / "dl2")
        code, text = _run(capsys, "--catalog", cat, "fetch", "s-hf", "--force",
                          "--mirror", f"http://127.0.0.1:9/mirror/?token={URL_TOKEN}")
        assert code == 1, text
        outputs.append(text)
    outputs.append(caplog.text)
    outputs += [r.getMessage() for r in caplog.records]
    _assert_no_secret(outputs, data_dir)
    _assert_no_secret([], tmp_path / "dl1")
    _assert_no_secret([], tmp_path)  # catalogs, data, caches: everything this test wrote
