"""The Python API for data: fetch, build (and its plan), inspect, export, verify and sync
artifacts (``corpuskit.api`` re-exports every name; see corpuskit/api.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corpuskit.api_catalog import CatalogPaths, load_catalog
from corpuskit.api_runs import resolve_build, resolve_run
from corpuskit.build import BuildConfig, BuildResult, build_entry, build_root
from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.fetch import FetchResult, fetch_entry
from corpuskit.mixture import build_mix_entry, fetch_mix, format_mix_plan, is_mix, refuse_mixture
from corpuskit.paths import data_root, raw_dir
from corpuskit.remote import mirrored, remote_url
from corpuskit.shards import existing_manifest
from corpuskit.slices import Slice, parse_size, sliced_entry
from corpuskit.sync import KINDS


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    catalog: CatalogPaths = (),
    mirror: str | None = None,
    splits: Sequence[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    max_bytes: int | str | None = None,
    max_documents: int | None = None,
    max_files: int | None = None,
    subset: str | None = None,
) -> FetchResult:
    """Fetch a corpus into ``<data>/raw/<name>/`` (does nothing when already up to date).

    ``mirror`` (else ``CORPUSKIT_MIRROR``) is a base URL tried first for every file;
    ``splits`` fetches only those splits. Sources made of many files are read in groups of
    files as ``executor`` tasks: ``"local"`` with ``workers`` processes (default 1: this
    process; 0: every core) or ``"ray"`` (``address``: a running cluster; ``workers``: a cap,
    default every CPU); the shards are byte-identical either way (docs/scale-out.md).

    ``max_bytes`` (``"2GB"`` or a number), ``max_documents``, ``max_files`` and ``subset`` (or
    a name ``NAME@max-bytes=2GB``) fetch a slice into ``<data>/raw/NAME@<slice>/``, a
    deterministic prefix of the corpus within the budget (corpuskit/slices.py).
    """
    wanted = Slice(
        subset=subset,
        max_files=max_files,
        max_documents=max_documents,
        max_bytes=parse_size(str(max_bytes)) if max_bytes is not None else None,
    )
    entry = sliced_entry(load_catalog(catalog), name, wanted)
    name = entry.name
    if address and executor != "ray":
        raise CorpuskitError("--address is for --executor ray")
    if workers is None:
        workers = 1 if executor == "local" else 0
    url = remote_url(data_dir)
    if url is not None:  # object storage: work in a local mirror, push the result
        with mirrored(url, name, pull=("raw",), push=("raw",)) as local:
            return fetch(
                name, data_dir=local, force=force, progress=progress, catalog=catalog,
                mirror=mirror, splits=splits, executor=executor, workers=workers,
                address=address,
            )
    options: dict[str, Any] = dict(
        force=force, progress=progress, mirror=mirror, splits=list(splits) if splits else None,
        executor=executor, workers=workers, address=address,
    )
    if is_mix(entry):  # a mixture fetches each of its components (corpuskit/mixture/)
        return fetch_mix(load_catalog(catalog), entry, data_root(data_dir), **options)
    return fetch_entry(entry, data_root(data_dir), **options)


def build(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    catalog: CatalogPaths = (),
    fetch_missing: bool = True,
    recipe: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    force: bool = False,
    **config: Any,
) -> BuildResult:
    """Clean, filter, deduplicate, tokenize and pack a corpus.

    ``force`` rebuilds the clean and token artifacts from scratch, the phase-1 cache ignored;
    each old artifact is replaced only once its replacement is complete. Without it, an
    up-to-date artifact whose files are missing or of the wrong size is built again too.

    ``config`` fields are ``BuildConfig``'s. Precedence, lowest first: the entry's own
    ``recipe``, the ``recipe`` file, ``settings`` (the CLI's ``--set``), explicit arguments.
    ``executor="ray"`` (and ``address=``) runs the per-shard work as Ray tasks, same output.
    ``data_dir`` may be a local path, a ``file://`` URL or an object-store URL (``s3://``...):
    then the build runs in a local mirror of it and pushes its artifacts back (``remote.py``).
    """
    url = remote_url(data_dir)
    if url is not None:
        with mirrored(url, name, pull=KINDS, push=KINDS) as local:
            return build(
                name, data_dir=local, progress=progress, catalog=catalog,
                fetch_missing=fetch_missing, recipe=recipe, settings=settings, force=force,
                **config,
            )
    cat = load_catalog(catalog)
    entry = sliced_entry(cat, name)  # NAME@max-bytes=2GB builds that slice's raw artifact
    root = build_root(data_dir)
    if is_mix(entry):  # components cleaned, one tokenizer, resampled (corpuskit/mixture/)
        return build_mix_entry(cat, entry, root, recipe=recipe, overrides=_overrides(
            settings, config), progress=progress, force=force, fetch_missing=fetch_missing)
    build_config = build_settings(entry, recipe, settings, config)
    if fetch_missing and existing_manifest(raw_dir(root, name)) is None:
        fetch_entry(entry, root, progress=progress)
    return build_entry(entry, root, build_config, progress=progress, force=force)


def build_settings(
    entry: CorpusEntry,
    recipe: str | os.PathLike[str] | None,
    settings: Mapping[str, Any] | None,
    config: Mapping[str, Any],
) -> BuildConfig:
    """The resolved, validated build config (before any fetch: a typo costs no download)."""
    from corpuskit.recipe import resolve

    return resolve(entry, recipe, _overrides(settings, config))


def _overrides(settings: Mapping[str, Any] | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """``--set`` values, then explicit arguments (those not None) over them."""
    from corpuskit.recipe import flatten

    overrides = flatten(settings or {}, "--set")
    overrides.update({k: v for k, v in config.items() if v is not None})
    return overrides


def build_plan(
    name: str,
    *,
    catalog: CatalogPaths = (),
    recipe: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    **config: Any,
) -> str:
    """What ``build`` would do with these options, as text (``corpuskit build --dry-run``)."""
    from corpuskit.recipe import format_plan

    cat = load_catalog(catalog)
    entry = sliced_entry(cat, name)
    if is_mix(entry):
        return format_mix_plan(cat, entry, recipe, _overrides(settings, config))
    return format_plan(entry, build_settings(entry, recipe, settings, config))


def inspect(
    build: str, *, data_dir: str | os.PathLike[str] | None = None, samples: int = 3
) -> dict[str, Any]:
    """Token counts, bytes per token, unknown rate, length histogram and decoded samples."""
    from corpuskit.inspection import inspect_build

    return inspect_build(resolve_build(build, data_root(data_dir)), samples=samples)


def export(
    build: str,
    out: str | os.PathLike[str],
    *,
    to: str = "hf",
    data_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a build's documents and token ids as Hugging Face datasets under ``out``
    (``progress=False`` silences every bar, ``datasets``' own included)."""
    from corpuskit.export import export_hf

    if to == "transformers":  # ``build`` names a gpt run here: the model leaves, not the data
        from corpuskit.transformers_export import export_transformers

        root = data_root(data_dir)
        return export_transformers(resolve_run(build, root), Path(out), root=root,
                                   overwrite=overwrite)
    if to != "hf":
        raise CorpuskitError(f"unknown export format {to!r}; supported: hf, transformers")
    root = data_root(data_dir)
    build_dir = resolve_build(build, root)
    refuse_mixture(build_dir, "export --to hf")
    return export_hf(build_dir, root, Path(out), overwrite=overwrite,
                     progress=progress)


def verify(
    target: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Any:
    """Check the size and hash of every file the manifests record: of every artifact under the
    data root (``target`` None), of one corpus's raw, clean and token artifacts (a name), or of
    one artifact folder (a path). Returns a ``verification.VerifyResult``; its ``problems``
    name each damaged file and the command that rebuilds it."""
    from corpuskit.verification import verify as run_verify

    return run_verify(
        data_root(data_dir), None if target is None else os.fspath(target), progress=progress
    )


def sync(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    corpora: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    dry_run: bool = False,
) -> Any:
    """Copy complete artifacts (raw, clean, tokens; manifest last) between two data roots, each
    a local path or an fsspec URL (``s3://``, ``gs://``, ``memory://``...). Returns a
    ``sync.SyncResult``; see ``corpuskit/sync.py``."""
    from corpuskit.sync import KINDS
    from corpuskit.sync import sync as run_sync

    return run_sync(
        src,
        dst,
        corpora=list(corpora) if corpora else None,
        kinds=tuple(kinds) if kinds else KINDS,
        dry_run=dry_run,
    )
