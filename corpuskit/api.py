"""The Python API: everything the command line does, as importable functions.

Each function takes a corpus name (resolved through the catalog) and an optional data root, does
its work, and returns a small result object; the CLI only formats those results.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.build import BuildConfig, BuildResult, build_entry, build_root
from corpuskit.catalog import Catalog, CorpusEntry
from corpuskit.choose import Suggestion, license_family
from corpuskit.choose import suggest as choose_suggest
from corpuskit.encode import latest_build
from corpuskit.errors import CorpuskitError
from corpuskit.fetch import FetchResult, download_state, fetch_entry
from corpuskit.mixture import build_mix_entry, fetch_mix, format_mix_plan, is_mix, refuse_mixture
from corpuskit.paths import clean_root, data_root, raw_dir, runs_root, tokens_root
from corpuskit.remote import mirrored, remote_url
from corpuskit.shards import existing_manifest
from corpuskit.slices import Slice, parse_size, sliced_entry
from corpuskit.sync import KINDS

CatalogPaths = Sequence[str | os.PathLike[str]]


def load_catalog(catalog: CatalogPaths = ()) -> Catalog:
    """The built-in catalog plus user catalog files or folders."""
    return Catalog.load(catalog)


def list_corpora(catalog: CatalogPaths = (), **filters: Any) -> list[CorpusEntry]:
    """Catalog entries, filtered by ``language``/``domain`` (one or several), ``source``,
    ``license`` (a family: permissive, copyleft, noncommercial, unknown; or text in the id),
    ``max_size`` (bytes), ``min_tokens``/``max_tokens``, ``gated`` and free-text ``search``;
    ``sort`` by name, size or tokens (see :func:`corpuskit.choose.filter_entries`)."""
    return load_catalog(catalog).filter(**filters)


def suggest(
    *,
    language: str | Sequence[str] | None = None,
    domain: str | Sequence[str] | None = None,
    tokens: int | str | None = None,
    license: str | None = None,
    gated: bool | None = None,
    limit: int = 10,
    catalog: CatalogPaths = (),
) -> list[Suggestion]:
    """The catalog entries that fit a question, best first, each with one line of reasons and
    the fetch command (``tokens`` is a budget such as ``2B``); see
    :func:`corpuskit.choose.suggest` for the ranking."""
    return choose_suggest(
        load_catalog(catalog), language=language, domain=domain, tokens=tokens,
        license=license, gated=gated, limit=limit,
    )


def info(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, catalog: CatalogPaths = ()
) -> dict[str, Any]:
    """Everything the catalog knows about a corpus, plus what is on disk for it."""
    entry = load_catalog(catalog).get(name)
    root = data_root(data_dir)
    raw = existing_manifest(raw_dir(root, name))
    local: dict[str, Any] = {"fetched": raw is not None, "raw_dir": str(raw_dir(root, name))}
    if raw is not None:
        local["raw"] = {
            "fingerprint": raw["fingerprint"],
            "splits": raw["splits"],
            "shards": len(raw["shards"]),
            "skipped": raw.get("skipped", {}),
            "resolved": raw.get("resolved"),
        }
    local.update(download_state(root, name))
    local["clean_builds"] = _artifacts(clean_root(root, name))
    local["token_builds"] = _artifacts(tokens_root(root, name))
    local["raw_slices"] = _slices(raw_dir(root, name))
    return {
        **entry.model_dump(mode="json"),
        "origin": entry.origin,
        "license_family": license_family(entry.license),
        "local": local,
    }


def _slices(raw: Path) -> list[str]:
    """Fetched slices of the corpus (``raw/NAME@max-bytes=2GB``, ...), each its own artifact."""
    if not raw.parent.is_dir():
        return []
    return sorted(
        str(p)
        for p in raw.parent.glob(f"{raw.name}@*")
        if p.is_dir() and existing_manifest(p) is not None
    )


def _artifacts(base: Path) -> list[str]:
    if not base.is_dir():
        return []
    return sorted(
        str(p)
        for p in base.iterdir()
        if p.is_dir() and not p.name.startswith(".") and existing_manifest(p) is not None
    )


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    catalog: CatalogPaths = (),
    mirror: str | None = None,
    splits: Sequence[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    max_bytes: int | str | None = None,
    max_documents: int | None = None,
    max_files: int | None = None,
    subset: str | None = None,
) -> FetchResult:
    """Fetch a corpus into ``<data>/raw/<name>/`` (does nothing when already up to date).

    ``mirror`` (else ``CORPUSKIT_MIRROR``) is a base URL tried first for every file;
    ``splits`` fetches only those splits. Sources made of many files are read in groups of
    files as ``executor`` tasks: ``"local"`` with ``workers`` processes (default 1: this
    process; 0: every core) or ``"ray"`` (``address``: a running cluster; ``workers``: a cap,
    default every CPU); the shards are byte-identical either way (docs/scale-out.md).

    ``max_bytes`` (``"2GB"`` or a number), ``max_documents``, ``max_files`` and ``subset`` (or
    a name ``NAME@max-bytes=2GB``) fetch a slice into ``<data>/raw/NAME@<slice>/``, a
    deterministic prefix of the corpus within the budget (corpuskit/slices.py).
    """
    wanted = Slice(
        subset=subset,
        max_files=max_files,
        max_documents=max_documents,
        max_bytes=parse_size(str(max_bytes)) if max_bytes is not None else None,
    )
    entry = sliced_entry(load_catalog(catalog), name, wanted)
    name = entry.name
    if address and executor != "ray":
        raise CorpuskitError("--address is for --executor ray")
    if workers is None:
        workers = 1 if executor == "local" else 0
    url = remote_url(data_dir)
    if url is not None:  # object storage: work in a local mirror, push the result
        with mirrored(url, name, pull=("raw",), push=("raw",)) as local:
            return fetch(
                name, data_dir=local, force=force, progress=progress, catalog=catalog,
                mirror=mirror, splits=splits, executor=executor, workers=workers,
                address=address,
            )
    options: dict[str, Any] = dict(
        force=force, progress=progress, mirror=mirror, splits=list(splits) if splits else None,
        executor=executor, workers=workers, address=address,
    )
    if is_mix(entry):  # a mixture fetches each of its components (corpuskit/mixture/)
        return fetch_mix(load_catalog(catalog), entry, data_root(data_dir), **options)
    return fetch_entry(entry, data_root(data_dir), **options)


def build(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    catalog: CatalogPaths = (),
    fetch_missing: bool = True,
    recipe: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    force: bool = False,
    **config: Any,
) -> BuildResult:
    """Clean, filter, deduplicate, tokenize and pack a corpus.

    ``force`` rebuilds the clean and token artifacts from scratch, the phase-1 cache ignored;
    each old artifact is replaced only once its replacement is complete. Without it, an
    up-to-date artifact whose files are missing or of the wrong size is built again too.

    ``config`` fields are ``BuildConfig``'s. Precedence, lowest first: the entry's own
    ``recipe``, the ``recipe`` file, ``settings`` (the CLI's ``--set``), explicit arguments.
    ``executor="ray"`` (and ``address=``) runs the per-shard work as Ray tasks, same output.
    ``data_dir`` may be a local path, a ``file://`` URL or an object-store URL (``s3://``...):
    then the build runs in a local mirror of it and pushes its artifacts back (``remote.py``).
    """
    url = remote_url(data_dir)
    if url is not None:
        with mirrored(url, name, pull=KINDS, push=KINDS) as local:
            return build(
                name, data_dir=local, progress=progress, catalog=catalog,
                fetch_missing=fetch_missing, recipe=recipe, settings=settings, force=force,
                **config,
            )
    cat = load_catalog(catalog)
    entry = sliced_entry(cat, name)  # NAME@max-bytes=2GB builds that slice's raw artifact
    root = build_root(data_dir)
    if is_mix(entry):  # components cleaned, one tokenizer, resampled (corpuskit/mixture/)
        return build_mix_entry(cat, entry, root, recipe=recipe, overrides=_overrides(
            settings, config), progress=progress, force=force, fetch_missing=fetch_missing)
    build_config = build_settings(entry, recipe, settings, config)
    if fetch_missing and existing_manifest(raw_dir(root, name)) is None:
        fetch_entry(entry, root, progress=progress)
    return build_entry(entry, root, build_config, progress=progress, force=force)


def build_settings(
    entry: CorpusEntry,
    recipe: str | os.PathLike[str] | None,
    settings: Mapping[str, Any] | None,
    config: Mapping[str, Any],
) -> BuildConfig:
    """The resolved, validated build config (before any fetch: a typo costs no download)."""
    from corpuskit.recipe import resolve

    return resolve(entry, recipe, _overrides(settings, config))


def _overrides(settings: Mapping[str, Any] | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """``--set`` values, then explicit arguments (those not None) over them."""
    from corpuskit.recipe import flatten

    overrides = flatten(settings or {}, "--set")
    overrides.update({k: v for k, v in config.items() if v is not None})
    return overrides


def build_plan(
    name: str,
    *,
    catalog: CatalogPaths = (),
    recipe: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    **config: Any,
) -> str:
    """What ``build`` would do with these options, as text (``corpuskit build --dry-run``)."""
    from corpuskit.recipe import format_plan

    cat = load_catalog(catalog)
    entry = sliced_entry(cat, name)
    if is_mix(entry):
        return format_mix_plan(cat, entry, recipe, _overrides(settings, config))
    return format_plan(entry, build_settings(entry, recipe, settings, config))


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


def inspect(
    build: str, *, data_dir: str | os.PathLike[str] | None = None, samples: int = 3
) -> dict[str, Any]:
    """Token counts, bytes per token, unknown rate, length histogram and decoded samples."""
    from corpuskit.inspection import inspect_build

    return inspect_build(resolve_build(build, data_root(data_dir)), samples=samples)


def export(
    build: str,
    out: str | os.PathLike[str],
    *,
    to: str = "hf",
    data_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a build's documents and token ids as Hugging Face datasets under ``out``
    (``progress=False`` silences every bar, ``datasets``' own included)."""
    from corpuskit.export import export_hf

    if to == "transformers":  # ``build`` names a gpt run here: the model leaves, not the data
        from corpuskit.transformers_export import export_transformers

        root = data_root(data_dir)
        return export_transformers(resolve_run(build, root), Path(out), root=root,
                                   overwrite=overwrite)
    if to != "hf":
        raise CorpuskitError(f"unknown export format {to!r}; supported: hf, transformers")
    root = data_root(data_dir)
    build_dir = resolve_build(build, root)
    refuse_mixture(build_dir, "export --to hf")
    return export_hf(build_dir, root, Path(out), overwrite=overwrite,
                     progress=progress)


def verify(
    target: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Any:
    """Check the size and hash of every file the manifests record: of every artifact under the
    data root (``target`` None), of one corpus's raw, clean and token artifacts (a name), or of
    one artifact folder (a path). Returns a ``verification.VerifyResult``; its ``problems``
    name each damaged file and the command that rebuilds it."""
    from corpuskit.verification import verify as run_verify

    return run_verify(
        data_root(data_dir), None if target is None else os.fspath(target), progress=progress
    )


def sync(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    corpora: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    dry_run: bool = False,
) -> Any:
    """Copy complete artifacts (raw, clean, tokens; manifest last) between two data roots, each
    a local path or an fsspec URL (``s3://``, ``gs://``, ``memory://``...). Returns a
    ``sync.SyncResult``; see ``corpuskit/sync.py``."""
    from corpuskit.sync import KINDS
    from corpuskit.sync import sync as run_sync

    return run_sync(
        src,
        dst,
        corpora=list(corpora) if corpora else None,
        kinds=tuple(kinds) if kinds else KINDS,
        dry_run=dry_run,
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


def doctor(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    catalog: CatalogPaths = (),
    offline: bool = False,
    timeout: float = 3.0,
    hosts: Sequence[str] | None = None,
) -> list[Any]:
    """Check the environment: versions, torch device, data root, catalog, network reachability.

    Returns ``doctor.Check`` rows; ``offline`` skips the network checks, ``hosts``
    (``host:port``) replaces the catalog's hosts.
    """
    from corpuskit.doctor import run_checks

    return run_checks(
        data_root(data_dir), catalog=catalog, offline=offline, timeout=timeout, hosts=hosts
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
