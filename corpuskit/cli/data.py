"""Commands that make data: ``fetch`` (a corpus into raw shards) and ``build`` (clean, filter,
deduplicate, tokenize, pack)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import click

from corpuskit import api
from corpuskit.artifacts import bytes_per_token
from corpuskit.cli.base import (
    Context,
    cli,
    complete_corpus,
    human_bytes,
    pass_ctx,
    say_remote,
    stack_options,
)
from corpuskit.cli.build_options import build_options


def _fetch_options() -> list[Callable[[Any], Any]]:
    """``fetch``'s options, in the order ``--help`` lists them."""
    return [
        click.option("--force", is_flag=True, help="Fetch again even if up to date."),
        click.option(
            "--mirror",
            envvar="CORPUSKIT_MIRROR",
            help="Base URL tried first for every file (also $CORPUSKIT_MIRROR).",
        ),
        click.option(
            "--split", "splits", multiple=True, help="Fetch only this split (repeatable)."
        ),
        click.option(
            "--executor",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="Where files are read and converted (many-file sources): processes or Ray tasks.",
        ),
        click.option(
            "--workers",
            type=int,
            help="Reading tasks at once [local: 1, this process; ray: all CPUs].",
        ),
        click.option(
            "--address", help="Ray cluster to join with --executor ray ('auto' or HOST:PORT)."
        ),
        click.option(
            "--max-bytes",
            help="Slice: keep documents, in order, up to this much text (2GB, 200MB, 1.5GiB); "
            "parquet on the Hub is read only as far as needed.",
        ),
        click.option("--max-documents", type=int, help="Slice: keep the first N documents."),
        click.option(
            "--max-files", type=int, help="Slice: read the first N files (sorted by path)."
        ),
        click.option(
            "--subset", help="Fetch one subset of the entry (`corpuskit info NAME` lists them)."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]


@cli.command()
@click.argument("name", shell_complete=complete_corpus)
@stack_options(_fetch_options())
@pass_ctx
def fetch(
    c: Context,
    name: str,
    force: bool,
    mirror: str | None,
    splits: tuple[str, ...],
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    max_bytes: str | None = None,
    max_documents: int | None = None,
    max_files: int | None = None,
    subset: str | None = None,
    as_json: bool = False,
) -> None:
    """Fetch corpus NAME into Arrow shards under <data>/raw/NAME/.

    Sources made of many files (folders, downloads, GitHub and Kaggle archives) are read in
    groups of files by --workers processes or Ray tasks; the shards are the same either way.
    A slice (--max-bytes, --max-documents, --max-files, --subset, or NAME@max-bytes=2GB) is
    its own artifact, <data>/raw/NAME@<slice>/, that `build NAME@<slice>` reads.
    """
    started = time.perf_counter()
    result = api.fetch(
        name,
        data_dir=c.data_dir,
        force=force,
        progress=not c.quiet,
        catalog=c.catalog,
        mirror=mirror,
        splits=splits or None,
        executor=executor,
        workers=workers,
        address=address,
        max_bytes=max_bytes,
        max_documents=max_documents,
        max_files=max_files,
        subset=subset,
    )
    logging.getLogger("corpuskit.cli").info("fetch %s: %.2fs", name, time.perf_counter() - started)
    if as_json:
        click.echo(json.dumps(_fetch_json(result), indent=2, default=str))
        return
    _print_fetch(result)
    say_remote(c.data_dir)


def _print_fetch(result: Any) -> None:
    """What ``fetch`` prints: the shards written (or found up to date), the slice's transfer
    cost, and the documents skipped by reason."""
    state = "up to date, nothing to do" if result.skipped else "fetched"
    click.echo(
        f"{result.corpus}: {state}: {result.documents:,} documents, "
        f"{human_bytes(result.bytes)}, {len(result.manifest['shards'])} shard(s) in {result.path}"
    )
    sliced = result.manifest.get("slice") or {}
    if "transferred_bytes" in sliced:
        click.echo(
            f"  slice {sliced['label']}: {human_bytes(sliced['transferred_bytes'])} transferred "
            f"for {human_bytes(sliced['bytes'])} of text "
            f"({sliced['transferred_per_slice_byte']:.2f} bytes per byte kept)"
        )
    skipped = result.manifest.get("skipped") or {}
    if skipped:
        click.echo(f"  skipped: {', '.join(f'{k}={v}' for k, v in skipped.items())}")


@cli.command()
@click.argument("name", shell_complete=complete_corpus)
@stack_options(build_options())
@pass_ctx
def build(
    c: Context,
    name: str,
    recipe: str | None,
    sets: tuple[str, ...],
    dry_run: bool,
    languages: tuple[str, ...],
    as_json: bool = False,
    force: bool = False,
    **options: Any,
) -> None:
    """Clean, filter, deduplicate, tokenize and pack corpus NAME (fetching it first if needed)."""
    from corpuskit.recipe import parse_sets

    if languages:
        options["languages"] = languages
    settings = parse_sets(sets)
    if dry_run:
        click.echo(
            api.build_plan(name, catalog=c.catalog, recipe=recipe, settings=settings, **options)
        )
        return
    started = time.perf_counter()
    result = api.build(
        name,
        data_dir=c.data_dir,
        progress=not c.quiet,
        catalog=c.catalog,
        recipe=recipe,
        settings=settings,
        force=force,
        **options,
    )
    _log_build(result, time.perf_counter() - started)
    if as_json:
        click.echo(json.dumps(_build_json(result), indent=2, default=str))
        return
    if result.skipped:
        click.echo(f"{name}: build up to date, nothing to do: {result.tokens_dir}")
    else:
        click.echo(f"{name}: built {result.tokens_dir}")
    say_remote(c.data_dir)
    _print_build_summary(result)


def _print_build_summary(result: Any) -> None:
    """What ``build`` prints: phase-1 reuse, each stage's counts, the packed splits."""
    phase1 = getattr(result, "phase1", None)
    if phase1:
        partly = phase1.get("partly_reused", 0)
        computed = phase1["shards"] - phase1["reused"] - partly
        click.echo(
            f"  phase 1      {phase1['shards']:>8,} shards: {phase1['reused']:,} reused, "
            f"{partly:,} partly reused, {computed:,} computed (clean+filter cache)"
        )
    stats = result.clean_manifest["stats"]
    for stage, st in stats.items():
        dropped = ", ".join(f"{k}={v}" for k, v in st["dropped"].items()) or "none dropped"
        changed = f", {st['changed']} changed" if st.get("changed") else ""
        clusters = f", {st['clusters']} clusters" if st.get("clusters") else ""
        click.echo(
            f"  {stage:<13} {st['documents_in']:>8,} -> {st['documents_out']:>8,} docs"
            f"{changed}{clusters}; {dropped}"
        )
    meta = result.meta
    click.echo(
        f"  tokenizer    {meta['tokenizer']['spec']} (vocab {meta['vocab_size']:,}, "
        f"{meta['dtype']})"
    )
    for split, s in meta["splits"].items():
        bpt = bytes_per_token(s, bool(meta.get("bos")))
        click.echo(
            f"  {split:<12} {s['documents']:>8,} docs {s['tokens']:>12,} tokens "
            f"({bpt:.2f} bytes/token)"
        )


def _fetch_json(result: Any) -> dict[str, Any]:
    """``fetch --json``: where the shards are and what they hold."""
    manifest = result.manifest
    return {
        "corpus": result.corpus,
        "path": str(result.path),
        "skipped": result.skipped,
        "fingerprint": manifest.get("fingerprint"),
        "documents": result.documents,
        "bytes": result.bytes,
        "shards": len(manifest.get("shards") or []),
        "splits": manifest.get("splits"),
        "skipped_documents": manifest.get("skipped") or {},
        "resolved": manifest.get("resolved"),
        "slice": manifest.get("slice"),
    }


def _build_json(result: Any) -> dict[str, Any]:
    """``build --json``: the artifacts, per-stage statistics and packed splits."""
    meta = result.meta
    splits = {
        split: {**s, "bytes_per_token": bytes_per_token(s, bool(meta.get("bos")))}
        for split, s in meta["splits"].items()
    }
    return {
        "corpus": result.corpus,
        "skipped": result.skipped,
        "clean_skipped": result.clean_skipped,
        "tokens_skipped": result.tokens_skipped,
        "phase1": getattr(result, "phase1", None),
        "clean_dir": str(result.clean_dir),
        "tokens_dir": str(result.tokens_dir),
        "clean_fingerprint": result.clean_manifest.get("fingerprint"),
        "tokens_fingerprint": meta.get("fingerprint"),
        "stats": result.clean_manifest.get("stats", {}),
        "tokenizer": meta["tokenizer"].get("spec"),
        "vocab_size": meta["vocab_size"],
        "dtype": meta["dtype"],
        "splits": splits,
    }


def _log_build(result: Any, seconds: float) -> None:
    """``--verbose``: the build's wall time and, per stage, what went in and out (and the
    stage's own time when the build recorded one)."""
    log = logging.getLogger("corpuskit.cli")
    log.info(
        "build %s: %.2fs (clean %s, tokens %s)",
        result.corpus,
        seconds,
        "reused" if result.clean_skipped else "built",
        "reused" if result.tokens_skipped else "built",
    )
    for stage, st in (result.clean_manifest.get("stats") or {}).items():
        took = f", {st['seconds']:.2f}s" if isinstance(st.get("seconds"), (int, float)) else ""
        log.info(
            "  stage %s: %s -> %s documents, %s -> %s bytes%s",
            stage,
            st.get("documents_in"),
            st.get("documents_out"),
            st.get("bytes_in"),
            st.get("bytes_out"),
            took,
        )
