"""Commands that read the catalog: ``list``, ``suggest`` and ``info``."""

from __future__ import annotations

import json

import click

from corpuskit import api
from corpuskit.cli.base import Context, cli, complete_corpus, human_bytes, pass_ctx, print_table
from corpuskit.errors import CorpuskitError


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



@cli.command()
@click.argument("name", shell_complete=complete_corpus)
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
