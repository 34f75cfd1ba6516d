"""The corpus catalog: typed entries loaded from YAML, searched and filtered.

Catalog files are plain data. They are read with a safe YAML loader (nothing in a catalog can run
code) and validated against the pydantic models below, so that a typo becomes an error naming the
file, the line and the field instead of a surprise three steps later.

Built-in catalog files live in the repository's ``catalog/`` folder; users add their own with
``--catalog PATH`` or the ``CORPUSKIT_CATALOG`` environment variable (``os.pathsep``-separated
files or folders).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from corpuskit.catalog_mix import MixSource
from corpuskit.catalog_schema import Gated, Size, SourceRef, Subset, check_subsets
from corpuskit.catalog_urls import REDACTED, check_url, redact_url  # noqa: F401
from corpuskit.catalog_yaml import MAX_DEPTH, _line_of, _parse_yaml, _strip_lines
from corpuskit.errors import CatalogError

ENV_CATALOG = "CORPUSKIT_CATALOG"
BUILTIN_CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_local_glob(value: str) -> str:
    """A local folder's glob must stay inside the folder: no absolute path, no ``..``."""
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "\\", "~")) or ".." in parts or (len(value) > 1 and value[1] == ":"):
        raise ValueError(
            f"glob {value!r} must be relative to the folder and stay inside it "
            "(no absolute path, no '..'); change 'path:' to read another folder"
        )
    return value


class LocalGlob(_Strict):
    """A glob whose files all hold one split (``{glob: "dev/*.txt", split: validation}``)."""

    glob: str
    split: Literal["train", "validation", "test"]

    @field_validator("glob")
    @classmethod
    def _inside(cls, value: str) -> str:
        return check_local_glob(value)


# A plain glob or a {glob, split} mapping; tagged so that an error names only the form given.
_LocalGlobItem = Annotated[
    Annotated[str, Tag("glob")] | Annotated[LocalGlob, Tag("glob-with-split")],
    Discriminator(lambda v: "glob" if isinstance(v, str) else "glob-with-split"),
]


class LocalSource(_Strict):
    """Text already on this machine: the interpreter's own files, or a user's folder.

    A ``files`` folder's splits come from its file names (``wiki.valid.tokens`` → validation,
    as for downloads) unless a glob says ``split:``; symlinks that lead outside the folder are
    skipped (and counted) unless ``follow_symlinks: true``.
    """

    type: Literal["local"]
    kind: Literal["python-stdlib", "python-docs", "files"]
    path: str | None = None
    globs: list[_LocalGlobItem] = Field(default_factory=lambda: ["**/*.txt"])
    follow_symlinks: bool = False

    @field_validator("globs")
    @classmethod
    def _inside(cls, value: list[str | LocalGlob]) -> list[str | LocalGlob]:
        for g in value:
            if isinstance(g, str):
                check_local_glob(g)
        return value


SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
COMMIT = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]


class RemoteFile(_Strict):
    """One downloadable file with the facts needed to verify it.

    ``url`` is required for http sources; for hf sources the URL is derived from ``path`` (the
    file's path in the repository). ``split`` says which split the file holds; when absent it is
    inferred from the file name (``train``, ``valid``/``validation``/``dev``, ``test``).
    """

    url: str | None = None
    path: str | None = None
    sha256: SHA256 | None = None
    bytes: int | None = Field(default=None, ge=0)
    split: str | None = None

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        allow_http = bool((info.context or {}).get("allow_http", True))
        return check_url(value, allow_http=allow_http)

    @field_serializer("url")
    def _redacted_url(self, value: str | None) -> str | None:
        """Every dump (``info``, manifests, the fetch fingerprint) shows the URL without its
        credentials; only the model itself, used to download, holds them."""
        return None if value is None else redact_url(value)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is not None and (
            value.startswith(("/", "\\")) or ".." in value.replace("\\", "/").split("/")
        ):
            raise ValueError(f"path {value!r} must be relative and stay inside its folder")
        return value

    @property
    def name(self) -> str:
        """The file's name in the download cache and on a mirror."""
        if self.path:
            return self.path
        assert self.url is not None
        return PurePosixPath(urlparse(self.url).path).name or "download"


def _unique_names(files: list[RemoteFile]) -> None:
    """Two files of one source never share a name: it keys the lock file, mirrors and manifests
    (``https://a/train/data.jsonl`` and ``https://a/valid/data.jsonl`` would pin one sha256)."""
    seen: dict[str, int] = {}
    for i, f in enumerate(files):
        if f.name in seen:
            raise ValueError(
                f"files[{i}] and files[{seen[f.name]}] are both named {f.name!r}; give each a "
                f"distinct 'path:' (e.g. path: validation/{f.name.rsplit('/', 1)[-1]})"
            )
        seen[f.name] = i


