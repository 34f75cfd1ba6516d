"""The options of ``corpuskit build``, grouped by subject, in the order ``--help`` lists them.

Why a module of their own: ``build`` takes some thirty options; stacked as decorators they would
make the command one very long function, and they are a table to read, not logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def _build_prepare_options() -> list[Callable[[Any], Any]]:
    """``build``'s options for splits, normalization and the tokenizer (``--help`` order)."""
    return [
        click.option(
            "--tokenizer",
            help="spm-bpe:N, spm-unigram:N, word[:N], char, byte, a sentencepiece .model file or "
            "hf:tokenizer.json [default: spm-bpe:4096].",
        ),
        click.option(
            "--val-fraction",
            type=float,
            help="Share of documents for validation when the source has no splits [0.05].",
        ),
        click.option("--test-fraction", type=float, help="Share for a test split likewise [0]."),
        click.option(
            "--normalization",
            type=click.Choice(["NFC", "NFKC", "none"]),
            help="Unicode normalization [NFC].",
        ),
        click.option(
            "--code/--prose",
            default=None,
            help="Clean as code (keep indentation) or prose [from the catalog's domains].",
        ),
        click.option("--min-chars", type=int, help="Drop documents shorter than this [1]."),
        click.option("--max-chars", type=int, help="Drop documents longer than this [no limit]."),
        click.option("--dedup/--no-dedup", default=None, help="Exact-duplicate removal [on]."),
        click.option("--seed", type=int, help="Seed for splits and tokenizer sampling [0]."),
        click.option(
            "--sentence-budget", type=int, help="Lines sampled to train sentencepiece [1000000]."
        ),
        click.option(
            "--sentence-budget-bytes",
            type=int,
            help="Train-text bytes sentencepiece may see; larger train splits are hash-sampled "
            "[1e8].",
        ),
        click.option(
            "--keep-whitespace",
            "whitespace",
            flag_value="keep",
            default=None,
            help="Leave spaces and blank lines exactly as they are (classic WikiText) "
            "[normalize].",
        ),
        click.option("--bos/--no-bos", default=None, help="Lead every document with BOS [off]."),
    ]


def _build_executor_options() -> list[Callable[[Any], Any]]:
    """``build``'s options for where and how the work runs (``--help`` order)."""
    return [
        click.option("--workers", type=int, help="Worker processes and threads [all cores]."),
        click.option(
            "--executor",
            type=click.Choice(["local", "ray"]),
            help="Where per-shard work runs: local processes or Ray tasks; same output [local].",
        ),
        click.option(
            "--address",
            help="Ray cluster to join with --executor ray ('auto' or HOST:PORT) "
            "[a private local one].",
        ),
        click.option(
            "--cache/--no-cache",
            default=None,
            help="Reuse and keep per-shard clean+filter output in DATA/cache; same output [on].",
        ),
        click.option(
            "--encoder",
            type=click.Choice(["auto", "sentencepiece"]),
            help="Who encodes for sentencepiece models: auto uses kitoken where it gives the "
            "same ids (checked), else sentencepiece; same output [auto].",
        ),
    ]


def _build_filter_options() -> list[Callable[[Any], Any]]:
    """``build``'s cleaning, filtering and deduplication options (``--help`` order)."""
    return [
        click.option(
            "--fix-mojibake/--no-fix-mojibake", default=None, help="Repair mojibake [on]."
        ),
        click.option(
            "--html/--no-html", default=None, help="Extract text from HTML documents [off]."
        ),
        click.option(
            "--wikitext/--no-wikitext",
            default=None,
            help="Undo WikiText tokenization (@-@ etc.) [off].",
        ),
        click.option(
            "--quality/--no-quality",
            default=None,
            help="Gopher quality heuristics (code: line-length and alphanumeric checks) [off].",
        ),
        click.option(
            "--repetition/--no-repetition", default=None, help="Gopher repetition filter [off]."
        ),
        click.option(
            "--language",
            "languages",
            multiple=True,
            help="Keep only documents in this language (repeatable; py3langid) [no filter].",
        ),
        click.option(
            "--near-dedup/--no-near-dedup", default=None, help="MinHash-LSH near-dups [off]."
        ),
        click.option(
            "--minhash-threshold", type=float, help="Near-duplicate Jaccard threshold [0.8]."
        ),
        click.option(
            "--paragraph-dedup",
            type=click.Choice(["off", "paragraphs", "lines"]),
            help="Remove paragraphs (or lines) repeated across the corpus, keep the first copy "
            "[off].",
        ),
        click.option(
            "--stopwords",
            type=click.Choice(["off", "filter", "remove"]),
            help="Drop documents with too few stopwords, or remove stopwords [off].",
        ),
        click.option(
            "--stopwords-language", help="Stopword list language [the corpus's language]."
        ),
        click.option(
            "--decontaminate",
            type=click.Choice(["off", "drop", "mark"]),
            help="Training documents sharing an n-gram with val/test [off].",
        ),
        click.option(
            "--decontaminate-ngram", type=int, help="N-gram length for decontamination [13]."
        ),
    ]


def _build_plan_options() -> list[Callable[[Any], Any]]:
    """``build``'s recipe, ``--set``, dry-run, force and output options (``--help`` order)."""
    return [
        click.option(
            "--recipe",
            type=click.Path(dir_okay=False),
            help="YAML recipe of build options (see docs/build-stages.md).",
        ),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any build option, e.g. --set min_words=20 (repeatable; value is YAML).",
        ),
        click.option("--dry-run", is_flag=True, help="Print the resolved plan and exit."),
        click.option(
            "--force",
            is_flag=True,
            help="Rebuild the clean and token artifacts from scratch, ignoring the cache; the "
            "old ones stay until the new ones are complete.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]


def build_options() -> list[Callable[[Any], Any]]:
    """All of ``build``'s options, in the order ``--help`` lists them."""
    return (
        _build_prepare_options()
        + _build_executor_options()
        + _build_filter_options()
        + _build_plan_options()
    )
