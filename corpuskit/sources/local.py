"""Corpora that are already on this machine, so the default job needs no network.

``python-stdlib`` is the running interpreter's standard-library source (one document per module
file). ``python-docs`` is the English prose of the interpreter's own documentation: the
``pydoc_data`` help topics plus the docstrings of every standard-library module, read with ``ast``
(no module is imported, so nothing is executed). ``files`` reads a user's folder through the
entry's reader (plain text by default).

A ``files`` folder is read as the http source reads a download: each file's split comes from its
name (``wiki.valid.tokens`` → validation; see ``infer_split``) unless its glob says ``split:``,
so a folder that already holds train/validation/test files keeps them apart instead of being
hash-split again by the build. The ``code`` reader is the exception: ``test_foo.py`` is a test
module, not a held-out split, so code files stay in train unless a glob says otherwise.
Nothing outside the folder is read: globs are relative (the catalog refuses ``..`` and absolute
ones) and a file whose real path lies outside the folder (through a symlink) is skipped and
counted as ``symlink_outside`` unless the source says ``follow_symlinks: true``; a dangling
symlink is counted as ``broken_symlink``.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpuskit.catalog import CorpusEntry, LocalSource
from corpuskit.errors import CorpuskitError
from corpuskit.sources.common import PER_FILE_READERS, SPLIT_ORDER, infer_split

# Test suites and vendored third-party trees are not the standard library's prose or code.
_EXCLUDED_PARTS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


# Machine-generated tables (codec maps from gencodec.py and the like) are data, not code anyone
# wrote; they are a quarter of the library's bytes and teach a small model to babble hex.
_GENERATED = re.compile(r"(?i)generated (from|by|with)\b|do not edit|gencodec\.py")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files() -> list[Path]:
    root = stdlib_dir()
    files = [
        p for p in root.rglob("*.py") if not (_EXCLUDED_PARTS & set(p.relative_to(root).parts[:-1]))
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@dataclass(frozen=True)
class UserFile:
    """One file a ``files`` folder's globs select: its path in the folder, its split, and why
    it is not read (``symlink_outside``, ``broken_symlink``), if it is not."""

    rel: str
    split: str
    skip: str = ""


def _user_root(source: LocalSource) -> Path:
    if not source.path:
        raise CorpuskitError("a local 'files' source needs a 'path:' to a folder of text files")
    root = Path(source.path).expanduser()
    if not root.is_dir():
        raise CorpuskitError(
            f"local corpus folder {root} does not exist; fix 'path:' in the catalog"
        )
    return root


def _matches(source: LocalSource, root: Path) -> dict[str, dict[str, str | None]]:
    """Every selected path (files and symlinks, not folders) -> {glob: its explicit split}."""
    found: dict[str, dict[str, str | None]] = {}
    for g in source.globs:
        pattern, split = (g, None) if isinstance(g, str) else (g.glob, g.split)
        for p in root.glob(pattern):
            if p.is_file() or (p.is_symlink() and not p.is_dir()):
                found.setdefault(p.relative_to(root).as_posix(), {})[pattern] = split
    return found


def _split_of(rel: str, globs: dict[str, str | None], reader: str) -> str:
    explicit = {split for split in globs.values() if split}
    if len(explicit) > 1:
        raise CorpuskitError(
            f"{rel} is matched by globs of different splits ({', '.join(sorted(explicit))}); "
            "make the globs with 'split:' not overlap"
        )
    if explicit:
        return explicit.pop()
    return "train" if reader == "code" else infer_split(rel)


def _outside(path: Path, real_root: Path) -> str:
    """Why ``path`` must not be read (its real path is outside the folder), or ""."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link, or a loop of links
        return "broken_symlink"
    return "" if real.is_relative_to(real_root) else "symlink_outside"


def _user_files(entry: CorpusEntry) -> tuple[Path, list[UserFile]]:
    """The folder and its selected files in path order, each with its split (and skip)."""
    source = entry.source
    assert isinstance(source, LocalSource)
    root = _user_root(source)
    real_root = root.resolve()
    files = []
    for rel, globs in sorted(_matches(source, root).items()):
        skip = _outside(root / rel, real_root)
        if skip == "symlink_outside" and source.follow_symlinks:
            skip = ""
        files.append(UserFile(rel, _split_of(rel, globs, entry.reader), skip))
    return root, files


