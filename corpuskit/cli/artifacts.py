"""Commands about artifacts already on disk and the environment: ``inspect``, ``export``,
``verify``, ``sync``, ``report``, ``doctor``, and ``completion`` for the shell."""

from __future__ import annotations

import json
import sys

import click

from corpuskit import api
from corpuskit.cli.base import Context, cli, complete_corpus, human_bytes, pass_ctx


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
@click.argument("target", required=False, shell_complete=complete_corpus)
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
@click.argument("build", shell_complete=complete_corpus)
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
