"""Corpora that are already on this machine, so the default job needs no network.

``python-stdlib`` is the running interpreter's standard-library source (one document per module
file). ``python-docs`` is the English prose of the interpreter's own documentation: the
``pydoc_data`` help topics plus the docstrings of every standard-library module, read with ``ast``
(no module is imported, so nothing is executed). ``files`` reads a user's folder through the
entry's reader (plain text by default).
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


def _user_files(source: LocalSource) -> tuple[Path, list[Path]]:
    if not source.path:
        raise CorpuskitError("a local 'files' source needs a 'path:' to a folder of text files")
    root = Path(source.path).expanduser()
    if not root.is_dir():
        raise CorpuskitError(
            f"local corpus folder {root} does not exist; fix 'path:' in the catalog"
        )
    files = {p for g in source.globs for p in root.glob(g) if p.is_file()}
    return root, sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _listing(files: list[Path], root: Path) -> str:
    """Names, sizes and modification times: cheap to compute, changes when any input changes."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    """What the fetched shards depend on, without reading any file's content."""
    source = entry.source
    assert isinstance(source, LocalSource)
    if source.kind == "files":
        root, files = _user_files(source)
        return {"root": str(root.resolve()), "files": len(files), "listing": _listing(files, root)}
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
        return ["path", *(c for c in columns if c != "file")]
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
    ``topics`` (python-docs' help topics) or ``file`` (a user folder's file).
    """

    kind: str
    root: str
    rel: str = ""


def read_units(entry: CorpusEntry, prepared: Any = None) -> list[tuple[LocalUnit, int]]:
    """Every unit with its size in bytes, in document order (``fetch --executor`` reads groups
    of consecutive units as tasks; every node must see the same files at the same path)."""
    source = entry.source
    assert isinstance(source, LocalSource)
    if source.kind == "files":
        root, files = _user_files(source)
        kind = "file"
    else:
        root, files = stdlib_dir(), _stdlib_files()
        kind = "module" if source.kind == "python-stdlib" else "docstrings"
    absolute = str(root.resolve())  # tasks may run in another working directory
    units = [
        (LocalUnit(kind, absolute, p.relative_to(root).as_posix()), p.stat().st_size)
        for p in files
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


def iter_documents(entry: CorpusEntry) -> Iterator[dict[str, Any]]:
    """Documents in a stable order; a file that is skipped (undecodable, generated) comes with a
    ``None`` text and, where known, a ``skip`` reason."""
    return read_part(entry, [unit for unit, _ in read_units(entry)])


def _unit_documents(entry: CorpusEntry, unit: LocalUnit) -> Iterator[dict[str, Any]]:
    if unit.kind == "topics":
        yield from _topics(entry)
        return
    path = Path(unit.root) / unit.rel
    if unit.kind == "file":
        yield from _file_documents(entry, path, unit.rel)
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


def _file_documents(entry: CorpusEntry, path: Path, rel: str) -> Iterator[dict[str, Any]]:
    """A user's file through the entry's reader (text by default; jsonl, csv, parquet, code
    and the text reader's paragraph/line units work on local folders as on downloads)."""
    from corpuskit.readers import reader_for

    reader = reader_for(entry.reader)
    for doc in reader.read([(path, rel)], entry.reader_options):
        key = doc.pop("key")
        doc.pop("file", None)
        yield {
            "id": f"{entry.name}/{key}",
            "split": "train",
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
