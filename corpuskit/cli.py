"""The ``corpuskit`` command line: parse, call ``corpuskit.api``, print. Nothing else lives here.

Exit codes: 0 success, 1 a user error (one line on stderr, no traceback), 2 bad usage (click),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import click
from click.shell_completion import CompletionItem

from corpuskit import __version__, api
from corpuskit.artifacts import bytes_per_token
from corpuskit.errors import CorpuskitError


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        click.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


class Context:
    def __init__(
        self, data_dir: str | None, catalog: tuple[str, ...], quiet: bool, verbose: bool = False
    ):
        self.data_dir = data_dir
        self.catalog = catalog
        self.quiet = quiet
        self.verbose = verbose

    def say(self, message: str) -> None:
        if not self.quiet:
            click.echo(message)


pass_ctx = click.make_pass_decorator(Context)


def _complete_corpus(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of corpus names from the catalog (with any --catalog given so far)."""
    try:
        catalog = ctx.find_root().params.get("catalog") or ()
        names = [e.name for e in api.load_catalog(catalog)]
    except Exception:  # a broken catalog must not break the user's shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corpuskit")
@click.option(
    "--data-dir",
    envvar="CORPUSKIT_HOME",
    type=click.Path(file_okay=False),
    help="Data root (default ./data, or $CORPUSKIT_HOME); fetch and build also take an "
    "object-store URL (s3://...), worked on through a local mirror.",
)
@click.option(
    "--catalog",
    "catalog",
    multiple=True,
    type=click.Path(),
    help="Extra catalog YAML file or folder (repeatable; also $CORPUSKIT_CATALOG).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, only results and errors.")
@click.option(
    "-v", "--verbose", is_flag=True, help="More detail on stderr: steps, timings, decisions."
)
@click.pass_context
def cli(
    ctx: click.Context, data_dir: str | None, catalog: tuple[str, ...], quiet: bool, verbose: bool
) -> None:
    """corpuskit: from an open corpus to a trained language model and its perplexity."""
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
    _setup_logging(verbose)
    ctx.obj = Context(data_dir, catalog, quiet, verbose)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: bool) -> None:
    """``--verbose`` shows the ``corpuskit.*`` loggers' INFO records (timings, decisions) on
    stderr; otherwise only warnings. stdout stays for results, so ``--json`` output is clean."""
    logger = logging.getLogger("corpuskit")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


@cli.command("list")
@click.option("--language", "languages", multiple=True,
              help="Only corpora offering this language, e.g. en, de, python (repeatable: any).")
@click.option("--domain", "domains", multiple=True,
              help="Only corpora of this domain, e.g. web, code, math (repeatable: any).")
@click.option("--source", help="Only this source type: local, http, hf, kaggle, github, mix.")
@click.option("--license", "license_",
              help="A family (permissive, copyleft, noncommercial, unknown) or text in the id.")
@click.option("--min-tokens", help="At least this many tokens, e.g. 2B (unknown counts left out).")
@click.option("--max-tokens", help="At most this many tokens, e.g. 500M (unknown counts left out).")
@click.option("--gated/--no-gated", default=None, help="Only gated (or only ungated) datasets.")
@click.option("--sort", type=click.Choice(["name", "size", "tokens"]), default="name",
              show_default=True, help="Order; size and tokens: largest first, unknown last.")
@click.option("--max-size", type=int, help="Only corpora of at most this many bytes.")
@click.option("--search", help="Free text searched in names, titles, descriptions.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table of the matching entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def list_cmd(c: Context, languages, domains, source, license_, min_tokens, max_tokens, gated,
             sort, max_size, search, markdown, as_json) -> None:
    """List the corpora in the catalog, filtered and sorted (`corpuskit suggest` ranks them)."""
    from corpuskit.catalog_view import list_row
    from corpuskit.choose import markdown_table

    entries = api.list_corpora(
        c.catalog, language=languages, domain=domains, source=source, license=license_,
        max_size=max_size, min_tokens=min_tokens, max_tokens=max_tokens, gated=gated,
        search=search, sort=sort,
    )
    if as_json:
        click.echo(json.dumps([e.summary() for e in entries], indent=2))
        return
    if markdown:
        click.echo(markdown_table(entries), nl=False)
        return
    columns = ["name", "source", "languages", "domain", "size", "license"]
    if sort == "tokens" or min_tokens or max_tokens:
        columns.insert(5, "tokens")
    print_table([list_row(e, human_bytes) for e in entries], columns)


