"""The Python API for models: train, evaluate (corpuskit's runs and transformers models),
compare, sample, ablate, and the HTML report of a build and its runs; plus how a build or a run
is found from a name (``corpuskit.api`` re-exports every name; see corpuskit/api.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.api_catalog import CatalogPaths, load_catalog
from corpuskit.encode import latest_build
from corpuskit.errors import CorpuskitError
from corpuskit.mixture import refuse_mixture
from corpuskit.paths import data_root, runs_root


@dataclass
class TrainResult:
    run_dir: Path
    build_dir: Path
    eval: dict[str, Any] = field(repr=False)


def resolve_build(name_or_path: str, root: Path) -> Path:
    """A token build from a corpus name (its newest build) or a build folder's path."""
    path = Path(name_or_path)
    if (path / "meta.json").is_file():
        return path
    return latest_build(root, name_or_path)


def _new_run_dir(root: Path, base: str) -> Path:
    """A fresh run folder: ``base``, or ``base-2``, ``base-3``… so no run is ever overwritten."""
    runs = runs_root(root)
    runs.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = runs / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise CorpuskitError(f"too many runs named {base!r} under {runs}; pass --run-name")


def train(
    corpus: str | None = None,
    *,
    model: str = "gpt",
    preset: str = "tiny",
    data_dir: str | os.PathLike[str] | None = None,
    run_name: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    resume: str | None = None,
    progress: bool = True,
    log: Any = print,
    init: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train a language model on a corpus's newest token build (or a build folder).

    ``resume`` names an interrupted run (name, folder or ``latest``): it continues from its last
    checkpoint on the build it was started on, and ends with the same weights as an
    uninterrupted run. ``overrides`` may then change only the run length, intervals and device.
    ``init`` (a transformers GPT-2 folder) starts a new gpt run from its weights and shape.
    """
    from corpuskit.train import TrainConfig
    from corpuskit.train import train as run_training
    from corpuskit.train.checkpoint import read_run_config

    root = data_root(data_dir)
    try:
        if resume is not None:
            run_dir = resolve_run(resume, root)
            saved, data = read_run_config(run_dir)
            build_dir = Path(data["build_dir"])
            config = saved.replace(**_parse_overrides(overrides)) if overrides else None
            result = run_training(
                build_dir, run_dir, config, progress=progress, log=log, resume=True
            )
            _point_latest_run(root, run_dir)
            return TrainResult(run_dir, build_dir, result)
        if corpus is None:
            raise CorpuskitError("name a corpus (or a build folder) to train on, or --resume RUN")
        build_dir = resolve_build(corpus, root)
        config = TrainConfig.from_preset(
            model, preset, config_file=config_file, overrides=list(overrides)
        )
        if init is not None:  # start from a transformers GPT-2 checkpoint (train/hf_model.py)
            from corpuskit.train.hf_model import init_config

            config = init_config(config, init, build_dir)
    except ValueError as exc:
        raise CorpuskitError(str(exc)) from None
    base = run_name or re.sub(r"[^A-Za-z0-9._-]+", "-", f"{build_dir.parent.name}-{model}-{preset}")
    run_dir = _new_run_dir(root, base)
    result = run_training(build_dir, run_dir, config, progress=progress, log=log)
    _point_latest_run(root, run_dir)
    return TrainResult(run_dir, build_dir, result)


def _parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    from corpuskit.train.config import parse_overrides

    return parse_overrides(list(overrides))


def evaluate(
    run: str, split: str = "val", *, data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Loss, perplexity, next-token accuracy and bits per byte of a run on a split
    (``progress``: a bar of the tokens evaluated, with an ETA)."""
    from corpuskit.train import evaluate as run_evaluate

    return run_evaluate(resolve_run(run, data_root(data_dir)), split, progress=progress)


def evaluate_hf(
    model: str | os.PathLike[str],
    build: str,
    split: str = "val",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    stride: int | None = None,
    device: str = "auto",
    progress: bool = True,
    record: bool = True,
) -> dict[str, Any]:
    """A local transformers causal LM on a build's split (see corpuskit/train/hf_model.py).

    ``record`` keeps the result as ``<data>/runs/hf-<model>-on-<corpus>/`` (its path in the
    result's ``run``), so ``compare`` lists the model beside corpuskit's runs."""
    from corpuskit.train.hf_model import evaluate_hf as run_evaluate_hf
    from corpuskit.train.hf_model import record_hf_eval

    root = data_root(data_dir)
    build_dir = resolve_build(build, root)
    refuse_mixture(build_dir, "eval --hf-model")  # it re-tokenizes the cleaned text
    metrics = run_evaluate_hf(model, build_dir, root, split, stride=stride, device=device,
                              progress=progress)
    if record:
        metrics["run"] = str(record_hf_eval(root, build_dir, metrics))
    return metrics


def compare(
    runs: Sequence[str], *, data_dir: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """One row per run (best validation loss first); no runs named means every run."""
    from corpuskit.train import compare as run_compare

    root = data_root(data_dir)
    if not runs:
        base = runs_root(root)
        dirs = (
            sorted(p for p in base.iterdir() if (p / "config.yaml").is_file())
            if base.is_dir()
            else []
        )
    else:
        dirs = [d for r in runs for d in _runs_named(r, root)]  # an ablation: its runs
    if not dirs:
        raise CorpuskitError("there is no run yet; train one with `corpuskit train`")
    return run_compare(dirs)


def _point_latest_run(root: Path, run_dir: Path) -> None:
    latest = runs_root(root) / "LATEST"
    tmp = latest.with_name(f".LATEST.tmp-{os.getpid()}")
    tmp.write_text(run_dir.name + "\n", encoding="utf-8")
    os.replace(tmp, latest)


def resolve_run(run: str, root: Path) -> Path:
    """A run folder from a path, a run name under ``<data>/runs``, or ``latest``."""
    path = Path(run)
    if (path / "config.yaml").is_file():
        return path
    runs = runs_root(root)
    if run == "latest":
        try:
            run = (runs / "LATEST").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CorpuskitError("there is no run yet; train one with `corpuskit train`") from None
    candidate = runs / run
    if not (candidate / "config.yaml").is_file():
        raise CorpuskitError(f"no run {run!r} under {runs}; `ls {runs}` shows the runs there")
    return candidate


def sample(
    run: str,
    prompt: str = "",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """Generate text from a trained run."""
    run_dir = resolve_run(run, data_root(data_dir))
    from corpuskit.train import sample as run_sample

    return run_sample(
        run_dir,
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )


def report(
    build: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    runs: Sequence[str] = (),
    sample_docs: int = 2000,
    catalog: CatalogPaths = (),
) -> Any:
    """Write a self-contained HTML report (and PNG charts) about a build and, optionally, runs.

    ``build`` is a corpus name (its newest token build), a token build folder or a clean
    artifact folder; ``runs`` are run names, run folders or ``latest``. The default output
    folder is ``<data>/reports/<corpus>/<fingerprint>/``. Returns a ``ReportResult``.
    """
    from corpuskit.report import build_report

    root = data_root(data_dir)
    path = Path(build)
    if (path / "meta.json").is_file() or (path / "manifest.json").is_file():
        build_dir = path
    else:
        build_dir = resolve_build(build, root)
    run_dirs = [resolve_run(r, root) for r in runs]
    entry = None
    try:  # the raw manifest carries the entry; the catalog is the fallback for older ones
        corpus = build_dir.parent.name
        entry = load_catalog(catalog).get(corpus).model_dump(mode="json")
    except CorpuskitError:
        pass
    return build_report(
        build_dir,
        root,
        out_dir=Path(out) if out is not None else None,
        runs=run_dirs,
        sample_docs=sample_docs,
        catalog_entry=entry,
    )


def _runs_named(run: str, root: Path) -> list[Path]:
    """The runs of the ablation named ``run`` (``corpuskit compare ABLATION``), else the run."""
    from corpuskit.ablate import ablation_runs

    found = ablation_runs(root, run) if re.fullmatch(r"[A-Za-z0-9._-]+", run) else None
    return found if found is not None else [resolve_run(run, root)]


def ablate(
    spec: str | os.PathLike[str] | Mapping[str, Any],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    catalog: CatalogPaths = (),
    progress: bool = True,
    log: Any = print,
    report: bool = True,
) -> Any:
    """Which corpus, which recipe? Train the spec's model on an equal budget of each candidate
    and score every run on one shared, decontaminated eval set in bits per byte (a spec file
    or mapping; see corpuskit/ablate.py and examples/ablate-*.yaml). Reuses every build and
    finished run; returns an ``ablate.AblationResult`` (``as_dict()`` for JSON)."""
    from corpuskit.ablate import ablate as run_ablate
    from corpuskit.ablate_spec import load_spec, parse_spec

    parsed = parse_spec(dict(spec)) if isinstance(spec, Mapping) else load_spec(spec)
    return run_ablate(parsed, data_root(data_dir), catalog=catalog, progress=progress, log=log,
                      write_report=report)