def _listing(files: list[Path], root: Path) -> str:
    """Names, sizes and modification times: cheap to compute, changes when any input changes."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _listing_of_user_files(files: list[UserFile], root: Path) -> str:
    """Like ``_listing``, with each file's split; a skipped file counts by name only (its
    target may be unreadable or outside anything we should look at)."""
    h = hashlib.sha256()
    for f in files:
        if f.skip:
            h.update(f"{f.rel}\0{f.split}\0skip:{f.skip}\n".encode())
            continue
        st = (root / f.rel).stat()
        h.update(f"{f.rel}\0{f.split}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    """What the fetched shards depend on, without reading any file's content."""
    source = entry.source
    assert isinstance(source, LocalSource)
    if source.kind == "files":
        root, user_files = _user_files(entry)
        return {
            "root": str(root.resolve()),
            "files": len(user_files),
            "listing": _listing_of_user_files(user_files, root),
        }
    files = _stdlib_files()
    return {
        "python": sys.version.split()[0],
        "stdlib": str(stdlib_dir()),
        "files": len(files),
        "listing": _listing(files, stdlib_dir()),
    }


def metadata_columns(entry: CorpusEntry) -> list[str]:
    source = entry.source
    assert isinstance(source, LocalSource)
    if source.kind == "files":
        from corpuskit.readers import reader_for

        columns = reader_for(entry.reader).metadata_columns(entry.reader_options)
        return ["path", *(c for c in columns if c not in ("file", "path"))]
    if source.kind == "python-docs":
        return ["title", "kind"]
    return ["path", "module", "language"]


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class LocalUnit:
    """One file (or the help topics) as a unit of parallel reading: picklable, absolute root.

    ``kind``: ``module`` (a python-stdlib file), ``docstrings`` (a python-docs module),
    ``topics`` (python-docs' help topics) or ``file`` (a user folder's file, with its split,
    and a skip reason when it must not be read).
    """

    kind: str
    root: str
    rel: str = ""
    split: str = "train"
    skip: str = ""


def _per_split(entry: CorpusEntry) -> bool:
    """A user folder read by a reader whose documents may continue into the next file of a
    split (WikiText): its files are read split by split, in one process."""
    assert isinstance(entry.source, LocalSource)
    return entry.source.kind == "files" and entry.reader not in PER_FILE_READERS


def read_units(entry: CorpusEntry, prepared: Any = None) -> list[tuple[LocalUnit, int]] | None:
    """Every unit with its size in bytes, in document order (``fetch --executor`` reads groups
    of consecutive units as tasks; every node must see the same files at the same path);
    None when the folder must be read split by split (see ``_per_split``)."""
    source = entry.source
    assert isinstance(source, LocalSource)
    if _per_split(entry):
        return None
    if source.kind == "files":
        root, user_files = _user_files(entry)
        absolute = str(root.resolve())  # tasks may run in another working directory
        return [
            (
                LocalUnit("file", absolute, f.rel, f.split, f.skip),
                0 if f.skip else (root / f.rel).stat().st_size,
            )
            for f in user_files
        ]
    root, files = stdlib_dir(), _stdlib_files()
    kind = "module" if source.kind == "python-stdlib" else "docstrings"
    absolute = str(root.resolve())
    units = [
        (LocalUnit(kind, absolute, p.relative_to(root).as_posix()), p.stat().st_size) for p in files
    ]
    if source.kind == "python-docs":
        from pydoc_data import topics

        size = sum(len(t) for t in topics.topics.values())
        units.insert(0, (LocalUnit("topics", str(root)), size))
    return units


def read_part(entry: CorpusEntry, units: list[LocalUnit]) -> Iterator[dict[str, Any]]:
    """The documents of some consecutive units, exactly as ``iter_documents`` yields them."""
    for unit in units:
        yield from _unit_documents(entry, unit)


def prepare(entry: CorpusEntry, ctx: Any) -> None:
    """Nothing to download: the files are on this machine (the Source protocol's step)."""
    return None


