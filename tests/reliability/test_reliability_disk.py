"""Disk full (ENOSPC, simulated by making one write raise) during fetch, unpack and build: one
clear line, exit 1, the partial output removed, and the complete artifacts written before
untouched (byte for byte). The download case is in ``test_fetch_http.py``.

Before the fix in ``cli.main``, an ``OSError`` from a write was a raw traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.readers.archive import unpack
from tests.conftest import run_main
from tests.reliability.test_crash_helpers import debris, tree_digest
from tests.sources.test_fetch_helpers import zip_bytes

BYTE = ["--tokenizer", "byte", "--workers", "1"]


def _full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/data/somewhere/part")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, _, err = run_main(capsys, "-q", *argv)
    return code, err


def _assert_disk_full_line(code: int, err: str) -> None:
    assert code == 1
    assert err.startswith("error: No space left on device: /data/somewhere/part; free some space")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_disk_full_while_writing_shards_of_a_forced_fetch(
    data_dir: Path, tiny_corpus: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(capsys, "fetch", tiny_corpus)[0] == 0
    before = tree_digest(data_dir)
    with monkeypatch.context() as m:
        m.setattr("corpuskit.shards.ShardWriter._append", _full)
        _assert_disk_full_line(*_cli(capsys, "fetch", tiny_corpus, "--force"))
    assert tree_digest(data_dir) == before
    assert debris(data_dir) == []


@pytest.mark.parametrize(
    ("target", "extra"),
    [
        ("corpuskit.shards.ShardWriter._append", ["--min-chars", "5"]),  # the clean phase
        ("polars.DataFrame.write_parquet", ["--min-chars", "6"]),  # dedup keys (phase 1)
        ("corpuskit.pack.PackWriter.add", ["--tokenizer", "char"]),  # packing
        ("corpuskit.encode._concatenate", ["--tokenizer", "word"]),  # joining the packed parts
    ],
    ids=["clean-shards", "dedup-keys", "packing", "concatenate"],
)
def test_disk_full_during_build_leaves_earlier_builds_alone(
    data_dir: Path, tiny_corpus: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], target: str, extra: list[str],
) -> None:
    assert _cli(capsys, "build", tiny_corpus, *BYTE)[0] == 0
    before = tree_digest(data_dir)
    with monkeypatch.context() as m:
        m.setattr(target, _full)
        _assert_disk_full_line(*_cli(capsys, "build", tiny_corpus, *BYTE, *extra))
    assert tree_digest(data_dir) == before  # LATEST still names the earlier build
    assert debris(data_dir) == []


def test_disk_full_while_unpacking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.zip").write_bytes(zip_bytes({"a.txt": b"hello", "b.txt": b"world"}))
    monkeypatch.setattr("corpuskit.readers.archive._copy", _full)
    with pytest.raises(CorpuskitError, match="cannot unpack a.zip: No space left on device"):
        unpack(tmp_path / "a.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]
