"""Safe unpacking of zip and tar archives (the one place that does it).

Refused, with an error naming the member: absolute paths, ``..`` components, drive letters and
backslash tricks; symbolic and hard links, devices, FIFOs; more than ``max_files`` members; more
than ``max_bytes`` unpacked in total; a member (or archive) that expands more than ``max_ratio``
times its compressed size; a member more than ``max_depth`` folders deep. The limits are
enforced on the bytes actually written, not on the sizes an archive claims. Encrypted zip members
and compression methods Python cannot read are an error too (never skipped: a corpus missing
some of its files would look whole).

Everything is unpacked into a temporary sibling folder that is renamed into place only when
complete, with a ``.complete`` marker naming the archive (its sha256 and size) and listing every
file's sha256 and size. An unpacked folder is reused only when its marker names the very same
archive bytes and every listed file is still there with its size: an interrupted unpack, a
changed archive under the same name, or a damaged folder is unpacked again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint

MARKER = ".complete"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Defaults fit WikiText-103 (190 MB → 540 MB) and large code archives, not bombs."""

    max_bytes: int = field(
        default_factory=lambda: int(os.environ.get("CORPUSKIT_MAX_UNPACKED_BYTES", 64 * 2**30))
    )
    max_files: int = 1_000_000
    max_ratio: float = 200.0
    ratio_floor: int = 1 << 20  # members smaller than this are not ratio-checked
    max_depth: int = 128  # folders; real archives stay far below, and paths stay < PATH_MAX


