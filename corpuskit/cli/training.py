"""Commands about models: ``train``, ``eval``, ``compare``, ``sample`` and ``ablate``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from corpuskit import api
from corpuskit.cli.base import Context, cli, metric, pass_ctx, print_table, stack_options


def print_metrics(ev: dict[str, Any]) -> None:
    """Held-out metrics of a run, one line per split."""
    for split in ("val", "test"):
        m = ev.get(split)
        if m:
            print_split_metrics(split, m)


def print_split_metrics(split: str, m: dict[str, Any]) -> None:
    """One split's metrics on one line, labelled with the split's own name (``train``, or a
    mixture component's ``val.<name>``), then one line per mixture component it reports."""
    click.echo(
        f"  {split:<5} loss {metric(m.get('loss'), '.4f')}  "
        f"perplexity {metric(m.get('perplexity'), '.2f')}  "
        f"accuracy {metric(m.get('accuracy'), '.3f')}  "
        f"bits/byte {metric(m.get('bits_per_byte'), '.3f')}"
    )
    for name, cm in (m.get("components") or {}).items():
        click.echo(
            f"    {name:<14} loss {metric(cm.get('loss'), '.4f')}  "
            f"bits/byte {metric(cm.get('bits_per_byte'), '.3f')}"
        )


def _train_options() -> list[Callable[[Any], Any]]:
    """``train``'s options, in the order ``--help`` lists them."""
    return [
        click.option(
            "--model",
            default="gpt",
            show_default=True,
            type=click.Choice(["gpt", "lstm", "fnn", "ngram"]),
            help="Model family.",
        ),
        click.option(
            "--preset",
            default="tiny",
            show_default=True,
            help="Preset: gpt tiny|small|gpt2-124m, lstm small|medium, fnn small|medium, "
            "ngram trigram|5gram.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False),
            help="YAML training config (overrides the preset).",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override one setting, e.g. --set max_steps=500 (repeatable).",
        ),
        click.option("--max-steps", type=int, help="Shorthand for --set max_steps=N."),
        click.option(
            "--max-tokens", type=int, help="Shorthand for --set max_tokens=N (training tokens)."
        ),
        click.option(
            "--epochs", type=float, help="Shorthand for --set epochs=N (passes over train)."
        ),
        click.option("--device", help="auto, cpu or cuda (shorthand for --set device=...)."),
        click.option("--seed", type=int, help="Shorthand for --set seed=N."),
        click.option(
            "--threads", type=int, help="CPU threads for torch (shorthand for --set threads=N)."
        ),
        click.option("--run-name", help="Run folder name under <data>/runs [corpus-model-preset]."),
        click.option(
            "--resume", metavar="RUN", help="Continue an interrupted run (name, folder, latest)."
        ),
        click.option(
            "--init",
            "init",
            metavar="PATH",
            type=click.Path(exists=True, file_okay=False),
            help="Start a gpt run from a transformers GPT-2 folder (build with its tokenizer).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]


@cli.command()
@click.argument("corpus", required=False)
@stack_options(_train_options())
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
    shorthands = (
        ("max_steps", max_steps),
        ("max_tokens", max_tokens),
        ("epochs", epochs),
        ("device", device),
        ("seed", seed),
        ("threads", threads),
    )
    sets = list(overrides) + [f"{key}={value}" for key, value in shorthands if value is not None]
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
    _print_train(result, as_json)


def _print_train(result: Any, as_json: bool) -> None:
    """What ``train`` prints: where the run is saved and its held-out metrics."""
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
@click.option(
    "--split", default="val", show_default=True,
    help="val, test, train, or val.<component> of a mixture build.",
)
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
    print_split_metrics(split, metrics)


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
                "val_loss": metric(r.get("val_loss"), ".4f"),
                "val_ppl": metric(r.get("val_perplexity"), ".2f"),
                "test_ppl": metric(r.get("test_perplexity"), ".2f"),
                "bits/byte": metric(r.get("val_bits_per_byte"), ".3f"),
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