class HttpSource(_Strict):
    """Files at plain URLs (archives are unpacked safely; ``globs`` pick what is read)."""

    type: Literal["http"]
    allow_http: bool = False
    files: list[RemoteFile] = Field(min_length=1)
    mirrors: list[str] = Field(default_factory=list)
    globs: list[str] | None = None

    @model_validator(mode="after")
    def _urls(self) -> HttpSource:
        for i, f in enumerate(self.files):
            if f.url is None:
                raise ValueError(f"files[{i}] needs a 'url:'")
            check_url(f.url, allow_http=self.allow_http)
        for m in self.mirrors:
            check_url(m, allow_http=self.allow_http, what="mirror URL")
        _unique_names(self.files)
        return self

    @field_serializer("mirrors")
    def _redacted_mirrors(self, value: list[str]) -> list[str]:
        return [redact_url(m) for m in value]


class HfSource(_Strict):
    """Files of a Hugging Face Hub dataset repository at a revision.

    ``revision`` is a 40-hex commit, or a branch or tag (``main``) that the first fetch resolves
    to a commit and records in the lock file. Files are named one by one (``files``) or by
    ``globs`` listed through the Hub API at the revision. ``fallback`` is another source
    (usually the original archive) used when the Hub cannot be reached or lacks a file.
    """

    type: Literal["hf"]
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    revision: str = Field(pattern=r"^(?:[0-9a-f]{40}|[A-Za-z0-9][\w.+/-]*)$")
    config: str | None = None
    files: list[RemoteFile] = Field(default_factory=list)
    globs: list[str] | None = None
    fallback: HttpSource | None = None

    @model_validator(mode="after")
    def _paths(self) -> HfSource:
        if not self.files and not self.globs:
            raise ValueError(
                "an hf source needs 'files:' (paths in the repo) or 'globs:' "
                '(e.g. globs: ["sample/10BT/*.parquet"])'
            )
        for g in self.globs or []:
            check_local_glob(g)
        for i, f in enumerate(self.files):
            if not f.path:
                raise ValueError(f"files[{i}] needs a 'path:' (the file's path in the repo)")
        _unique_names(self.files)
        return self


class KaggleSource(_Strict):
    """A Kaggle dataset; ``version`` pins it (the latest is resolved once and locked)."""

    type: Literal["kaggle"]
    dataset: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    version: int | None = Field(default=None, ge=1)
    files: list[str] = Field(default_factory=lambda: ["**/*"])


class GithubSource(_Strict):
    """The archive of one commit of a GitHub repository, one document per matching file."""

    type: Literal["github"]
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    commit: COMMIT
    globs: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=list)
    license: str | None = None
    max_file_bytes: int = Field(default=2 * 2**20, ge=1)


Source = Annotated[
    LocalSource | HttpSource | HfSource | KaggleSource | GithubSource | MixSource,
    Field(discriminator="type"),
]


class ReaderOptions(_Strict):
    """How a reader finds the text in structured files (csv, jsonl, parquet), and what one
    document is in plain text files (``unit``)."""

    # text reader: one document per file, per blank-line-separated paragraph, or per line. A
    # single large file (a novel, tinyshakespeare) is one document otherwise: it could not be
    # given a validation split, nor be cut into shards that parallelise.
    unit: Literal["file", "paragraph", "line"] = "file"
    text_fields: list[str] = Field(default_factory=lambda: ["text"], min_length=1)
    title_field: str | None = None
    metadata_fields: list[str] = Field(default_factory=list)
    separator: str = "\n\n"
    encoding: str = "utf-8"
    delimiter: str = ","