class UnsafeArchive(CorpuskitError):
    """An archive that tries to escape its folder, holds links or devices, or is a bomb."""


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def safe_member_path(name: str, archive: str) -> PurePosixPath | None:
    """The member's relative path, or None for the archive's own folder entries."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchive(f"{archive}: member {name!r} has an absolute path; refused")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"{archive}: member {name!r} escapes the target folder; refused")
    if not parts:
        return None
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, archive: str, limits: Limits, archive_bytes: int):
        self.archive, self.limits, self.archive_bytes = archive, limits, archive_bytes
        self.total = 0
        self.files = 0

    def member(self, name: str, rel: PurePosixPath) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnsafeArchive(f"{self.archive}: more than {self.limits.max_files} members")
        if len(rel.parts) - 1 > self.limits.max_depth:
            raise UnsafeArchive(
                f"{self.archive}: member {_short(name)!r} is {len(rel.parts) - 1} folders deep "
                f"(more than {self.limits.max_depth}); refused"
            )

    def add(self, name: str, n: int, written: int, compressed: int | None) -> None:
        self.total += n
        lim = self.limits
        if self.total > lim.max_bytes:
            raise UnsafeArchive(
                f"{self.archive}: unpacks to more than {lim.max_bytes:,} bytes (a decompression "
                "bomb?); raise CORPUSKIT_MAX_UNPACKED_BYTES if you trust it"
            )
        member_ratio = written / max(compressed or 1, 1)
        if compressed is not None and written > lim.ratio_floor and member_ratio > lim.max_ratio:
            raise UnsafeArchive(
                f"{self.archive}: member {name!r} expands more than {lim.max_ratio:g}x "
                "(a decompression bomb?); refused"
            )
        if self.total > lim.ratio_floor and self.total > lim.max_ratio * max(
            self.archive_bytes, 1
        ):
            raise UnsafeArchive(
                f"{self.archive}: expands more than {lim.max_ratio:g}x its size "
                "(a decompression bomb?); refused"
            )


def _short(name: str, keep: int = 80) -> str:
    """A member name fit for a one-line message (hostile names can be kilobytes long)."""
    return name if len(name) <= keep else f"{name[:keep // 2]}…{name[-keep // 2:]}"


def _check_readable(info: zipfile.ZipInfo, archive: str) -> None:
    """Encrypted members and unknown compression methods cannot be read: say so, by name."""
    if info.flag_bits & 0x1:
        raise CorpuskitError(
            f"{archive}: member {_short(info.filename)!r} is encrypted (password-protected); "
            "corpuskit cannot read it: unpack the archive yourself and use a local source"
        )
    if info.compress_type not in _ZIP_METHODS:
        raise CorpuskitError(
            f"{archive}: member {_short(info.filename)!r} uses zip compression method "
            f"{info.compress_type}, which Python cannot read: unpack the archive yourself "
            "and use a local source"
        )


_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _copy(src: IO[bytes], dest: Path, name: str, budget: _Budget, compressed: int | None) -> str:
    h = hashlib.sha256()
    written = 0
    with dest.open("wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            written += len(chunk)
            budget.add(name, len(chunk), written, compressed)
    checkpoint("unpack.member")
    return h.hexdigest()


def _zip_members(path: Path, tmp: Path, budget: _Budget) -> Iterator[tuple[str, str, int]]:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            rel = safe_member_path(info.filename, path.name)
            mode = (info.external_attr >> 16) & 0xFFFF
            # Unix type bits, when present: only regular files and folders are accepted.
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchive(
                    f"{path.name}: member {info.filename!r} is a link or special file; refused"
                )
            if rel is None or info.is_dir():
                continue
            budget.member(info.filename, rel)
            _check_readable(info, path.name)
            dest = tmp.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src:
                digest = _copy(src, dest, info.filename, budget, info.compress_size)
            yield rel.as_posix(), digest, dest.stat().st_size


def _tar_members(path: Path, tmp: Path, budget: _Budget) -> Iterator[tuple[str, str, int]]:
    with tarfile.open(path, "r:*") as tf:
        for member in tf:
            rel = safe_member_path(member.name, path.name)
            if member.isdir() or member.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                continue
            if not member.isreg():
                kind = "link" if (member.issym() or member.islnk()) else "special file"
                raise UnsafeArchive(f"{path.name}: member {member.name!r} is a {kind}; refused")
            if rel is None:
                continue
            budget.member(member.name, rel)
            dest = tmp.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            assert src is not None
            with src:
                digest = _copy(src, dest, member.name, budget, None)
            yield rel.as_posix(), digest, dest.stat().st_size
        # Read the compressed stream to its end: gzip and xz check their CRC only there, and a
        # tar stops reading at its end-of-archive blocks, so damaged bytes would go unnoticed.
        if tf.fileobj is not None:
            while tf.fileobj.read(_CHUNK):
                pass


Listing = dict[str, dict[str, int | str]]
# What a damaged or truncated archive raises (gzip's CRC failure is an OSError: it comes first).
_DAMAGED = (
    zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile
)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _reusable(dest: Path, identity: dict[str, Any]) -> Listing | None:
    """The listing of a complete unpack of exactly this archive in ``dest``, else None.

    The marker must name the same archive sha256 and size (a new archive under the same name
    must not be served from the old folder), and every listed file must still be there with
    its size (a damaged folder is unpacked again rather than read short).
    """
    try:
        marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        if any(marker.get(k) != v for k, v in identity.items()) or not isinstance(files, dict):
            return None
        for rel, meta in files.items():
            if (dest / rel).stat().st_size != meta["bytes"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return files


def unpack(archive: Path, dest: Path, limits: Limits | None = None) -> Listing:
    """Unpack ``archive`` into ``dest`` (once); returns ``{relative path: {sha256, bytes}}``.

    When ``dest`` already holds a complete unpack of these very archive bytes it is reused as
    is; anything else there (another archive's files, a partial or damaged unpack) is replaced.
    """
    identity = {"archive_sha256": file_sha256(archive), "archive_bytes": archive.stat().st_size}
    reused = _reusable(dest, identity)
    if reused is not None:
        return reused
    limits = limits or Limits()
    budget = _Budget(archive.name, limits, identity["archive_bytes"])
    from corpuskit.shards import remove_stale_siblings

    remove_stale_siblings(dest)  # the unpack folder of a process that was killed
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: Listing = {}
    try:
        if zipfile.is_zipfile(archive):
            members = _zip_members(archive, tmp, budget)
        elif tarfile.is_tarfile(archive):
            members = _tar_members(archive, tmp, budget)
        else:
            raise CorpuskitError(f"{archive.name} is neither a zip nor a tar archive")
        for rel, digest, size in members:
            if rel in files:
                raise UnsafeArchive(f"{archive.name}: member {rel!r} appears twice; refused")
            files[rel] = {"sha256": digest, "bytes": size}
        (tmp / MARKER).write_text(
            json.dumps({"archive": archive.name, **identity, "files": files}, sort_keys=True),
            encoding="utf-8",
        )
    except _DAMAGED as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpuskitError(
            f"{archive.name} is damaged or truncated ({exc}); delete it and fetch again"
        ) from None
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpuskitError(f"cannot unpack {archive.name}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint("unpack.before_rename")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return files