@cli.command()
@click.option("--language", "languages", multiple=True,
              help="Wanted language, e.g. de (repeatable: any of them).")
@click.option("--domain", "domains", multiple=True,
              help="Wanted domain, e.g. web, code, math (repeatable: any of them).")
@click.option("--tokens", help="Token budget for training, e.g. 2B or 500M.")
@click.option("--license", "license_",
              help="A family (permissive, copyleft, noncommercial, unknown) or text in the id.")
@click.option("--gated/--no-gated", default=None, help="Only gated (or only ungated) datasets.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Show at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def suggest(c: Context, languages, domains, tokens, license_, gated, limit, as_json) -> None:
    """Rank the corpora that fit: why each one (size vs budget, quality processing, license),
    and the fetch command for it."""
    found = api.suggest(language=languages, domain=domains, tokens=tokens, license=license_,
                        gated=gated, limit=limit, catalog=c.catalog)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in found], indent=2))
        return
    if not found:
        raise CorpuskitError(
            "no catalog entry fits; loosen a constraint (`corpuskit list` with the same "
            "--language/--domain/--license shows what each one allows)"
        )
    for i, s in enumerate(found, 1):
        click.echo(f"{i:>2}. {s.line()}")


def _say_remote(data_dir: str | None) -> None:
    """With an object-store data root the paths printed are the local mirror's: say so."""
    from corpuskit.remote import remote_url

    url = remote_url(data_dir)
    if url is not None:
        click.echo(f"  (a local mirror of {url}; its artifacts were pushed there)")


@cli.command()
@click.argument("name", shell_complete=_complete_corpus)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def info(c: Context, name: str, as_json: bool) -> None:
    """Show everything known about corpus NAME (each fact with its source), its subsets, and
    what is on disk for it."""
    from corpuskit.catalog_view import disk_lines, info_lines

    data = api.info(name, data_dir=c.data_dir, catalog=c.catalog)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for line in info_lines(data, human_bytes) + disk_lines(data["local"], name, human_bytes):
        click.echo(line)


