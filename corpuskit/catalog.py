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
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus, urlparse

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


# Query parameter names that carry credentials, compared lower-case without separators
# (``X-Amz-Signature`` → ``xamzsignature``): whole names, and endings (``access_token``).
_SECRET_NAMES = frozenset({"sig", "pass", "auth", "authorization", "jwt"})
_SECRET_ENDINGS = (
    "token", "key", "secret", "password", "passwd", "passphrase", "pwd", "signature",
    "credential", "credentials",
)
REDACTED = "REDACTED"


def _secret_param(name: str) -> bool:
    norm = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return norm in _SECRET_NAMES or norm.endswith(_SECRET_ENDINGS)


def _redact_query(query: str) -> str:
    """``a=1&token=x`` → ``a=1&token=REDACTED``; everything else is kept byte for byte."""
    pieces = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if eq and _secret_param(name) else piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """A URL fit for messages, manifests and ``info``: no ``user:password@``, no credential-like
    query (or fragment) values; a URL with nothing to hide comes back unchanged, so that
    fingerprints of ordinary catalog entries do not move.
    """
    try:
        parts = urlparse(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: show nothing after the scheme
        return url.split("://", 1)[0] + "://" + REDACTED if "://" in url else REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    redacted = parts._replace(
        netloc=netloc, query=_redact_query(parts.query), fragment=_redact_query(parts.fragment)
    )
    return url if redacted == parts else redacted.geturl()


SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
COMMIT = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
_SCHEMES = ("https://", "http://", "file://", "hf://", "s3://", "gs://")


def check_url(value: str, *, allow_http: bool, what: str = "URL") -> str:
    """Refuse URLs we cannot fetch safely: unknown schemes, no host, or plain http.

    Plain http is refused unless the catalog says ``allow_http: true``: the bytes could be
    changed in transit, and a file without a published sha256 would not notice.
    """
    shown = redact_url(value)  # errors are printed and logged: never a credential
    if not value.startswith(_SCHEMES):
        raise ValueError(f"unsupported {what} {shown!r}: use https://, hf://, s3://, gs:// or file://")
    if value.startswith(("https://", "http://")) and not urlparse(value).netloc:
        raise ValueError(f"{what} {shown!r} has no host")
    if value.startswith("http://") and not allow_http:
        raise ValueError(
            f"plain-http {what} {shown!r} refused: use https://, or set 'allow_http: true' "
            "on the source if you trust the network path"
        )
    return value


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
    """Files of a Hugging Face Hub dataset repository at a pinned commit.

    ``fallback`` is another source (usually the original archive) used when the Hub cannot be
    reached or does not have a file.
    """

    type: Literal["hf"]
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    revision: COMMIT
    config: str | None = None
    files: list[RemoteFile] = Field(min_length=1)
    fallback: HttpSource | None = None

    @model_validator(mode="after")
    def _paths(self) -> HfSource:
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
    LocalSource | HttpSource | HfSource | KaggleSource | GithubSource, Field(discriminator="type")
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


class Size(_Strict):
    """What is known of a corpus's size; any field may be unknown."""

    bytes: int | None = None
    documents: int | None = None
    tokens: int | None = None


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
    source: Source
    reader: Literal["text", "wikitext", "parquet", "jsonl", "csv", "code"] = "text"
    reader_options: ReaderOptions = Field(default_factory=ReaderOptions)
    recipe: dict[str, Any] = Field(default_factory=dict)
    origin: str | None = Field(default=None, exclude=True)

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
            "languages": ",".join(self.languages),
            "domain": ",".join(self.domains),
            "size_bytes": self.size.bytes,
            "license": self.license,
        }


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", node.start_mark
            )
    mapping = loader.construct_mapping(node, deep=True)
    lines = {
        k: key_node.start_mark.line + 1
        for key_node, _ in node.value
        for k in [loader.construct_object(key_node)]
    }
    mapping["__lines__"] = lines
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# Bounds on what one catalog file may ask the loader to build: entries are a few levels deep
# and a few hundred values, so these only stop hostile files (deep nesting would exhaust the
# recursion limit; aliases of aliases, a "billion laughs", would expand exponentially).
MAX_DEPTH = 64
MAX_VALUES = 1_000_000


def _children(node: yaml.Node, label: str) -> list[tuple[yaml.Node, str]]:
    """A node's keys and values, each with the mapping key it sits under (for messages)."""
    if isinstance(node, yaml.SequenceNode):
        return [(n, label) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        out = []
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else label
            out += [(k, label), (v, str(name))]
        return out
    return []


def _check_bounds(root: yaml.Node, path: Path) -> None:
    """Refuse a YAML graph deeper than MAX_DEPTH, expanding (aliases counted every time they
    are used) to more than MAX_VALUES values, or holding an alias to itself; iterative, and
    linear in the number of distinct nodes."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    while stack:
        node, label, finished = stack.pop()
        key = id(node)
        where = f"{path}:{node.start_mark.line + 1}: " + (f"{label!r}: " if label else "")
        if finished:
            kids = [k for k, _ in _children(node, label)]
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if height[key] > MAX_DEPTH:
                raise CatalogError(
                    f"{where}nested more than {MAX_DEPTH} levels deep; a catalog is a list "
                    "of flat entries"
                )
            if size[key] > MAX_VALUES:
                raise CatalogError(
                    f"{where}aliases expand to more than {MAX_VALUES:,} values (a YAML "
                    "bomb?); refused"
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise CatalogError(f"{where}an alias refers to a value that contains it; refused")
        on_path.add(key)
        stack.append((node, label, True))
        stack.extend((k, name, False) for k, name in _children(node, label) if id(k) not in size)


def _parse_yaml(text: str, path: Path) -> Any:
    """``yaml.load`` with :func:`_check_bounds` between composing and constructing."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_bounds(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k not in ("__lines__", "__line__")}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _line_of(raw: Any, loc: Sequence[Any]) -> int | None:
    """Walk a pydantic error location through the raw YAML to the nearest line we know."""
    line = raw.get("__line__") if isinstance(raw, dict) else None
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = node.get("__lines__", {}).get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = node.get("__line__", line)
        else:
            break
    return line


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
                f"{path}:{line}: corpus {name!r}, field '{field}': {err['msg']}"
            ) from None
        entries.append(entry)
    return entries


_SOURCE_TAGS = {"local", "http", "hf", "kaggle", "github"}


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

    def filter(
        self,
        *,
        language: str | None = None,
        domain: str | None = None,
        source: str | None = None,
        license: str | None = None,
        max_size: int | None = None,
        search: str | None = None,
    ) -> list[CorpusEntry]:
        """Entries matching every given criterion (case-insensitive)."""
        out = []
        for e in self:
            if language and language.lower() not in [x.lower() for x in e.languages]:
                continue
            if domain and domain.lower() not in [x.lower() for x in e.domains]:
                continue
            if source and source.lower() != e.source.type:
                continue
            if license and license.lower() not in e.license.lower():
                continue
            if max_size is not None and (e.size.bytes is None or e.size.bytes > max_size):
                continue
            if search:
                hay = " ".join([e.name, e.title, e.description, *e.domains]).lower()
                if search.lower() not in hay:
                    continue
            out.append(e)
        return out
