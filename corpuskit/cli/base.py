"""The click group every command hangs on, the shared ``Context``, logging set-up and the small
printing helpers the command modules share. Command modules import from here, never from the
package, so there is no import cycle."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from click.shell_completion import CompletionItem

from corpuskit import __version__, api


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


def metric(value: float | None, spec: str) -> str:
    """A metric formatted with ``spec``, or ``n/a`` when the run did not record it."""
    return "n/a" if value is None else format(value, spec)


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


def complete_corpus(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of corpus names from the catalog (with any --catalog given so far)."""
    try:
        catalog = ctx.find_root().params.get("catalog") or ()
        names = [e.name for e in api.load_catalog(catalog)]
    except Exception:  # a broken catalog must not break the user's shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def say_remote(data_dir: str | None) -> None:
    """With an object-store data root the paths printed are the local mirror's: say so."""
    from corpuskit.remote import remote_url

    url = remote_url(data_dir)
    if url is not None:
        click.echo(f"  (a local mirror of {url}; its artifacts were pushed there)")


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


def stack_options(decorators: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One decorator made of ``decorators`` (click options, listed top to bottom as they would
    be stacked), so a command with many options stays a short function; ``--help`` lists them in
    the same order as stacked decorators would."""

    def apply(func: Any) -> Any:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply
