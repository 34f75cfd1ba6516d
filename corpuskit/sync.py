"""``sync``: copy finished artifacts between data roots, local or any fsspec URL.

The build reads and writes its data root with POSIX calls (memory maps, atomic renames, lock
files), which object stores do not offer, so a data root on ``s3://`` or ``gs://`` is refused
(``docs/scale-out.md``). What can be shared through object storage is the *finished*
artifacts: ``raw/<corpus>/``, ``clean/<corpus>/<fp>/`` and ``tokens/<corpus>/<fp>/`` (each a
folder whose ``manifest.json`` is written last and is the only sign that it is complete) and the
``tokens/<corpus>/LATEST`` pointer. ``sync(src, dst)`` copies those, in either direction:

- only complete artifacts are copied (a folder without ``manifest.json``, or a hidden staging
  folder, is ignored); one whose manifest and file sizes are already the same at ``dst`` is
  skipped, so a second sync copies nothing;
- an artifact whose files at ``src`` disagree with the sizes its manifest records (a file
  deleted or truncated) is refused with one line naming the file: a damaged artifact is never
  spread to another root; every file copied is checked against that size too;
- to a local destination, an artifact is assembled in a temporary sibling folder and renamed
  into place (``shards.staging_dir``), under the same lock as ``fetch``;
- to a remote destination, which has no atomic rename, the old manifest (if any) is deleted
  first, files the new artifact does not have are removed, every other file is copied and
  checked by size, and the manifest is written last. A reader that goes by the manifest (every
  corpuskit command does) never takes a half-copied artifact for a complete one; an interrupted
  sync leaves an artifact without manifest, which the next sync completes.

Training runs (``runs/``), downloads and the lock file are not synced: they are not artifacts
with a manifest.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.artifacts import write_latest
from corpuskit.errors import CorpuskitError
from corpuskit.shards import MANIFEST, rebuild_command, staging_dir

KINDS = ("raw", "clean", "tokens")
_DEPTH = {"raw": 1, "clean": 2, "tokens": 2}  # folders below <root>/<kind>/ to the manifest
_CHUNK = 8 * 2**20


@dataclass
class SyncResult:
    src: str
    dst: str
    copied: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    bytes: int = 0
    dry_run: bool = False


class _Root:
    """A data root on some fsspec file system; paths inside it are relative posix strings."""

    def __init__(self, url: str | os.PathLike[str]):
        import fsspec

        text = os.fspath(url)
        try:
            self.fs, path = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as exc:
            raise CorpuskitError(f"cannot open data root {text!r}: {exc}") from None
        self.url = text
        self.local = "file" in _protocols(self.fs)
        self.path = path.rstrip("/") if path not in ("/", "") else path

    def join(self, rel: str) -> str:
        return f"{self.path}/{rel}" if rel else self.path

    def rel(self, path: str) -> str:
        path = path.rstrip("/")
        prefix = self.path.rstrip("/") + "/"
        if not path.startswith(prefix):
            # memory:// paths may come back with or without the leading slash
            stripped = prefix.lstrip("/")
            if path.lstrip("/").startswith(stripped):
                return path.lstrip("/")[len(stripped) :]
            raise CorpuskitError(f"{path} is not under {self.path}")
        return path[len(prefix) :]

    def artifacts(self, corpora: set[str] | None, kinds: tuple[str, ...]) -> list[str]:
        """Complete artifacts (folders with a manifest), relative, in a stable order."""
        found: list[str] = []
        for kind in kinds:  # raw, then clean, then tokens: what a build needs first
            stars = "/".join(["*"] * _DEPTH[kind])
            for path in sorted(self.fs.glob(self.join(f"{kind}/{stars}/{MANIFEST}"))):
                rel = self.rel(path).rsplit("/", 1)[0]
                parts = rel.split("/")
                if any(p.startswith(".") for p in parts):
                    continue  # a staging folder or other debris, never complete
                if corpora is None or parts[1] in corpora:
                    found.append(rel)
        return found

    def files(self, rel: str) -> dict[str, int]:
        """Every file of an artifact (relative to it) with its size; hidden ones left out."""
        base = self.join(rel)
        if not self.fs.isdir(base):
            return {}
        out: dict[str, int] = {}
        for path, info in self.fs.find(base, detail=True).items():
            name = self.rel(path)[len(rel) + 1 :]
            if info.get("type", "file") == "file" and not any(
                p.startswith(".") for p in name.split("/")
            ):
                out[name] = int(info.get("size") or 0)
        return out

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            with self.fs.open(self.join(rel), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _copy_file(src: _Root, src_rel: str, dst_fs: Any, dst_path: str) -> int:
    parent = dst_path.rsplit("/", 1)[0]
    dst_fs.makedirs(parent, exist_ok=True)
    with src.fs.open(src.join(src_rel), "rb") as fin, dst_fs.open(dst_path, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)
    return int(dst_fs.size(dst_path))


def _copy_artifact(src: _Root, dst: _Root, rel: str, files: dict[str, int]) -> int:
    """Copy one artifact, the manifest last; the number of bytes copied."""
    payload = [name for name in sorted(files) if name != MANIFEST]
    copied = 0
    if dst.local:
        from corpuskit.artifacts import artifact_lock

        final = Path(dst.join(rel))
        with artifact_lock(final), staging_dir(final) as tmp:
            for name in [*payload, MANIFEST]:
                copied += _checked(src, rel, name, files[name], dst.fs, f"{tmp.as_posix()}/{name}")
        return copied
    manifest = dst.join(f"{rel}/{MANIFEST}")
    if dst.fs.exists(manifest):
        dst.fs.rm(manifest)  # from here on, readers see an incomplete artifact
    for stale in sorted(set(dst.files(rel)) - set(files)):
        dst.fs.rm(dst.join(f"{rel}/{stale}"))
    for name in [*payload, MANIFEST]:
        copied += _checked(src, rel, name, files[name], dst.fs, dst.join(f"{rel}/{name}"))
    return copied


def _checked(src: _Root, rel: str, name: str, size: int, dst_fs: Any, dst_path: str) -> int:
    got = _copy_file(src, f"{rel}/{name}", dst_fs, dst_path)
    if got != size:
        raise CorpuskitError(
            f"copying {rel}/{name} to {dst_path} gave {got} bytes instead of {size}; "
            "run sync again"
        )
    return got


def _copy_latest(src: _Root, dst: _Root, corpus: str) -> bool:
    """``tokens/<corpus>/LATEST``, if the build it names is complete at the destination."""
    rel = f"tokens/{corpus}/LATEST"
    data = src.read_bytes(rel)
    if data is None or dst.read_bytes(rel) == data:
        return False
    name = data.decode("utf-8").strip()
    if dst.read_bytes(f"tokens/{corpus}/{name}/{MANIFEST}") is None:
        return False
    if dst.local:
        write_latest(Path(dst.join(rel)), name)
    else:
        with dst.fs.open(dst.join(rel), "wb") as f:
            f.write(data)
    return True


def _check_source(src: _Root, rel: str, manifest: bytes | None, files: dict[str, int]) -> None:
    """Refuse to copy an artifact whose files disagree with its manifest's size records (an
    older manifest without records is copied as before: there is nothing to check against)."""
    try:
        data = json.loads(manifest or b"{}")
        records = data.get("files")
    except (ValueError, AttributeError):
        return
    if not isinstance(records, dict):
        return
    command = rebuild_command(data.get("kind"), data.get("corpus"))
    for name, record in sorted(records.items()):
        got = files.get(name)
        expected = record.get("bytes") if isinstance(record, dict) else None
        if got != expected:
            found = "is missing" if got is None else f"has {got} bytes"
            raise CorpuskitError(
                f"{src.url}/{rel}/{name} {found}, its manifest records {expected}: not syncing "
                f"a damaged artifact; rebuild it with `{command}` "
                "(`corpuskit verify` lists every damaged file)"
            )


def root_exists(url: str | os.PathLike[str]) -> bool:
    """Whether the data root ``url`` (a path or an fsspec URL) exists yet."""
    root = _Root(url)
    return bool(root.fs.isdir(root.path))


def sync(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    corpora: list[str] | None = None,
    kinds: tuple[str, ...] = KINDS,
    dry_run: bool = False,
) -> SyncResult:
    """Copy the complete artifacts of data root ``src`` that ``dst`` lacks (or has otherwise).

    ``src`` and ``dst`` are local paths or fsspec URLs (``s3://bucket/prefix``,
    ``gs://...``, ``memory://...``, ``file:///...``); ``corpora`` and ``kinds`` narrow what
    is copied. Artifacts are copied raw first, then clean, then tokens, each with its
    manifest last; ``LATEST`` pointers after the builds they name.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise CorpuskitError(f"unknown artifact kind {', '.join(unknown)}; use {', '.join(KINDS)}")
    source, target = _Root(src), _Root(dst)
    if not source.fs.isdir(source.path):
        raise CorpuskitError(f"{source.url} is not a data root (no such folder)")
    result = SyncResult(source.url, target.url, dry_run=dry_run)
    wanted = set(corpora) if corpora else None
    for rel in source.artifacts(wanted, tuple(k for k in KINDS if k in kinds)):
        files = source.files(rel)
        manifest = source.read_bytes(f"{rel}/{MANIFEST}")
        _check_source(source, rel, manifest, files)
        same = manifest == target.read_bytes(f"{rel}/{MANIFEST}") and target.files(rel) == files
        if same:
            result.up_to_date.append(rel)
            continue
        result.copied.append(rel)
        result.bytes += sum(files.values())
        if not dry_run:
            _copy_artifact(source, target, rel, files)
    if "tokens" in kinds and not dry_run:
        names = {rel.split("/")[1] for rel in source.artifacts(wanted, ("tokens",))}
        for corpus in sorted(names):
            if _copy_latest(source, target, corpus):
                result.copied.append(f"tokens/{corpus}/LATEST")
    return result
