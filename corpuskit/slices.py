"""Slices: a deterministic part of a corpus, fetched as its own raw artifact.

A slice is named by its budget: ``fineweb-edu@max-bytes=2GB`` or
``fineweb-2@subset=de,max-documents=100000``. The name is the artifact's folder
(``<data>/raw/fineweb-edu@max-bytes=2GB/``) and the name that ``build``, ``train`` and
``info`` accept, so a larger slice fetched later is another folder and never replaces a smaller
one. The selection is a prefix of the corpus in its reading order (splits train, validation,
test; files in sorted path order; documents in file order): documents are kept until the next
one would pass the byte budget or the document budget is reached, so the same entry, revision
and budget select the same documents on any machine.

``--subset`` picks one of the entry's subsets (its globs replace the source's; of an http
source it downloads only the files whose name or URL path they match); ``--max-files``
keeps the first N files of the sorted listing. Sizes are decimal (``2GB`` = 2·10⁹ bytes) or
binary (``2GiB``); the canonical label writes the same budget the same way however it was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corpuskit.errors import CorpuskitError

if TYPE_CHECKING:
    from corpuskit.catalog import Catalog, CorpusEntry

SEPARATOR = "@"
_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
}
_LABELS = [("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3),
           ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)]


def parse_size(text: str) -> int:
    """``2GB``, ``1.5 GiB``, ``200MB``, ``12345`` as a number of bytes (at least 1)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise CorpuskitError(
            f"size {text!r} is not a size; write a number with an optional unit, e.g. 200MB, "
            "2GB or 1.5GiB (kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB of 1024)"
        )
    value = round(float(match.group(1)) * _UNITS[unit])
    if value < 1:
        raise CorpuskitError(f"size {text!r} is less than one byte; give a positive size")
    return value


def format_size(n: int) -> str:
    """The canonical spelling of a byte budget: the largest unit that divides it exactly."""
    for label, factor in _LABELS:
        if n % factor == 0:
            return f"{n // factor}{label}"
    return str(n)


@dataclass(frozen=True)
class Slice:
    """A budget on what a fetch keeps; all None is the whole corpus."""

    subset: str | None = None
    max_files: int | None = None
    max_documents: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        for what in ("max_files", "max_documents", "max_bytes"):
            value = getattr(self, what)
            if value is not None and value < 1:
                option = "--" + what.replace("_", "-")
                raise CorpuskitError(f"{option} must be at least 1, not {value}")
        if self.subset is not None and not re.fullmatch(r"[A-Za-z0-9][\w.+-]*", self.subset):
            raise CorpuskitError(f"subset {self.subset!r} is not a subset name")

    def __bool__(self) -> bool:
        return any(v is not None for v in self.config().values())

    @property
    def limits_documents(self) -> bool:
        """Whether documents are cut at a budget (files are read in one stream then)."""
        return self.max_bytes is not None or self.max_documents is not None

    def config(self) -> dict[str, int | str | None]:
        return {
            "subset": self.subset,
            "max_files": self.max_files,
            "max_documents": self.max_documents,
            "max_bytes": self.max_bytes,
        }

    def label(self) -> str:
        """``subset=de,max-files=2,max-documents=1000,max-bytes=2GB`` (fixed order)."""
        parts = []
        for key, value in self.config().items():
            if value is None:
                continue
            shown = format_size(int(value)) if key == "max_bytes" else str(value)
            parts.append(f"{key.replace('_', '-')}={shown}")
        return ",".join(parts)


def parse_label(text: str) -> Slice:
    """The inverse of :meth:`Slice.label` (any order, sizes in any unit)."""
    values: dict[str, int | str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        field = key.strip().replace("-", "_")
        if not eq or field not in Slice().config() or field in values:
            raise CorpuskitError(
                f"slice {text!r} is not understood; write e.g. max-bytes=2GB,max-documents=1000 "
                "(keys: subset, max-files, max-documents, max-bytes, each once)"
            )
        if field == "subset":
            values[field] = value.strip()
        elif field == "max_bytes":
            values[field] = parse_size(value)
        else:
            if not value.strip().isdigit():
                raise CorpuskitError(f"slice {text!r}: {key} needs a whole number, not {value!r}")
            values[field] = int(value)
    return Slice(**values)  # type: ignore[arg-type]


def split_name(name: str) -> tuple[str, Slice]:
    """``fineweb-edu@max-bytes=2GB`` -> (``fineweb-edu``, its slice); a plain name -> no slice."""
    base, sep, label = name.partition(SEPARATOR)
    return (base, parse_label(label)) if sep else (name, Slice())


def artifact_name(base: str, sl: Slice) -> str:
    """The folder (and the name ``build`` takes) of a slice of ``base``."""
    return f"{base}{SEPARATOR}{sl.label()}" if sl else base


def combine(name: str, sl: Slice) -> tuple[str, Slice]:
    """A name that may carry a slice, plus the slice options given beside it; both at once must
    agree on every key they both set."""
    base, named = split_name(name)
    merged = {}
    for key, value in named.config().items():
        other = sl.config()[key]
        if value is not None and other is not None and value != other:
            raise CorpuskitError(
                f"{name!r} and the option --{key.replace('_', '-')} disagree; give the slice once"
            )
        merged[key] = value if value is not None else other
    return base, Slice(**merged)  # type: ignore[arg-type]


def sliced_entry(catalog: Catalog, name: str, sl: Slice | None = None) -> CorpusEntry:
    """The catalog entry that ``name`` (``NAME`` or ``NAME@<slice>``) and the slice options
    name; a slice is the entry under the slice's name, so that ``fetch`` writes and ``build``
    reads ``<data>/raw/NAME@<slice>/`` (``fetch`` reads the source as the entry's own)."""
    base, merged = combine(name, sl or Slice())
    entry = catalog.get(base)
    if not merged:
        return entry
    if merged.subset is not None:
        entry.subset(merged.subset)  # an unknown subset fails before anything is fetched
    return entry.model_copy(update={"name": artifact_name(base, merged)})