@cli.command()
@click.argument("name", shell_complete=_complete_corpus)
@click.option("--force", is_flag=True, help="Fetch again even if up to date.")
@click.option(
    "--mirror",
    envvar="CORPUSKIT_MIRROR",
    help="Base URL tried first for every file (also $CORPUSKIT_MIRROR).",
)
@click.option("--split", "splits", multiple=True, help="Fetch only this split (repeatable).")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where files are read and converted (many-file sources): processes or Ray tasks.",
)
@click.option(
    "--workers", type=int, help="Reading tasks at once [local: 1, this process; ray: all CPUs]."
)
@click.option("--address", help="Ray cluster to join with --executor ray ('auto' or HOST:PORT).")
@click.option(
    "--max-bytes",
    help="Slice: keep documents, in order, up to this much text (2GB, 200MB, 1.5GiB); "
    "parquet on the Hub is read only as far as needed.",
)
@click.option("--max-documents", type=int, help="Slice: keep the first N documents.")
@click.option("--max-files", type=int, help="Slice: read the first N files (sorted by path).")
@click.option("--subset", help="Fetch one subset of the entry (`corpuskit info NAME` lists them).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
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
    _say_remote(c.data_dir)


@cli.command()
@click.argument("name", shell_complete=_complete_corpus)
@click.option(
    "--tokenizer",
    help="spm-bpe:N, spm-unigram:N, word[:N], char, byte, a sentencepiece .model file or "
    "hf:tokenizer.json [default: spm-bpe:4096].",
)
@click.option(
    "--val-fraction",
    type=float,
    help="Share of documents for validation when the source has no splits [0.05].",
)
@click.option("--test-fraction", type=float, help="Share for a test split likewise [0].")
@click.option(
    "--normalization",
    type=click.Choice(["NFC", "NFKC", "none"]),
    help="Unicode normalization [NFC].",
)
@click.option(
    "--code/--prose",
    default=None,
    help="Clean as code (keep indentation) or prose [from the catalog's domains].",
)
@click.option("--min-chars", type=int, help="Drop documents shorter than this [1].")
@click.option("--max-chars", type=int, help="Drop documents longer than this [no limit].")
@click.option("--dedup/--no-dedup", default=None, help="Exact-duplicate removal [on].")
@click.option("--seed", type=int, help="Seed for splits and tokenizer sampling [0].")
@click.option("--sentence-budget", type=int, help="Lines sampled to train sentencepiece [1000000].")
@click.option(
    "--sentence-budget-bytes",
    type=int,
    help="Train-text bytes sentencepiece may see; larger train splits are hash-sampled [1e8].",
)
@click.option(
    "--keep-whitespace",
    "whitespace",
    flag_value="keep",
    default=None,
    help="Leave spaces and blank lines exactly as they are (classic WikiText) [normalize].",
)
@click.option("--bos/--no-bos", default=None, help="Lead every document with BOS [off].")
@click.option("--workers", type=int, help="Worker processes and threads [all cores].")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Where per-shard work runs: local processes or Ray tasks; same output [local].",
)
@click.option(
    "--address",
    help="Ray cluster to join with --executor ray ('auto' or HOST:PORT) [a private local one].",
)
@click.option(
    "--cache/--no-cache",
    default=None,
    help="Reuse and keep per-shard clean+filter output in DATA/cache; same output [on].",
)
@click.option("--fix-mojibake/--no-fix-mojibake", default=None, help="Repair mojibake [on].")
@click.option("--html/--no-html", default=None, help="Extract text from HTML documents [off].")
@click.option(
    "--wikitext/--no-wikitext", default=None, help="Undo WikiText tokenization (@-@ etc.) [off]."
)
@click.option(
    "--quality/--no-quality",
    default=None,
    help="Gopher quality heuristics (code: line-length and alphanumeric checks) [off].",
)
@click.option("--repetition/--no-repetition", default=None, help="Gopher repetition filter [off].")
@click.option(
    "--language",
    "languages",
    multiple=True,
    help="Keep only documents in this language (repeatable; py3langid) [no filter].",
)
@click.option("--near-dedup/--no-near-dedup", default=None, help="MinHash-LSH near-dups [off].")
@click.option("--minhash-threshold", type=float, help="Near-duplicate Jaccard threshold [0.8].")
@click.option(
    "--paragraph-dedup",
    type=click.Choice(["off", "paragraphs", "lines"]),
    help="Remove paragraphs (or lines) repeated across the corpus, keep the first copy [off].",
)
@click.option(
    "--stopwords",
    type=click.Choice(["off", "filter", "remove"]),
    help="Drop documents with too few stopwords, or remove stopwords [off].",
)
@click.option("--stopwords-language", help="Stopword list language [the corpus's language].")
@click.option(
    "--decontaminate",
    type=click.Choice(["off", "drop", "mark"]),
    help="Training documents sharing an n-gram with val/test [off].",
)
@click.option("--decontaminate-ngram", type=int, help="N-gram length for decontamination [13].")
@click.option(
    "--recipe",
    type=click.Path(dir_okay=False),
    help="YAML recipe of build options (see docs/build-stages.md).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any build option, e.g. --set min_words=20 (repeatable; value is YAML).",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved plan and exit.")
@click.option(
    "--force",
    is_flag=True,
    help="Rebuild the clean and token artifacts from scratch, ignoring the cache; the old ones "
    "stay until the new ones are complete.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
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
    _say_remote(c.data_dir)
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


def _metric(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_metrics(ev: dict[str, Any]) -> None:
    """Held-out metrics of a run, one line per split."""
    for split in ("val", "test"):
        m = ev.get(split)
        if m:
            click.echo(
                f"  {split:<5} loss {_metric(m.get('loss'), '.4f')}  "
                f"perplexity {_metric(m.get('perplexity'), '.2f')}  "
                f"accuracy {_metric(m.get('accuracy'), '.3f')}  "
                f"bits/byte {_metric(m.get('bits_per_byte'), '.3f')}"
            )


@cli.command()
@click.argument("corpus", required=False)
@click.option(
    "--model",
    default="gpt",
    show_default=True,
    type=click.Choice(["gpt", "lstm", "fnn", "ngram"]),
    help="Model family.",
)
@click.option(
    "--preset",
    default="tiny",
    show_default=True,
    help="Preset: gpt tiny|small|gpt2-124m, lstm small|medium, fnn small|medium, "
    "ngram trigram|5gram.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML training config (overrides the preset).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one setting, e.g. --set max_steps=500 (repeatable).",
)
@click.option("--max-steps", type=int, help="Shorthand for --set max_steps=N.")
@click.option("--max-tokens", type=int, help="Shorthand for --set max_tokens=N (training tokens).")
@click.option("--epochs", type=float, help="Shorthand for --set epochs=N (passes over train).")
@click.option("--device", help="auto, cpu or cuda (shorthand for --set device=...).")
@click.option("--seed", type=int, help="Shorthand for --set seed=N.")
@click.option("--threads", type=int, help="CPU threads for torch (shorthand for --set threads=N).")
@click.option("--run-name", help="Run folder name under <data>/runs [corpus-model-preset].")
@click.option("--resume", metavar="RUN", help="Continue an interrupted run (name, folder, latest).")
@click.option("--init", "init", metavar="PATH", type=click.Path(exists=True, file_okay=False),
              help="Start a gpt run from a transformers GPT-2 folder (build with its tokenizer).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def train(
    c: Context,
    corpus: str | None,
    model: str,
    preset: str,
    config_file: str | None,
    overrides: tuple[str, ...],
    max_steps: int | None,
    max_tokens: int | None,
    epochs: float | None,
    device: str | None,
    seed: int | None,
    threads: int | None,
    run_name: str | None,
    resume: str | None,
    init: str | None,
    as_json: bool,
) -> None:
    """Train a language model on CORPUS's newest token build (or a build folder)."""
    sets = list(overrides)
    shorthands = (
        ("max_steps", max_steps),
        ("max_tokens", max_tokens),
        ("epochs", epochs),
        ("device", device),
        ("seed", seed),
        ("threads", threads),
    )
    sets += [f"{key}={value}" for key, value in shorthands if value is not None]
    from corpuskit.train.session import TrainingTerminated

    try:
        result = api.train(
            corpus,
            model=model,
            preset=preset,
            data_dir=c.data_dir,
            run_name=run_name,
            config_file=config_file,
            overrides=sets,
            resume=resume,
            progress=not c.quiet and not as_json,
            log=c.say if not as_json else (lambda _m: None),
            init=init,
        )
    except TrainingTerminated:
        # SIGTERM (a scheduler, `docker stop`): the checkpoint is saved; exit as a shell would.
        click.echo("terminated", err=True)
        sys.exit(143)
    ev = result.eval
    if as_json:
        click.echo(json.dumps({"run": str(result.run_dir), **ev}, indent=2, default=str))
        return
    click.echo(f"run {result.run_dir.name} saved in {result.run_dir}")
    if ev.get("initial_val_loss") is not None:
        click.echo(f"  val loss before training {ev['initial_val_loss']:.4f}")
    print_metrics(ev)


@cli.command("eval")
@click.argument("run")
@click.option("--split", default="val", show_default=True, help="val, test or train.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--hf-model", metavar="PATH", type=click.Path(exists=True, file_okay=False),
              help="Evaluate this transformers causal LM instead; RUN then names a build.")
@click.option("--stride", type=int, help="With --hf-model: sliding-window stride [context/2].")
@pass_ctx
def eval_cmd(c: Context, run: str, split: str, as_json: bool, hf_model: str | None,
             stride: int | None) -> None:
    """Evaluate RUN (a run name, folder or 'latest') on a split of its build; with
    --hf-model, a transformers model on a split of the build RUN names."""
    if hf_model is not None:
        metrics = api.evaluate_hf(hf_model, run, split, data_dir=c.data_dir, stride=stride,
                                  progress=not c.quiet and not as_json)
        if not as_json:
            click.echo(f"{hf_model} on {split} of {run} (context {metrics['context']}, "
                       f"stride {metrics['stride']}):")
            print_metrics({"val": metrics})
            if "word_perplexity" in metrics:
                click.echo(f"  word-level perplexity {metrics['word_perplexity']:.2f} "
                           f"({metrics['words']:,} words)")
            click.echo(f"  kept as {metrics['run']} (`corpuskit compare` lists it)")
            return
    else:
        metrics = api.evaluate(run, split, data_dir=c.data_dir,
                               progress=not c.quiet and not as_json)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    click.echo(f"{run} on {split}:")
    print_metrics(
        {"val" if split == "val" else "test": metrics} if split != "train" else {"val": metrics}
    )


@cli.command()
@click.argument("runs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def compare(c: Context, runs: tuple[str, ...], as_json: bool) -> None:
    """Compare RUNS (default: every run) by held-out loss and perplexity, best first."""
    rows = api.compare(list(runs), data_dir=c.data_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        if r["status"] == "damaged":
            click.echo(f"warning: run {r['run']}: {r['error']}", err=True)
    table = []
    for r in rows:
        table.append(
            {
                "run": r["run"],
                "model": r["model"] or "",
                "preset": r["preset"] or "",
                "params": f"{r['params']:,}" if r.get("params") else "",
                "steps": r.get("steps") or "",
                "val_loss": _metric(r.get("val_loss"), ".4f"),
                "val_ppl": _metric(r.get("val_perplexity"), ".2f"),
                "test_ppl": _metric(r.get("test_perplexity"), ".2f"),
                "bits/byte": _metric(r.get("val_bits_per_byte"), ".3f"),
                "status": r["status"],
            }
        )
    print_table(
        table,
        [
            "run",
            "model",
            "preset",
            "params",
            "steps",
            "val_loss",
            "val_ppl",
            "test_ppl",
            "bits/byte",
            "status",
        ],
    )


@cli.command()
@click.argument("run")
@click.option("--prompt", default="", help="Text to continue.")
@click.option("--max-new-tokens", default=200, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float)
@click.option("--top-k", default=50, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@pass_ctx
def sample(
    c: Context,
    run: str,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    seed: int,
) -> None:
    """Generate text from RUN (a run name, a run folder, or 'latest')."""
    text = api.sample(
        run,
        prompt,
        data_dir=c.data_dir,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )
    click.echo(text)


@cli.command("inspect")
@click.argument("build")
@click.option("--samples", default=3, show_default=True, help="Documents to decode and show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def inspect_cmd(c: Context, build: str, samples: int, as_json: bool) -> None:
    """Show what is in BUILD (a corpus name for its newest build, or a build folder)."""
    report = api.inspect(build, data_dir=c.data_dir, samples=samples)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    click.echo(f"{report['build']}")
    click.echo(
        f"  corpus {report['corpus']}, tokenizer {report['tokenizer']} "
        f"(vocab {report['vocab_size']:,}, {report['dtype']})"
    )
    for split, s in report["splits"].items():
        bpt = f"{s['bytes_per_token']:.2f}" if s["bytes_per_token"] else "?"
        click.echo(
            f"  {split}: {s['documents']:,} documents, {s['tokens']:,} tokens, "
            f"{bpt} bytes/token, unknown {100 * s['unknown_rate']:.3f}%, "
            f"mean {s['mean_document_tokens']:.0f} tokens/document"
        )
        peak = max((b["documents"] for b in s["length_histogram"]), default=1) or 1
        for b in s["length_histogram"]:
            bar = "#" * round(30 * b["documents"] / peak)
            click.echo(f"    {b['from']:>8,}-{b['to']:<8,} {b['documents']:>7,} {bar}")
        for d in s["samples"]:
            text = d["text"].replace("\n", "\\n")[:160]
            click.echo(f"    doc {d['document']} ({d['tokens']} tokens): {text}")


@cli.command()
@click.argument("build")
@click.option(
    "--to", "to", type=click.Choice(["hf", "transformers"]), default="hf", show_default=True,
    help="hf: BUILD's data as datasets; transformers: a gpt RUN as a transformers model folder.",
)
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT folder.")
@pass_ctx
def export(c: Context, build: str, to: str, out: str, overwrite: bool) -> None:
    """Export BUILD's documents and token ids as Hugging Face datasets into OUT."""
    path = api.export(build, out, to=to, data_dir=c.data_dir, overwrite=overwrite,
                      progress=not c.quiet)
    if to == "transformers":
        click.echo(f"exported to {path}: AutoModelForCausalLM / AutoTokenizer.from_pretrained")
        return
    click.echo(f"exported to {path}: documents/ and tokens/ (datasets.load_from_disk)")


@cli.command()
@click.argument("target", required=False, shell_complete=_complete_corpus)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def verify(c: Context, target: str | None, as_json: bool) -> None:
    """Check every file of TARGET's artifacts against the sizes and hashes its manifests
    record: a corpus name (its raw, clean and token artifacts), an artifact folder, or, with
    no TARGET, everything under the data root. Exits with 1 when a file is damaged, one line
    each, naming the command that rebuilds it."""
    result = api.verify(target, data_dir=c.data_dir, progress=not c.quiet and not as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for problem in result.problems:
            click.echo(problem.line())
        state = "all good" if result.ok else f"{len(result.problems)} damaged"
        click.echo(
            f"verified {len(result.artifacts)} artifact(s), {result.files:,} file(s), "
            f"{human_bytes(result.bytes)}: {state}"
        )
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("--corpus", "corpora", multiple=True, help="Only this corpus (repeatable).")
@click.option(
    "--only",
    "kinds",
    multiple=True,
    type=click.Choice(["raw", "clean", "tokens"]),
    help="Only this kind of artifact (repeatable) [all three].",
)
@click.option("--dry-run", is_flag=True, help="Print what would be copied; copy nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sync(
    src: str,
    dst: str,
    corpora: tuple[str, ...],
    kinds: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Copy complete artifacts from data root SRC to DST (local paths or fsspec URLs such as
    s3://bucket/prefix), each manifest last, so a reader never sees a half-copied artifact.
    Up-to-date artifacts are skipped. Example: corpuskit sync data s3://bucket/corpuskit"""
    result = api.sync(src, dst, corpora=corpora, kinds=kinds, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2))
        return
    verb = "would copy" if dry_run else "copied"
    for rel in result.copied:
        click.echo(f"  {verb} {rel}")
    click.echo(
        f"{result.src} -> {result.dst}: {verb} {len(result.copied)} artifact(s), "
        f"{human_bytes(result.bytes)}; {len(result.up_to_date)} up to date"
    )


@cli.command()
@click.argument("build", shell_complete=_complete_corpus)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder [<data>/reports/<corpus>/<fingerprint>].",
)
@click.option(
    "--run",
    "runs",
    multiple=True,
    help="Also chart this training run's loss and perplexity (name, folder or 'latest'; "
    "repeatable).",
)
@click.option(
    "--sample-docs",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Documents sampled for stopword/symbol ratios and n-grams.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report's numbers as JSON.")
@pass_ctx
def report(
    c: Context,
    build: str,
    out: str | None,
    runs: tuple[str, ...],
    sample_docs: int,
    as_json: bool,
) -> None:
    """Write an HTML report with charts about BUILD (a corpus name, a token build or a clean
    artifact folder): lengths, stage funnel, drop reasons, duplicates, languages, tokens."""
    result = api.report(
        build,
        data_dir=c.data_dir,
        out=out,
        runs=runs,
        sample_docs=sample_docs,
        catalog=c.catalog,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "html": str(result.html),
                    "charts": [str(p) for p in result.charts],
                    **result.summary,
                },
                indent=2,
                default=str,
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"report written to {result.html} ({len(result.charts)} charts)")


@cli.command()
@click.option("--offline", is_flag=True, help="Skip the network reachability checks.")
@click.option(
    "--timeout", default=3.0, show_default=True, type=float, help="Seconds per host check."
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Check these hosts instead of the catalog's (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def doctor(
    c: Context, offline: bool, timeout: float, hosts: tuple[str, ...], as_json: bool
) -> None:
    """Check the environment: versions, torch device, disk space, data root, catalog, network.

    Exits with 1 when a check fails (a warning, such as an unreachable host, does not)."""
    checks = api.doctor(
        data_dir=c.data_dir,
        catalog=c.catalog,
        offline=offline,
        timeout=timeout,
        hosts=hosts or None,
    )
    failed = any(ch.status == "fail" for ch in checks)
    if as_json:
        click.echo(
            json.dumps({"ok": not failed, "checks": [ch.to_dict() for ch in checks]}, indent=2)
        )
    else:
        width = max(len(ch.name) for ch in checks)
        for ch in checks:
            click.echo(f"{ch.status.upper():<5} {ch.name:<{width}}  {ch.detail}")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--no-report", is_flag=True, help="Skip the HTML report page.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def ablate(c: Context, spec: str, no_report: bool, as_json: bool) -> None:
    """Which corpus, which recipe? Train one model on an equal budget of each candidate of
    SPEC (YAML) and compare them in bits per byte on a shared, decontaminated eval set.

    Every build and finished run is reused; `corpuskit compare NAME` lists the runs."""
    from corpuskit.ablate import format_table

    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    result = api.ablate(spec, data_dir=c.data_dir, catalog=c.catalog,
                        progress=not (as_json or c.quiet), log=log, report=not no_report)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    click.echo(format_table(result))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash: eval "$(corpuskit completion bash)"    (in ~/.bashrc)
    zsh:  eval "$(corpuskit completion zsh)"     (in ~/.zshrc)
    fish: corpuskit completion fish > ~/.config/fish/completions/corpuskit.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above only lets click's own shells through
    click.echo(cls(cli, {}, "corpuskit", "_CORPUSKIT_COMPLETE").source())


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, ``docker stop``), raised wherever the program is, so that
    it unwinds as Ctrl-C does (staging folders removed, worker processes stopped, finished
    shards kept) instead of dying on the spot; the exit status is 143, as a shell reports it."""

    exit_code = 143


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises ``Terminated`` while a command runs (in the main thread, and only where
    nobody installed a handler of their own); the previous handler is put back afterwards."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException | None) -> None:
    """One line and 130 for Ctrl-C; 143 for SIGTERM (any interrupt with ``exit_code = 143``,
    such as training's, or one whose class is named ``...Terminated``)."""
    code = getattr(exc, "exit_code", None)
    if not isinstance(code, int) or isinstance(code, bool):
        code = 143 if type(exc).__name__.endswith("Terminated") else 130
    click.echo("terminated" if code == 143 else "interrupted", err=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        with _sigterm_unwinds():
            code = cli.main(args=argv, prog_name="corpuskit", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)  # a command's ctx.exit(n): without standalone mode click returns n
    except click.exceptions.Abort as exc:
        _interrupted(exc.__cause__)  # click wraps the KeyboardInterrupt (or EOF) it caught
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CorpuskitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except OSError as exc:
        # The machine's fault, not a bug of ours: a full disk, a read-only or vanished folder,
        # permissions. One line, like any user error; -v adds the traceback for a bug report.
        click.echo(f"error: {_os_error_line(exc)}", err=True)
        logging.getLogger("corpuskit.cli").info("traceback", exc_info=True)
        sys.exit(1)


def _os_error_line(exc: OSError) -> str:
    """``No space left on device: /data/tokens/x/train.bin; free some space and run again``."""
    import errno

    what = exc.strerror or str(exc) or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space (or point --data-dir elsewhere) and run again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; check the permissions of the data folder (--data-dir)"
    return f"{what}{where}{hint}"


if __name__ == "__main__":
    main()
