"""Source-code files: one document per file, with its path and language (by extension).

Binary files (a NUL byte in the first 8 KiB) and files that are not UTF-8 are counted as
skipped; indentation and every byte of the text are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.readers import decode, skipped

LANGUAGES = {
    ".py": "python", ".pyi": "python", ".ipynb": "jupyter", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".cu": "cuda",
    ".rs": "rust", ".go": "go", ".java": "java", ".kt": "kotlin", ".scala": "scala",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".rb": "ruby", ".php": "php", ".swift": "swift",
    ".cs": "csharp", ".m": "objective-c", ".lua": "lua", ".pl": "perl", ".r": "r",
    ".jl": "julia", ".hs": "haskell", ".ml": "ocaml", ".ex": "elixir", ".erl": "erlang",
    ".clj": "clojure", ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".ps1": "powershell",
    ".sql": "sql", ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss",
    ".md": "markdown", ".markdown": "markdown", ".rst": "restructuredtext", ".txt": "text",
    ".tex": "latex", ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml",
    ".xml": "xml", ".ini": "ini", ".cfg": "ini", ".cmake": "cmake", ".mk": "make",
    ".dockerfile": "dockerfile", ".vim": "vim", ".el": "emacs-lisp", ".dart": "dart",
    ".zig": "zig", ".nim": "nim", ".f90": "fortran", ".asm": "assembly", ".s": "assembly",
}
_NAMES = {"makefile": "make", "dockerfile": "dockerfile", "cmakelists.txt": "cmake"}


def language_of(path: str) -> str:
    """A language name from a file's name or extension; ``unknown`` when we cannot tell."""
    p = PurePosixPath(path)
    return _NAMES.get(p.name.lower()) or LANGUAGES.get(p.suffix.lower(), "unknown")


def metadata_columns(options: ReaderOptions) -> list[str]:
    return ["file", "path", "language"]


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    for path, name in files:
        data = path.read_bytes()
        columns = {"path": name, "language": language_of(name)}
        if b"\0" in data[:8192]:
            yield skipped(name, name, "binary", **columns)
            continue
        text = decode(data)
        if text is None:
            yield skipped(name, name, "not_utf8", **columns)
        else:
            yield {"key": name, "text": text, "file": name, **columns}
