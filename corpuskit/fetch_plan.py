"""What one fetch makes: the artifact's name, folder and identity, from an entry and options.

The identity (a fingerprint of the entry's source, reader, splits and slice, and of its inputs)
decides whether an artifact on disk is up to date; options a source cannot honour are refused
here, before any download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.paths import raw_dir
from corpuskit.shards import new_manifest
from corpuskit.slices import Slice, artifact_name, combine
from corpuskit.sources import source_module
from corpuskit.sources.common import ENV_MIRROR, check_user_url


@dataclass(frozen=True)
class FetchPlan:
    """What one fetch makes: the entry its source reads, and the artifact it writes.

    For a slice (``NAME@max-bytes=2GB``, or ``slice=``) the source reads the catalog entry
    (downloads, lock pins and document ids are the corpus's), while the artifact is named by
    the slice, in its own folder, with the slice in its fingerprint.
    """

    entry: CorpusEntry
    name: str
    target: Path
    identity: dict[str, Any]
    splits: list[str] | None
    slice: Slice
    mirror: str | None


def _checked_splits(entry: CorpusEntry, splits: list[str] | None) -> list[str] | None:
    if not splits:
        return None
    unknown = sorted(set(splits) - set(entry.splits))
    if unknown:
        raise CorpuskitError(
            f"corpus {entry.name!r} has no split {', '.join(unknown)}; its splits are "
            f"{', '.join(entry.splits)}"
        )
    return [s for s in entry.splits if s in splits]


def _checked_slice(entry: CorpusEntry, sl: Slice) -> None:
    """Options a source type cannot honour are an error, never silently ignored."""
    if sl.subset is not None:
        entry.subset(sl.subset)  # an unknown subset is one line listing the known ones
        if entry.source.type not in ("hf", "http"):  # http: the subset's globs pick files
            raise CorpuskitError(
                f"--subset is for hf and http sources; {entry.name!r} is a "
                f"{entry.source.type} source"
            )


def plan_fetch(
    entry: CorpusEntry,
    root: Path,
    *,
    mirror: str | None = None,
    splits: list[str] | None = None,
    slice: Slice | None = None,
) -> FetchPlan:
    """The artifact a fetch of ``entry`` (a catalog entry, or one named ``NAME@<slice>``) with
    these options makes, and its identity (what decides whether it is up to date)."""
    base, sl = combine(entry.name, slice or Slice())
    if base != entry.name:
        entry = entry.model_copy(update={"name": base})
    _checked_slice(entry, sl)
    mirror = mirror or os.environ.get(ENV_MIRROR) or None
    if mirror:
        check_user_url(mirror, "mirror")
    splits = _checked_splits(entry, splits)
    module = source_module(entry)
    config: dict[str, Any] = {"source": entry.source.model_dump(), "reader": entry.reader}
    if entry.reader_options.model_dump(exclude_defaults=True):
        config["reader_options"] = entry.reader_options.model_dump()
    if splits:
        config["splits"] = splits
    if sl:
        config["slice"] = sl.config()
    name = artifact_name(base, sl)
    identity = new_manifest("raw", name, inputs=module.input_fingerprint(entry), config=config)
    return FetchPlan(entry, name, raw_dir(root, name), identity, splits, sl, mirror)