class CorpusEntry(_Strict):
    """One corpus: the facts people choose by, and how to get it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    description: str
    homepage: str | None = None
    license: str
    languages: list[str]
    domains: list[str]
    size: Size = Field(default_factory=Size)
    splits: list[str] = Field(default_factory=lambda: ["train"])
    citation: str | None = None
    sources: list[SourceRef] = Field(default_factory=list)
    processing: str | None = None
    gated: Gated | None = None
    subsets: list[Subset] = Field(default_factory=list)
    source: Source
    reader: Literal["text", "wikitext", "parquet", "jsonl", "csv", "code"] = "text"
    reader_options: ReaderOptions = Field(default_factory=ReaderOptions)
    recipe: dict[str, Any] = Field(default_factory=dict)
    origin: str | None = Field(default=None, exclude=True)

    @field_validator("subsets")
    @classmethod
    def _distinct_subsets(cls, value: list[Subset]) -> list[Subset]:
        return check_subsets(value)

    @property
    def all_languages(self) -> list[str]:
        """The entry's languages and every subset's, in first-seen order (what it offers)."""
        subset_languages = [x for s in self.subsets for x in s.languages]
        return list(dict.fromkeys([*self.languages, *subset_languages]))

    def subset(self, name: str) -> Subset:
        """The subset called ``name``; an unknown one is an error listing a few known ones."""
        for s in self.subsets:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.subsets[:8]) or "none"
        raise CatalogError(
            f"corpus {self.name!r} has no subset {name!r} (known: {known}); "
            f"`corpuskit info {self.name}` lists them"
        )

    @field_serializer("homepage")
    def _redacted_homepage(self, value: str | None) -> str | None:
        return None if value is None else redact_url(value)

    @property
    def source_type(self) -> str:
        return self.source.type

    def summary(self) -> dict[str, Any]:
        """The row `corpuskit list` shows."""
        return {
            "name": self.name,
            "source": self.source.type,
            "languages": ",".join(self.all_languages),
            "domain": ",".join(self.domains),
            "size_bytes": self.size.bytes,
            "tokens": self.size.tokens,
            "license": self.license,
            "gated": self.gated is not None,
        }


def load_file(path: Path) -> list[CorpusEntry]:
    """Load and validate one catalog file; every problem is a CatalogError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = _parse_yaml(text, path)
    except RecursionError:  # composing nests one call per level: thousands of levels overflow
        raise CatalogError(
            f"{path}: nested more than {MAX_DEPTH} levels deep; a catalog is a list of flat "
            "entries"
        ) from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: catalog files must be UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CatalogError(f"{path}{where}: invalid YAML: {problem}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("corpora"), list):
        raise CatalogError(f"{path}:1: a catalog file is a mapping with a 'corpora:' list")
    entries = []
    for raw in doc["corpora"]:
        if not isinstance(raw, dict):
            raise CatalogError(f"{path}: each item under 'corpora:' must be a mapping")
        try:
            entry = CorpusEntry.model_validate(
                {**_strip_lines(raw), "origin": str(path)},
                context={"allow_http": _allows_http(raw.get("source"))},
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p in _SOURCE_TAGS)]
            line = _line_of(raw, loc)
            field = ".".join(str(p) for p in loc) or "entry"
            name = raw.get("name", "?")
            raise CatalogError(
                f"{path}:{line}: corpus {name!r}, field '{field}': "
                f"{err['msg'].removeprefix('Value error, ')}"
            ) from None
        entries.append(entry)
    return entries


_SOURCE_TAGS = {"local", "http", "hf", "kaggle", "github", "mix"}


def _allows_http(source: Any) -> bool:
    """Whether a raw source (or its fallback) says ``allow_http: true``, for URL checks."""
    if not isinstance(source, dict):
        return False
    return source.get("allow_http") is True or _allows_http(source.get("fallback"))


def _catalog_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise CatalogError(f"catalog path {path} does not exist: pass a YAML file or a folder")
    return files


class Catalog:
    """All known corpora, by name."""

    def __init__(self, entries: Iterable[CorpusEntry]):
        self._entries: dict[str, CorpusEntry] = {}
        for entry in entries:
            if entry.name in self._entries:
                first = self._entries[entry.name].origin
                raise CatalogError(
                    f"{entry.origin}: corpus {entry.name!r} is already defined in {first}; "
                    "rename one of them"
                )
            self._entries[entry.name] = entry

    @classmethod
    def load(cls, extra: Sequence[str | os.PathLike[str]] = ()) -> Catalog:
        """The built-in catalog plus ``CORPUSKIT_CATALOG`` plus ``extra`` paths."""
        sources: list[str | os.PathLike[str]] = []
        if BUILTIN_CATALOG_DIR.is_dir():
            sources.append(BUILTIN_CATALOG_DIR)
        env = os.environ.get(ENV_CATALOG)
        if env:
            sources.extend(p for p in env.split(os.pathsep) if p)
        sources.extend(extra)
        entries: list[CorpusEntry] = []
        for file in _catalog_files(sources):
            entries.extend(load_file(file))
        return cls(entries)

    def __iter__(self):
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> CorpusEntry:
        try:
            return self._entries[name]
        except KeyError:
            close = [n for n in sorted(self._entries) if name.lower() in n or n in name.lower()]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise CatalogError(
                f"unknown corpus {name!r}{hint}; `corpuskit list` shows the known ones"
            ) from None

    def filter(self, **criteria: Any) -> list[CorpusEntry]:
        """Entries matching every criterion; see :func:`corpuskit.choose.filter_entries`."""
        from corpuskit.choose import filter_entries

        return filter_entries(self, **criteria)
