"""User inputs that must not leak secrets, lose pins or end in a traceback (issue 14).

- Credentials written into catalog URLs (``user:pass@``, ``token=``, ``pwd=``, ``key=``,
  ``sig=``, ``access_token``, ``api_key``, ``X-Amz-Signature`` …) never appear in ``info``,
  ``list --json``, errors, manifests, the lock file or any file name under the data folder.
- A malformed lock file is one line naming the file and the fix, and is left as it was.
- A catalog nested 100k levels deep, a "billion laughs" of aliases and an alias to itself are
  each one line, quickly.

Adds to ``test_reliability_secrets.py`` (credentials from the environment) and
``test_hostile_inputs.py`` (catalogs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpuskit.catalog import redact_url
from corpuskit.sources.common import read_lock, update_lock
from tests.conftest import REPO, run_main
from tests.sources.test_fetch_helpers import LoopbackServer, Route

PW, TOKEN, SIG, KEY, PWD, API, HOME = (
    "PLANTED_pw_1", "PLANTED_tok_2", "PLANTED_sig_3", "PLANTED_key_4", "PLANTED_pwd_5",
    "PLANTED_api_6", "PLANTED_home_7",
)
SECRETS = [PW, TOKEN, SIG, KEY, PWD, API, HOME]


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@h.org/x?token=t&a=b", "https://REDACTED@h.org/x?token=REDACTED&a=b"),
        ("https://ghp_x@github.com/o/r.tar.gz", "https://REDACTED@github.com/o/r.tar.gz"),
        ("https://h/x?pwd=1&password=2&Passwd=3&pass=4", None),
        ("https://h/x?key=1&api_key=2&apiKey=3&access_token=4&sig=5", None),
        ("https://b.s3.amazonaws.com/k?X-Amz-Credential=1&X-Amz-Signature=2&"
         "X-Amz-Security-Token=3&X-Amz-Date=20240101", None),
        ("https://h/x?client_secret=1#access_token=2", None),
        ("http://[::1]:8080/x?Token=1", "http://[::1]:8080/x?Token=REDACTED"),
    ],
)
def test_redact_url_hides_credentials(url: str, shown: str | None) -> None:
    redacted = redact_url(url)
    if shown is not None:
        assert redacted == shown
    for value in ("=1", "=2", "=3", "=4", "=5", "u:p", "ghp_x"):
        assert value not in redacted.replace("X-Amz-Date=20240101", ""), redacted
    assert "X-Amz-Date=20240101" in redact_url(url) or "Amz" not in url


@pytest.mark.parametrize(
    "url",
    ["https://h.org/a/b.zip", "https://h.org/x?a=%7E&b&lang=en", "file:///tmp/x y.zip",
     "s3://bucket/key.parquet", "hf://datasets/o/r/x.parquet"],
)
def test_a_url_without_secrets_is_unchanged(url: str) -> None:
    """Byte for byte: it is part of the fetch fingerprint, which must not move."""
    assert redact_url(url) == url


def test_an_unparseable_url_is_redacted_whole() -> None:
    assert redact_url(f"https://[::1/x?token={TOKEN}") == "https://REDACTED"


def _secret_catalog(tmp_path: Path, base: str) -> str:
    host = base.removeprefix("http://")
    path = tmp_path / "secret-urls.yaml"
    path.write_text(
        f"""corpora:
  - name: s-url
    title: Credentials in URLs
    description: Every URL carries a planted secret.
    homepage: "https://example.org/?access_token={HOME}"
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: http
      allow_http: true
      files:
        - url: "http://alice:{PW}@{host}/data/train.txt?token={TOKEN}&X-Amz-Signature={SIG}&v=2"
      mirrors: ["http://{host}/mirror/?api_key={API}"]
    reader: text
    reader_options: {{unit: line}}
  - name: s-missing
    title: A URL that is not there
    description: Fails with a planted secret in its URL.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: http
      allow_http: true
      files: [{{url: "http://{host}/gone/x.txt?pwd={PWD}&key={KEY}&Sig={SIG}"}}]
    reader: text
""",
        encoding="utf-8",
    )
    return str(path)


def _assert_no_secret(texts: list[str], root: Path) -> None:
    blobs = [t.encode() for t in texts]
    blobs += [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    blobs += [p.name.encode() for p in root.rglob("*")]
    for secret in SECRETS:
        assert not any(secret.encode() in b for b in blobs), f"{secret} leaked"


def test_credentials_in_catalog_urls_never_leak(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "0")
    for name in ("CORPUSKIT_OFFLINE", "HF_HUB_OFFLINE", "CORPUSKIT_MIRROR", "CORPUSKIT_LOCK"):
        monkeypatch.delenv(name, raising=False)
    outputs: list[str] = []
    with LoopbackServer() as srv:
        srv.routes["/data/train.txt"] = Route(b"first line\nsecond line\n")
        cat = _secret_catalog(tmp_path, srv.url)
        code, out, err = run_main(capsys, "-v", "--catalog", cat, "fetch", "s-url", "--json")
        assert code == 0, err
        outputs.append(out + err)
        assert any(TOKEN in s.path for s in srv.seen)  # the real URL was used to download
        for argv in (["info", "s-url"], ["info", "s-url", "--json"], ["list", "--json"],
                     ["list", "--search", "planted"]):
            code, out, err = run_main(capsys, "--catalog", cat, *argv)
            assert code == 0, err
            outputs.append(out + err)
        shown = json.loads(run_main(capsys, "--catalog", cat, "info", "s-url", "--json")[1])
        assert "REDACTED@127.0.0.1" in shown["source"]["files"][0]["url"]
        code, out, err = run_main(capsys, "-v", "--catalog", cat, "fetch", "s-missing")
        assert code == 1 and "Traceback" not in err, err
        assert "not found" in err.rsplit("\rerror: ", 1)[-1] and "REDACTED" in err
        outputs.append(out + err)
    manifest = (data_dir / "raw" / "s-url" / "manifest.json").read_text()
    assert "token=REDACTED" in manifest and "v=2" in manifest
    _assert_no_secret(outputs, data_dir)


@pytest.mark.parametrize(
    "url",
    [f"http://bob:{PW}@h.org/x.txt?token={TOKEN}", f"ftp://h.org/x.txt?sig={SIG}",
     f"http://h.org/x.txt?api_key={API}"],
    ids=["plain-http", "scheme", "plain-http-query"],
)
def test_a_refused_catalog_url_is_redacted_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    path = tmp_path / "refused.yaml"
    path.write_text(
        f"""corpora:
  - name: refused
    title: R
    description: A URL the catalog refuses.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: http, files: [{{url: "{url}"}}]}}
