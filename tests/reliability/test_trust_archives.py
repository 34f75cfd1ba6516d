"""Archives that must not hand back wrong data or a traceback (issue 14).

- An unpacked folder is reused only for the very archive bytes it came from (its ``.complete``
  marker names the archive's sha256 and size): a new archive under the same name and folder is
  unpacked again, and so is a folder that lost a file.
- A member thousands of folders deep, an encrypted member, a compression method Python cannot
  read, and a compressed stream whose checksum fails are each one clear error, nothing left.

Adds to ``test_readers_archive.py`` and ``test_hostile_inputs.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.readers.archive import MARKER, UnsafeArchive, unpack
from corpuskit.shards import iter_documents
from tests.conftest import run_main
from tests.sources.test_fetch_helpers import tar_gz_bytes, zip_bytes


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    path.write_bytes(zip_bytes(members) if path.suffix == ".zip" else tar_gz_bytes(members))
    return path


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("name", ["data.zip", "data.tar.gz"])
def test_a_new_archive_under_the_same_name_is_unpacked_again(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "unpacked" / name
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    old = _archive(tmp_path / "v1" / name, {"top/a.txt": b"old text", "top/gone.txt": b"x"})
    new = _archive(tmp_path / "v2" / name, {"top/a.txt": b"new text!"})
    assert unpack(old, dest)["top/a.txt"]["bytes"] == 8
    files = unpack(new, dest)  # same destination folder, other archive bytes
    assert sorted(files) == ["top/a.txt"]
    assert (dest / "top" / "a.txt").read_bytes() == b"new text!"
    assert not (dest / "top" / "gone.txt").exists()
    marker = json.loads((dest / MARKER).read_text())
    assert marker["archive_sha256"] == hashlib.sha256(new.read_bytes()).hexdigest()
    assert marker["archive_bytes"] == new.stat().st_size
    _no_leftovers(dest.parent)


def test_the_same_archive_is_reused_and_a_damaged_folder_is_not(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "d.zip", {"a.txt": b"alpha", "b.txt": b"beta"})
    dest = tmp_path / "out"
    files = unpack(archive, dest)
    stamp = (dest / "a.txt").stat().st_mtime_ns
    os.utime(dest / "a.txt", ns=(stamp - 10**9, stamp - 10**9))
    assert unpack(archive, dest) == files
    assert (dest / "a.txt").stat().st_mtime_ns == stamp - 10**9  # reused, not rewritten
    (dest / "b.txt").unlink()
    (dest / "a.txt").write_bytes(b"alp")
    assert unpack(archive, dest) == files
    assert (dest / "b.txt").read_bytes() == b"beta" and (dest / "a.txt").read_bytes() == b"alpha"


def test_an_old_marker_without_the_archive_digest_is_not_trusted(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "d.zip", {"a.txt": b"fresh"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "a.txt").write_bytes(b"stale")
    listing = {"a.txt": {"sha256": "0" * 64, "bytes": 5}}
    (dest / MARKER).write_text(json.dumps({"archive": "d.zip", "files": listing}))
    unpack(archive, dest)
    assert (dest / "a.txt").read_bytes() == b"fresh"


def _deep_zip(path: Path, depth: int) -> Path:
    path.write_bytes(zip_bytes({"/".join(["d"] * depth) + "/x.txt": b"deep"}))
    return path


def _deep_tar(path: Path, depth: int) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("/".join(["d"] * depth) + "/x.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"deep"))
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("make", [_deep_zip, _deep_tar], ids=["zip", "tar"])
def test_a_member_2000_folders_deep_is_refused(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    archive = make(tmp_path / "deep.bin", 2000)
    with pytest.raises(UnsafeArchive, match="2000 folders deep") as err:
        unpack(archive, tmp_path / "out")
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)
    files = unpack(make(tmp_path / "ok.bin", 40), tmp_path / "ok")  # ordinary depths still fine
    assert list(files) == ["/".join(["d"] * 40) + "/x.txt"]


def _zip_with_flags(flag_bits: int = 0, method: int | None = None) -> bytes:
    """A one-member zip whose headers claim encryption or another compression method."""
    data = bytearray(zip_bytes({"a.txt": b"hello"}))
    central = data.find(b"PK\x01\x02")
    data[6] |= flag_bits
    data[central + 8] |= flag_bits
    if method is not None:
        data[8] = data[central + 10] = method
        data[9] = data[central + 11] = 0
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_zip_with_flags(flag_bits=1), "'a.txt' is encrypted"),
        (_zip_with_flags(method=99), "compression method 99"),  # WinZip AES
        (_zip_with_flags(method=9), "compression method 9"),  # deflate64
    ],
    ids=["encrypted", "aes", "deflate64"],
)
def test_unreadable_zip_members_are_one_clear_error(
    tmp_path: Path, data: bytes, message: str
) -> None:
    (tmp_path / "x.zip").write_bytes(data)
    with pytest.raises(CorpuskitError, match=message) as err:
        unpack(tmp_path / "x.zip", tmp_path / "out")
    assert "\n" not in str(err.value) and "local source" in str(err.value)
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)


def _corrupt(data: bytes, at: int) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 16]) + data[at + 16 :]


def _tar(mode: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        info = tarfile.TarInfo("a.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["tar.xz", "tar.gz", "zip-lzma"])
def test_a_damaged_compressed_stream_is_detected(tmp_path: Path, kind: str) -> None:
    """Incompressible data is stored as is inside gzip/xz: flipped bytes decode "fine", and
    only the stream's checksum, at its very end, tells. Nothing damaged may be unpacked."""
    payload = random.Random(14).randbytes(256_000)  # incompressible
    if kind == "zip-lzma":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_LZMA) as zf:
            zf.writestr("a.txt", payload)
        data, name = buf.getvalue(), "x.zip"
    else:
        data, name = _tar("w:" + kind.split(".")[1], payload), f"x.{kind}"
    (tmp_path / name).write_bytes(_corrupt(data, 5000))
    with pytest.raises(CorpuskitError, match="damaged or truncated") as err:
        unpack(tmp_path / name, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)


# -- end to end through the command line ------------------------------------------------------


def _catalog(tmp_path: Path, url: str) -> str:
    path = tmp_path / "arch.yaml"
    path.write_text(
        f"""corpora:
  - name: arch
    title: Archive
    description: An archive with text files.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: http, files: [{{url: "{url}"}}], globs: ["*.txt"]}}
    reader: text
""",
        encoding="utf-8",
    )
    return str(path)


def test_cli_serves_the_new_archive_not_the_old_unpacked_folder(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {}
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        _archive(tmp_path / version / "data.zip", {"a.txt": f"text of {version}".encode()})
        cat = _catalog(tmp_path, f"file://{tmp_path}/{version}/data.zip")
        code, out, err = run_main(capsys, "-q", "--catalog", cat, "fetch", "arch")
        assert code == 0, err
        texts[version] = [d["text"] for d in iter_documents(data_dir / "raw" / "arch")]
    assert texts == {"v1": ["text of v1"], "v2": ["text of v2"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (zip_bytes({"/".join(["d"] * 2000) + "/x.txt": b"deep"}), "folders deep"),
        (_zip_with_flags(flag_bits=1), "encrypted"),
    ],
    ids=["deep", "encrypted"],
)
def test_cli_deep_or_encrypted_member_is_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    (tmp_path / "x.zip").write_bytes(data)
    code, _, err = run_main(
        capsys, "-q", "--catalog", _catalog(tmp_path, f"file://{tmp_path}/x.zip"), "fetch", "arch"
    )
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not (data_dir / "raw" / "arch").exists()
