"""Safe unpacking: traversal, absolute paths, links, devices and bombs are refused."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from corpuskit.readers.archive import Limits, UnsafeArchive, unpack
from tests.sources.test_fetch_helpers import tar_gz_bytes, zip_bytes


def _tar_with(tmp_path: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tf:
        tf.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_unpacks_and_lists_sha256(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(tar_gz_bytes({"top/a.txt": b"hello", "top/sub/b.txt": b"world"}))
    files = unpack(archive, tmp_path / "out")
    assert sorted(files) == ["top/a.txt", "top/sub/b.txt"]
    assert (tmp_path / "out" / "top" / "sub" / "b.txt").read_bytes() == b"world"
    assert files["top/a.txt"]["bytes"] == 5
    assert unpack(archive, tmp_path / "out") == files  # reused, complete marker present


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/etc/evil", "C:/x"])
def test_traversal_and_absolute_paths(tmp_path: Path, name: str) -> None:
    for kind in ("zip", "tar"):
        archive = tmp_path / f"evil.{kind}"
        if kind == "zip":
            archive.write_bytes(zip_bytes({name: b"x"}))
        else:
            info = tarfile.TarInfo(name)
            info.size = 1
            archive = _tar_with(tmp_path, info, b"x")
        with pytest.raises(UnsafeArchive, match="refused"):
            unpack(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.FIFOTYPE])
def test_links_and_devices_in_tar(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("top/link")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(UnsafeArchive, match="refused"):
        unpack(_tar_with(tmp_path, info), tmp_path / "out")


def test_symlink_in_zip(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    (tmp_path / "l.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchive, match="link"):
        unpack(tmp_path / "l.zip", tmp_path / "out")


def test_decompression_bombs(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bytes({"zeros.bin": b"\0" * (50 * 2**20)}))  # ~50 KB → 50 MB
    with pytest.raises(UnsafeArchive, match="bomb"):
        unpack(bomb, tmp_path / "out")
    tbomb = tmp_path / "bomb.tar.gz"
    tbomb.write_bytes(tar_gz_bytes({"zeros.bin": b"\0" * (50 * 2**20)}))
    with pytest.raises(UnsafeArchive, match="bomb"):
        unpack(tbomb, tmp_path / "out")
    small = tmp_path / "small.zip"
    small.write_bytes(zip_bytes({"a.txt": b"abc" * 1000}))
    with pytest.raises(UnsafeArchive, match="more than 100 bytes"):
        unpack(small, tmp_path / "out", Limits(max_bytes=100))
    assert not (tmp_path / "out").exists()


def test_truncated_archive_is_a_clear_error(tmp_path: Path) -> None:
    data = tar_gz_bytes({"a.txt": bytes(range(256)) * 4000})
    (tmp_path / "t.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="damaged or truncated|cannot unpack"):
        unpack(tmp_path / "t.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists()
