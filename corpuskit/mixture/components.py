"""The catalog side of a mixture: its components as entries (or slices), fetching them, the
``build --dry-run`` plan, and refusing steps a mixture build cannot serve."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpuskit.catalog import Catalog, CorpusEntry
from corpuskit.catalog_mix import MixComponent, MixSource
from corpuskit.errors import CatalogError, CorpuskitError
from corpuskit.fetch import FetchResult, fetch_entry


@dataclass(frozen=True)
class Component:
    """A mixture component resolved against the catalog."""

    spec: MixComponent
    entry: CorpusEntry

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass
class CleanComponent:
    """A component with its clean artifact."""

    component: Component
    path: Path
    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        return self.component.key

    @property
    def train_bytes(self) -> int:
        return int(self.manifest["splits"].get("train", {}).get("bytes", 0))


def is_mix(entry: CorpusEntry) -> bool:
    return isinstance(entry.source, MixSource)


def resolve_components(catalog: Catalog, mix: CorpusEntry) -> list[Component]:
    """The mixture's components as catalog entries (a component with ``subset``/``max_bytes``
    as its slice, ``NAME@<slice>``); an unknown or nested component, or a bad slice, is a
    one-line error naming the mixture and the component."""
    assert isinstance(mix.source, MixSource)
    from corpuskit.slices import SEPARATOR, Slice, sliced_entry

    if SEPARATOR in mix.name:
        raise CorpuskitError(
            f"{mix.name!r}: a mixture cannot be sliced; give its components 'subset:' or "
            "'max_bytes:' in the catalog instead"
        )
    out = []
    for c in mix.source.components:
        try:
            if is_mix(catalog.get(c.corpus)):
                raise CatalogError("it is itself a mixture; list its components instead")
            # A slice is its own raw artifact, raw/NAME@<slice>/ (corpuskit/slices.py).
            entry = sliced_entry(catalog, c.corpus, Slice(subset=c.subset,
                                                          max_bytes=c.max_bytes))
        except CorpuskitError as exc:
            raise CatalogError(f"mix {mix.name!r}: component {c.corpus!r}: {exc}") from None
        out.append(Component(c, entry))
    return out


def fetch_mix(catalog: Catalog, mix: CorpusEntry, root: Path, **options: Any) -> FetchResult:
    """Fetch every component (each into its own ``raw/<corpus>/``); the result sums them."""
    results = [fetch_entry(c.entry, root, **options) for c in resolve_components(catalog, mix)]
    splits: dict[str, dict[str, int]] = {}
    for r in results:
        for split, counts in r.manifest["splits"].items():
            into = splits.setdefault(split, {"documents": 0, "bytes": 0})
            into["documents"] += counts["documents"]
            into["bytes"] += counts["bytes"]
    manifest = {
        "kind": "mix",
        "splits": splits,
        "shards": [s for r in results for s in r.manifest["shards"]],
        "components": {r.corpus: r.manifest["fingerprint"] for r in results},
    }
    return FetchResult(mix.name, root / "raw", all(r.skipped for r in results), manifest)


def format_mix_plan(
    catalog: Catalog, mix: CorpusEntry, recipe: str | os.PathLike[str] | None,
    overrides: dict[str, Any],
) -> str:
    """``build --dry-run`` for a mixture: each component's plan, then the mixing."""
    from corpuskit.recipe import format_plan, resolve

    assert isinstance(mix.source, MixSource)
    components = resolve_components(catalog, mix)
    config = resolve(mix, recipe, overrides)
    lines = [f"{mix.name}: mixture of {len(components)} components"]
    for c in components:
        amount = (f"weight {c.spec.weight:g}" if c.spec.weight is not None
                  else f"{c.spec.tokens:,} train tokens")
        lines.append(f"  component {c.key} ({amount}):")
        plan = format_plan(c.entry, resolve(c.entry, recipe, overrides))
        lines += ["    " + line for line in plan.splitlines()[1:] if "tokenize" not in line]
    total = (f"{mix.source.train_tokens:,}" if mix.source.train_tokens
             else "the components' train tokens together")
    lines.append(f"  tokenize     {config.tokenizer} for all components (trained on their train "
                 "text, sampled by weight)")
    lines.append(f"  train        {total}, each component resampled to its share; val/test kept "
                 "per component")
    return "\n".join(lines)


def refuse_mixture(build_dir: Path, what: str) -> None:
    """A one-line error for steps that need a corpus's clean documents, which a mixture build
    does not have (its components' clean artifacts do)."""
    try:
        meta = json.loads((build_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not readable here: the step's own checks say so
    if isinstance(meta, dict) and meta.get("components") and meta.get("clean_fingerprint") is None:
        names = ", ".join(meta["components"])
        raise CorpuskitError(
            f"{build_dir} is a mixture build: {what} needs a corpus's cleaned documents, which "
            f"a mixture keeps in its components ({names}); run it on each component instead"
        )
