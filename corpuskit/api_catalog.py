"""The Python API for choosing a corpus and checking the setup: the catalog, its entries and
what is on disk for them, suggestions, and the environment check (``corpuskit.api`` re-exports
every name; see corpuskit/api.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corpuskit.catalog import Catalog, CorpusEntry
from corpuskit.choose import Suggestion, license_family
from corpuskit.choose import suggest as choose_suggest
from corpuskit.fetch import download_state
from corpuskit.paths import clean_root, data_root, raw_dir, tokens_root
from corpuskit.shards import existing_manifest

CatalogPaths = Sequence[str | os.PathLike[str]]


def load_catalog(catalog: CatalogPaths = ()) -> Catalog:
    """The built-in catalog plus user catalog files or folders."""
    return Catalog.load(catalog)


def list_corpora(catalog: CatalogPaths = (), **filters: Any) -> list[CorpusEntry]:
    """Catalog entries, filtered by ``language``/``domain`` (one or several), ``source``,
    ``license`` (a family: permissive, copyleft, noncommercial, unknown; or text in the id),
    ``max_size`` (bytes), ``min_tokens``/``max_tokens``, ``gated`` and free-text ``search``;
    ``sort`` by name, size or tokens (see :func:`corpuskit.choose.filter_entries`)."""
    return load_catalog(catalog).filter(**filters)


def suggest(
    *,
    language: str | Sequence[str] | None = None,
    domain: str | Sequence[str] | None = None,
    tokens: int | str | None = None,
    license: str | None = None,
    gated: bool | None = None,
    limit: int = 10,
    catalog: CatalogPaths = (),
) -> list[Suggestion]:
    """The catalog entries that fit a question, best first, each with one line of reasons and
    the fetch command (``tokens`` is a budget such as ``2B``); see
    :func:`corpuskit.choose.suggest` for the ranking."""
    return choose_suggest(
        load_catalog(catalog), language=language, domain=domain, tokens=tokens,
        license=license, gated=gated, limit=limit,
    )


def info(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, catalog: CatalogPaths = ()
) -> dict[str, Any]:
    """Everything the catalog knows about a corpus, plus what is on disk for it."""
    entry = load_catalog(catalog).get(name)
    root = data_root(data_dir)
    raw = existing_manifest(raw_dir(root, name))
    local: dict[str, Any] = {"fetched": raw is not None, "raw_dir": str(raw_dir(root, name))}
    if raw is not None:
        local["raw"] = {
            "fingerprint": raw["fingerprint"],
            "splits": raw["splits"],
            "shards": len(raw["shards"]),
            "skipped": raw.get("skipped", {}),
            "resolved": raw.get("resolved"),
        }
    local.update(download_state(root, name))
    local["clean_builds"] = _artifacts(clean_root(root, name))
    local["token_builds"] = _artifacts(tokens_root(root, name))
    local["raw_slices"] = _slices(raw_dir(root, name))
    return {
        **entry.model_dump(mode="json"),
        "origin": entry.origin,
        "license_family": license_family(entry.license),
        "local": local,
    }


def _slices(raw: Path) -> list[str]:
    """Fetched slices of the corpus (``raw/NAME@max-bytes=2GB``, ...), each its own artifact."""
    if not raw.parent.is_dir():
        return []
    return sorted(
        str(p)
        for p in raw.parent.glob(f"{raw.name}@*")
        if p.is_dir() and existing_manifest(p) is not None
    )


def _artifacts(base: Path) -> list[str]:
    if not base.is_dir():
        return []
    return sorted(
        str(p)
        for p in base.iterdir()
        if p.is_dir() and not p.name.startswith(".") and existing_manifest(p) is not None
    )


def doctor(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    catalog: CatalogPaths = (),
    offline: bool = False,
    timeout: float = 3.0,
    hosts: Sequence[str] | None = None,
) -> list[Any]:
    """Check the environment: versions, torch device, data root, catalog, network reachability.

    Returns ``doctor.Check`` rows; ``offline`` skips the network checks, ``hosts``
    (``host:port``) replaces the catalog's hosts.
    """
    from corpuskit.doctor import run_checks

    return run_checks(
        data_root(data_dir), catalog=catalog, offline=offline, timeout=timeout, hosts=hosts
    )
