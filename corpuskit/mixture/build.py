"""A mixture's token artifact: components cleaned, one tokenizer, packed, assembled under a
lock in a staging folder, ``meta.json``, manifest last, ``LATEST``."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from corpuskit.catalog import Catalog, CorpusEntry
from corpuskit.catalog_mix import MixSource
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor, make_executor
from corpuskit.fetch import artifact_lock, fetch_entry
from corpuskit.mixture.components import CleanComponent, resolve_components
from corpuskit.mixture.files import (
    HELD_OUT,
    SHARE_TOLERANCE,
    write_held_out,
    write_train_split,
)
from corpuskit.mixture.sampling import sample_fractions, weights
from corpuskit.paths import raw_dir, tokens_root
from corpuskit.shards import (
    existing_manifest,
    new_manifest,
    remove_stale_siblings,
    reusable,
    staging_dir,
    write_manifest,
)


def build_mix_entry(
    catalog: Catalog,
    mix: CorpusEntry,
    root: Path,
    *,
    recipe: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    force: bool = False,
    fetch_missing: bool = True,
) -> Any:
    """``api.build`` for a mixture: the mixture's recipe (with ``recipe`` and ``overrides``)
    decides the tokenizer; each component is cleaned with its own recipe plus the same
    ``recipe`` file and ``overrides`` (so ``--workers`` or ``--val-fraction`` reach them too).
    Every config is resolved before anything is fetched: a typo costs no download."""
    from corpuskit.recipe import resolve

    components = resolve_components(catalog, mix)
    mix_config = resolve(mix, recipe, overrides)
    configs = {c.key: resolve(c.entry, recipe, overrides) for c in components}
    return build_mix(catalog, mix, root, mix_config, configs, progress=progress, force=force,
                     fetch_missing=fetch_missing)


def build_mix(
    catalog: Catalog, mix: CorpusEntry, root: Path, mix_config: Any,
    component_configs: dict[str, Any], *, progress: bool = True, force: bool = False,
    fetch_missing: bool = True,
) -> Any:
    """Build a mixture's token artifact (``corpuskit/mixture/__init__.py``); returns a
    ``BuildResult`` whose ``clean_dir`` is the token build itself (a mixture has no clean
    artifact of its own: its ``clean_manifest`` names the components' clean fingerprints)."""
    from corpuskit.build import BuildResult, build_clean

    components = resolve_components(catalog, mix)
    with make_executor(mix_config.executor, workers=mix_config.workers,
                       address=mix_config.address) as executor:
        cleans = []
        for c in components:
            if fetch_missing and existing_manifest(raw_dir(root, c.entry.name)) is None:
                fetch_entry(c.entry, root, progress=progress)
            path, manifest, _ = build_clean(
                c.entry, root, component_configs[c.key], progress=progress, executor=executor,
                force=force,
            )
            for split in ("train", "val"):
                if not manifest["splits"].get(split, {}).get("documents"):
                    raise CorpuskitError(
                        f"mix {mix.name!r}: component {c.key!r} has no {split} documents after "
                        "cleaning; raise its val_fraction or check its source"
                    )
            cleans.append(CleanComponent(c, path, manifest))
        target, meta, skipped = _build_tokens(
            mix, root, cleans, mix_config, executor, progress=progress, force=force
        )
    clean_manifest = {
        "fingerprint": None,
        "stats": {},
        "components": {c.key: c.manifest["fingerprint"] for c in cleans},
    }
    return BuildResult(mix.name, target, target, skipped, skipped, clean_manifest, meta)


def _identity(
    mix: CorpusEntry, cleans: list[CleanComponent], config: Any
) -> tuple[dict[str, Any], Any, dict[str, float]]:
    """The build's identity (its fingerprint names the folder), the tokenizer spec, and the
    share of each component's train lines the tokenizer is trained on."""
    from corpuskit.tokenizers import parse_spec

    assert isinstance(mix.source, MixSource)
    spec = parse_spec(config.tokenizer)
    keep = sample_fractions(
        spec.kind, weights(mix.source), {c.key: c.train_bytes for c in cleans},
        int(config.sentence_budget_bytes or 0),
    )
    tok_config: dict[str, Any] = {
        "mixture": mix.source.model_dump(mode="json"),
        "tokenizer": spec.text,
        "seed": config.seed,
        "sentence_budget": config.sentence_budget,
        "sentence_sample": keep,
        "bos": config.bos,
    }
    if spec.path is not None:
        tok_config["tokenizer_sha256"] = hashlib.sha256(spec.path.read_bytes()).hexdigest()
    inputs = {c.key: c.manifest["fingerprint"] for c in cleans}
    return new_manifest("tokens", mix.name, inputs=inputs, config=tok_config), spec, keep


def _build_tokens(
    mix: CorpusEntry, root: Path, cleans: list[CleanComponent], config: Any,
    executor: Executor, *, progress: bool, force: bool,
) -> tuple[Path, dict[str, Any], bool]:
    identity, spec, keep = _identity(mix, cleans, config)
    target = tokens_root(root, mix.name) / identity["fingerprint"]
    if not force and _reusable(target, mix.name):
        return _reuse(target)
    with artifact_lock(target):
        # Another process may have built it while this one waited for the lock.
        if not force and _reusable(target, mix.name, warn=False):
            return _reuse(target)
        meta = _assemble(mix, cleans, config, executor, identity, spec, keep, target, progress)
    _point_latest(target)
    return target, meta, False


def _reusable(target: Path, name: str, warn: bool = True) -> bool:
    """A complete build at ``target`` whose recorded files are all there, of their size."""
    current = existing_manifest(target)
    return current is not None and reusable(target, current, f"building {name} again", warn=warn)


def _reuse(target: Path) -> tuple[Path, dict[str, Any], bool]:
    from corpuskit.pack import read_meta

    _point_latest(target)
    return target, read_meta(target), True


def _point_latest(target: Path) -> None:
    """``tokens/<mix>/LATEST`` names the newest build (as ``encode`` does for a corpus)."""
    latest = target.parent / "LATEST"
    remove_stale_siblings(latest)
    tmp = latest.with_name(f".LATEST.tmp-{os.getpid()}")
    tmp.write_text(target.name + "\n", encoding="utf-8")
    os.replace(tmp, latest)


def _assemble(
    mix: CorpusEntry, cleans: list[CleanComponent], config: Any, executor: Executor,
    identity: dict[str, Any], spec: Any, keep: dict[str, float], target: Path, progress: bool,
) -> dict[str, Any]:
    """Tokenizer, per-component packing and the mixture's files, in a staging folder."""
    from corpuskit.encode import pack_splits
    from corpuskit.hf_tokenizer import write_hf_tokenizer
    from corpuskit.pack import dtype_for, write_meta
    from corpuskit.tokenizer_training import TrainingSample, train_on_sample

    assert isinstance(mix.source, MixSource)
    with staging_dir(target) as tmp:
        sample = TrainingSample(
            tuple((str(c.path), keep[c.key]) for c in cleans),
            config.seed,
            sum(int(c.manifest["splits"].get("train", {}).get("bytes", 0) * keep[c.key])
                for c in cleans),
        )
        tokenizer = train_on_sample(spec, sample, sentence_budget=config.sentence_budget)
        if config.bos and tokenizer.bos_id is None:
            raise CorpuskitError(f"--bos needs a tokenizer with a BOS token; {spec.text!r} has "
                                 "none")
        dtype = dtype_for(tokenizer.vocab_size)
        tokenizer_info = tokenizer.save(tmp)
        write_hf_tokenizer(tokenizer, tmp, bos=config.bos)
        parts, counts = [], []
        for c in cleans:
            part = tmp / "_components" / c.key
            part.mkdir(parents=True)
            splits = [s for s in ("train", *HELD_OUT) if c.manifest["splits"].get(s)]
            counts.append(pack_splits(c.path, splits, tokenizer, tokenizer_info, part, executor,
                                      bos=config.bos, progress=progress))
            parts.append(part)
        train, components = write_train_split(mix.name, mix.source, cleans, parts, counts, dtype,
                                              tokenizer.eos_id, config.seed, tmp)
        splits_meta = {"train": train, **write_held_out(cleans, parts, counts, tmp)}
        shutil.rmtree(tmp / "_components")
        meta = {
            "format_version": 1, "corpus": mix.name, "fingerprint": identity["fingerprint"],
            "clean_fingerprint": None, "tokenizer": tokenizer_info,
            "vocab_size": tokenizer.vocab_size, "dtype": dtype.name,
            "eos_id": tokenizer.eos_id, "bos_id": tokenizer.bos_id, "bos": config.bos,
            "unk_id": tokenizer.unk_id, "splits": splits_meta, "components": components,
            "mixture": {"train_tokens": train["tokens"], "share_tolerance": SHARE_TOLERANCE},
            "idx": "uint64 offsets of document starts plus the total; doc i = bin[idx[i]:idx[i+1]]"
            " = [BOS if bos] + ids + [EOS]; in a mixture's train split the last document taken "
            "from a component may be cut to honour its share, still followed by EOS",
        }
        write_meta(tmp, meta)
        write_manifest(tmp, {**identity, "splits": splits_meta, "components": components})
    return meta