""",
        encoding="utf-8",
    )
    code, _, err = run_main(capsys, "--catalog", str(path), "list")
    _one_line_error(code, err, "refused.yaml:", "REDACTED")
    assert not any(s in err for s in SECRETS), err


# -- the lock file ------------------------------------------------------------------------------


def _text_catalog(tmp_path: Path) -> str:
    (tmp_path / "t.txt").write_text("one line of text\n", encoding="utf-8")
    path = tmp_path / "lock.yaml"
    path.write_text(
        f"""corpora:
  - name: pinned
    title: P
    description: One local file fetched through the http source.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: http, files: [{{url: "file://{tmp_path}/t.txt"}}]}}
""",
        encoding="utf-8",
    )
    return str(path)


_BAD_LOCKS = {
    "not-json": (b'{"corpora": {', "not JSON"),
    "binary": (b"\xff\xfe\x00\x01garbage", "not JSON"),
    "empty": (b"", "empty"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    "a-list": (b"[1, 2]", "not an object"),
    "corpora-list": (b'{"corpora": [1]}', "'corpora' is not an object"),
    "entry-string": (b'{"corpora": {"pinned": "abc"}}', "'pinned' is not an object"),
    "files-list": (b'{"corpora": {"other": {"pin": null, "files": [1]}}}', "'files' of 'other'"),
    "newer": (b'{"lock_version": 9, "corpora": {}}', "lock_version 9"),
}


@pytest.mark.parametrize("case", sorted(_BAD_LOCKS))
def test_a_malformed_lock_file_is_one_line_and_kept(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], case: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CORPUSKIT_LOCK", raising=False)
    content, what = _BAD_LOCKS[case]
    lock = data_dir / "corpuskit-lock.json"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(content)
    cat = _text_catalog(tmp_path)
    for command in ("fetch", "info"):
        code, _, err = run_main(capsys, "-q", "--catalog", cat, command, "pinned")
        _one_line_error(code, err, str(lock), what)
        assert "delete it" in err or "upgrade corpuskit" in err
    assert lock.read_bytes() == content  # the other corpora's pins are not thrown away
    assert not (data_dir / "raw" / "pinned").exists()
    with pytest.raises(Exception, match="lock file") as exc:
        update_lock(data_dir, "pinned", {"pin": None, "files": {}})
    assert "\n" not in str(exc.value) and lock.read_bytes() == content
    assert sorted(p.name for p in lock.parent.iterdir() if "tmp" in p.name) == []


def test_after_deleting_the_lock_file_fetch_writes_a_good_one(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CORPUSKIT_LOCK", raising=False)
    lock = data_dir / "corpuskit-lock.json"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"{oops")
    cat = _text_catalog(tmp_path)
    assert run_main(capsys, "-q", "--catalog", cat, "fetch", "pinned")[0] == 1
    lock.unlink()
    code, _, err = run_main(capsys, "-q", "--catalog", cat, "fetch", "pinned")
    assert code == 0, err
    assert read_lock(data_dir)["pinned"]["files"]["t.txt"]["bytes"] == 17
    update_lock(data_dir, "other", {"pin": "x", "files": {}})
    assert sorted(read_lock(data_dir)) == ["other", "pinned"]
    assert [p.name for p in data_dir.iterdir() if "tmp" in p.name] == []


# -- hostile catalogs ---------------------------------------------------------------------------

_ENTRY = """  - name: deep
    title: D
    description: x
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {type: local, kind: python-docs}
"""
_LAUGHS = "\n".join(
    ["    recipe:", "      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
)
_CATALOGS = {
    "flow-100k": ("corpora: " + "[" * 100_000 + "]" * 100_000 + "\n", "levels deep"),
    "block-3000": ("corpora:\n" + "".join("  " * i + "-\n" for i in range(1, 3000)),
                   "levels deep"),
    "recipe-300": ("corpora:\n" + _ENTRY + "    recipe: " + "{a: " * 300 + "1" + "}" * 300
                   + "\n", "levels deep"),
    "billion-laughs": ("corpora:\n" + _ENTRY + _LAUGHS + "\n", "YAML bomb"),
    "self-alias": ("corpora:\n" + _ENTRY + "    recipe: &r {a: [*r]}\n", "contains it"),
}


@pytest.mark.parametrize("case", sorted(_CATALOGS))
def test_hostile_catalog_is_one_line_and_quick(tmp_path: Path, case: str) -> None:
    """Run as a user would, in a process of its own: a hang would otherwise stop the suite."""
    text, message = _CATALOGS[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "CORPUSKIT_HOME": str(tmp_path / "data"), "CORPUSKIT_CATALOG": str(path)}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "corpuskit.cli", "-q", "list"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert time.monotonic() - started < 30
    _one_line_error(proc.returncode, proc.stderr, "hostile.yaml", message)