def iter_documents(entry: CorpusEntry, prepared: Any = None) -> Iterator[dict[str, Any]]:
    """Documents in a stable order; a file that is skipped (undecodable, generated, a symlink
    out of the folder) comes with a ``None`` text and, where known, a ``skip`` reason."""
    units = read_units(entry)
    if units is None:
        return _split_documents(entry)
    return read_part(entry, [unit for unit, _ in units])


def _skipped_file(entry: CorpusEntry, rel: str, split: str, reason: str) -> dict[str, Any]:
    return {"id": f"{entry.name}/{rel}", "text": None, "skip": reason, "split": split}


def _split_documents(entry: CorpusEntry) -> Iterator[dict[str, Any]]:
    """A user folder read split by split (train, validation, test, then others), each split's
    files as one stream in path order, as ``documents_from_files`` reads downloads. Ids carry
    the split, because such readers number documents within a split."""
    from corpuskit.readers import reader_for

    reader = reader_for(entry.reader)
    root, user_files = _user_files(entry)
    by_split: dict[str, list[UserFile]] = {}
    for f in user_files:
        if f.skip:
            yield _skipped_file(entry, f.rel, f.split, f.skip)
        else:
            by_split.setdefault(f.split, []).append(f)
    for split in sorted(by_split, key=lambda s: (SPLIT_ORDER.get(s, 9), s)):
        pairs = [(root / f.rel, f.rel) for f in by_split[split]]
        for doc in reader.read(pairs, entry.reader_options):
            key = doc.pop("key")
            rel = doc.pop("file", "")
            yield {
                "id": f"{entry.name}/{split}/{key}",
                "split": split,
                "source": f"file:{rel}",
                "path": rel,
                **doc,
            }


def _unit_documents(entry: CorpusEntry, unit: LocalUnit) -> Iterator[dict[str, Any]]:
    if unit.kind == "topics":
        yield from _topics(entry)
        return
    path = Path(unit.root) / unit.rel
    if unit.kind == "file" and unit.skip:
        yield _skipped_file(entry, unit.rel, unit.split, unit.skip)
        return
    if unit.kind == "file":
        yield from _file_documents(entry, path, unit.rel, unit.split)
        return
    module = _module_name(Path(unit.rel))
    code = _read_text(path)
    if unit.kind == "module":
        skip = None
        if code is not None and _GENERATED.search(code[:2048]):
            code, skip = None, "generated"
        yield {
            "id": f"{entry.name}/{module}",
            "text": code,
            "skip": skip,
            "split": "train",
            "source": f"python-stdlib:{unit.rel}",
            "path": unit.rel,
            "module": module,
            "language": "python",
        }
        return
    text = _docstrings(module, code) if code else None
    if text:
        yield {
            "id": f"{entry.name}/module/{module}",
            "text": text,
            "split": "train",
            "source": f"python-stdlib:{unit.rel}",
            "title": module,
            "kind": "docstrings",
        }


def _file_documents(
    entry: CorpusEntry, path: Path, rel: str, split: str
) -> Iterator[dict[str, Any]]:
    """A user's file through the entry's reader (text by default; jsonl, csv, parquet, code
    and the text reader's paragraph/line units work on local folders as on downloads)."""
    from corpuskit.readers import reader_for

    reader = reader_for(entry.reader)
    for doc in reader.read([(path, rel)], entry.reader_options):
        key = doc.pop("key")
        doc.pop("file", None)
        yield {
            "id": f"{entry.name}/{key}",
            "split": split,
            "source": f"file:{rel}",
            "path": rel,
            **doc,
        }


def _topics(entry: CorpusEntry) -> Iterator[dict[str, Any]]:
    from pydoc_data import topics

    for key in sorted(topics.topics):
        yield {
            "id": f"{entry.name}/topic/{key}",
            "text": topics.topics[key],
            "split": "train",
            "source": "pydoc_data.topics",
            "title": key,
            "kind": "topic",
        }


def _docstrings(module: str, code: str) -> str | None:
    """A module's docstrings as one prose document: module first, then classes and functions."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    parts: list[str] = []
    doc = ast.get_docstring(tree)
    if doc:
        parts.append(f"{module}\n\n{doc}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc and not node.name.startswith("_"):
                parts.append(f"{node.name}\n\n{doc}")
    return "\n\n".join(parts) if parts else None
