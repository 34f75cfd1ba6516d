"""``corpuskit ablate``: which corpus, which recipe? Train the same small model on an equal budget
of each candidate and score every run on one shared, decontaminated evaluation set.

The steps are the public API's (``api.build`` fetches what is missing and builds, ``api.train``
trains), each reusing what exists: builds by fingerprint, runs by name. A run is named
``<ablation>-<candidate>-s<seed>``; one that exists with the same settings on the same data is
reused as it is (or resumed, when it was interrupted), one with other settings is refused, never
overwritten. So a second ``ablate`` with one more candidate trains only that one.

Scores are bits per byte on the shared documents (comparable across tokenizers), mean and sample
standard deviation over the seeds. Two candidates are *within noise* when their means differ by
less than twice their combined spread, ``|m1 - m2| < 2 * sqrt(s1**2 + s2**2)``; with one seed
there is no spread, and the table says so rather than calling a difference real.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit import api
from corpuskit.ablate_data import EvalSet, ablation_build, load_eval_set
from corpuskit.ablate_spec import AblationSpec, Candidate, EvalPart
from corpuskit.errors import CorpuskitError
from corpuskit.paths import runs_root
from corpuskit.shards import write_json_atomic

NOISE_SIGMAS = 2.0
RESULT = "ablation.json"


@dataclass
class AblationResult:
    """What ``ablate`` made: a row per candidate, a record per run, and where they are."""

    name: str
    folder: Path
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    eval: dict[str, Any]
    budget: dict[str, Any]
    html: Path | None = None
    rule: str = field(default="")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "budget": self.budget,
                "eval": self.eval, "noise_rule": self.rule, "candidates": self.rows,
                "runs": self.runs, "html": str(self.html) if self.html else None}


def run_name(spec: AblationSpec, candidate: Candidate, seed: int) -> str:
    """The deterministic name of one run of the ablation."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{spec.name}-{candidate.name}-s{seed}")


def ablation_folder(root: Path, name: str) -> Path:
    return root / "ablations" / name


def _build_kwargs(settings: dict[str, Any], recipe: str | None) -> dict[str, Any]:
    return {"recipe": recipe, "settings": settings, "fetch_missing": True}


def check_spec(spec: AblationSpec, catalog: api.CatalogPaths = ()) -> None:
    """Every name, build setting and train setting checked before any download or training."""
    from corpuskit.mixture import is_mix
    from corpuskit.slices import sliced_entry

    cat = api.load_catalog(catalog)
    for where, corpus, recipe, settings in _builds(spec):
        try:
            entry = sliced_entry(cat, corpus)
            if is_mix(entry) and where.startswith("eval"):
                raise CorpuskitError(f"{corpus!r} is a mixture; name its parts as components")
            if not is_mix(entry):
                api.build_settings(entry, recipe, settings, {})
        except CorpuskitError as exc:
            raise CorpuskitError(f"{where}: {exc}") from None
    for seed in spec.seeds:
        _train_config(spec, seed, 1)


def _builds(spec: AblationSpec) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    rows = [(f"candidate {c.name!r}", c.corpus, c.recipe, _candidate_settings(spec, c))
            for c in spec.candidates]
    for part in spec.eval.parts():
        rows.append((f"eval {part.name!r}", part.corpus, part.recipe,
                     {**part.settings, "tokenizer": "byte"}))
    return rows


def eval_clean(part: EvalPart, root: Path, catalog: api.CatalogPaths, progress: bool) -> Path:
    """One eval part fetched (when missing) and cleaned with its settings; only the clean
    artifact is made (no tokenizer: each candidate encodes the text with its own)."""
    from corpuskit.build import build_clean
    from corpuskit.mixture import is_mix
    from corpuskit.paths import raw_dir
    from corpuskit.shards import existing_manifest
    from corpuskit.slices import sliced_entry

    entry = sliced_entry(api.load_catalog(catalog), part.corpus)
    if is_mix(entry):
        raise CorpuskitError(
            f"eval corpus {part.corpus!r} is a mixture; name its parts as eval components"
        )
    config = api.build_settings(entry, part.recipe, part.settings, {"tokenizer": "byte"})
    config.validate()
    if existing_manifest(raw_dir(root, entry.name)) is None:
        api.fetch(part.corpus, data_dir=root, progress=progress, catalog=catalog)
    clean_dir, _, _ = build_clean(entry, root, config, progress=progress)
    return clean_dir


def _candidate_settings(spec: AblationSpec, candidate: Candidate) -> dict[str, Any]:
    return {**candidate.settings, "tokenizer": spec.tokenizer_of(candidate)}


def _overrides(spec: AblationSpec, seed: int, tokens: int) -> list[str]:
    fixed = [f"seed={seed}", f"max_tokens={tokens}", "max_steps=none", "epochs=none"]
    return [f"{k}={'none' if v is None else v}" for k, v in spec.set.items()] + fixed


def _train_config(spec: AblationSpec, seed: int, tokens: int) -> Any:
    from corpuskit.train import TrainConfig

    try:
        config = TrainConfig.from_preset(spec.model, spec.preset,
                                         overrides=_overrides(spec, seed, tokens))
        config.validate()
    except ValueError as exc:
        raise CorpuskitError(f"ablation spec: model/preset/set: {exc}") from None
    return config


def _tokens_for(spec: AblationSpec, meta: dict[str, Any]) -> int:
    """The run length in tokens: the budget, or the budget's bytes at this build's ratio."""
    if spec.budget.tokens is not None:
        return spec.budget.tokens
    train = meta["splits"]["train"]
    assert spec.budget.bytes is not None
    return max(1, round(spec.budget.bytes * train["tokens"] / max(train["bytes"], 1)))


def _run(spec: AblationSpec, build_dir: Path, seed: int, tokens: int, name: str, root: Path,
         progress: bool, log: Callable[[str], None]) -> tuple[Path, str]:
    """Train (or reuse, or resume) one run; returns its folder and what happened."""
    from corpuskit.train.checkpoint import read_eval, read_run_config

    config = _train_config(spec, seed, tokens)
    run_dir = runs_root(root) / name
    if (run_dir / "config.yaml").is_file():
        saved, data = read_run_config(run_dir)
        differs = saved.differences(config)
        if Path(data["build_dir"]).resolve() != build_dir.resolve():
            differs.append("build_dir")
        if differs:
            raise CorpuskitError(
                f"run {name!r} exists with other settings ({', '.join(differs)}); remove "
                f"{run_dir} or give the ablation another name"
            )
        if read_eval(run_dir) is not None:
            return run_dir, "reused"
        api.train(resume=str(run_dir), data_dir=root, progress=progress, log=log)
        return run_dir, "resumed"
    if run_dir.exists():  # train would pick "<name>-2": the run could not be found again
        raise CorpuskitError(f"{run_dir} exists but is not a run (no config.yaml); remove it")
    api.train(str(build_dir), model=spec.model, preset=spec.preset, data_dir=root,
              run_name=name, overrides=_overrides(spec, seed, tokens), progress=progress,
              log=log)
    return run_dir, "trained"


def _candidate(spec: AblationSpec, candidate: Candidate, evalset: EvalSet, root: Path,
               catalog: api.CatalogPaths, progress: bool, log: Callable[[str], None]
               ) -> list[dict[str, Any]]:
    """Build one candidate and train its seeds; a record per run."""
    log(f"[ablate] candidate {candidate.name}: {candidate.corpus}")
    result = api.build(candidate.corpus, data_dir=root, progress=progress, catalog=catalog,
                       **_build_kwargs(_candidate_settings(spec, candidate), candidate.recipe))
    build_dir, meta, reused = ablation_build(spec, candidate, result, evalset, root)
    tokens = _tokens_for(spec, meta)
    records = []
    for seed in spec.seeds:
        name = run_name(spec, candidate, seed)
        run_dir, status = _run(spec, build_dir, seed, tokens, name, root, progress, log)
        log(f"[ablate] {name}: {status}")
        records.append(_record(candidate, seed, run_dir, status, result, build_dir, meta,
                               reused))
    return records


def _record(candidate: Candidate, seed: int, run_dir: Path, status: str, result: Any,
            build_dir: Path, meta: dict[str, Any], reused: bool) -> dict[str, Any]:
    from corpuskit.train.checkpoint import read_eval

    final = read_eval(run_dir) or {}
    val = final.get("val") or {}
    train = final.get("train") or {}
    return {
        "candidate": candidate.name, "seed": seed, "run": run_dir.name, "path": str(run_dir),
        "status": status, "bits_per_byte": val.get("bits_per_byte"), "val_loss": val.get("loss"),
        "components": {k: m.get("bits_per_byte") for k, m in (val.get("components") or {}).items()},
        "trained_tokens": train.get("tokens"), "steps": train.get("steps"),
        "build_dir": str(build_dir), "build_reused": reused,
        "tokens_dir": str(result.tokens_dir), "clean_dir": str(result.clean_dir),
        "train_split": meta["splits"]["train"],
        "decontaminated": (meta.get("ablation") or {}).get("decontaminated"),
    }


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def verdict(best: tuple[float, float | None], other: tuple[float, float | None]) -> str:
    """How a candidate's mean compares with the best one's, by the noise rule."""
    if best[1] is None or other[1] is None:
        return f"+{other[0] - best[0]:.4f} (one seed: spread unknown)"
    combined = math.sqrt(best[1] ** 2 + other[1] ** 2)
    diff = other[0] - best[0]
    if diff < NOISE_SIGMAS * combined:
        return f"within noise of best (+{diff:.4f} < {NOISE_SIGMAS:g} x {combined:.4f})"
    return f"worse than best (+{diff:.4f} >= {NOISE_SIGMAS:g} x {combined:.4f})"


def _component_means(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per eval component, the mean bits per byte over the runs (empty without components)."""
    names = sorted({k for r in runs for k in r["components"]})
    return {k: sum(float(r["components"][k]) for r in runs) / len(runs) for k in names}


def summarize(spec: AblationSpec, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per candidate, best (lowest mean bits per byte) first."""
    rows = []
    for candidate in spec.candidates:
        mine = [r for r in runs if r["candidate"] == candidate.name]
        scores = [float(r["bits_per_byte"]) for r in mine if r["bits_per_byte"] is not None]
        if len(scores) != len(mine):
            raise CorpuskitError(
                f"candidate {candidate.name!r}: a run has no bits per byte in its eval.json; "
                "its build records no byte counts"
            )
        mean, std = _mean_std(scores)
        rows.append({"candidate": candidate.name, "corpus": candidate.corpus,
                     "tokenizer": spec.tokenizer_of(candidate), "seeds": len(scores),
                     "bits_per_byte": mean, "std": std, "per_seed": scores,
                     "trained_tokens": mine[0]["trained_tokens"],
                     "train_documents": mine[0]["train_split"]["documents"],
                     "decontaminated": mine[0]["decontaminated"],
                     "components": _component_means(mine)})
    rows.sort(key=lambda r: r["bits_per_byte"])
    best = (rows[0]["bits_per_byte"], rows[0]["std"])
    for i, row in enumerate(rows):
        row["verdict"] = "best" if i == 0 else verdict(best, (row["bits_per_byte"], row["std"]))
    return rows


def check_equal_budget(spec: AblationSpec, runs: list[dict[str, Any]]) -> None:
    """With a token budget every run must have trained on the same number of tokens."""
    counts = {r["run"]: r["trained_tokens"] for r in runs}
    if spec.budget.tokens is not None and len(set(counts.values())) > 1:
        raise CorpuskitError(
            f"runs trained on unequal token counts {counts}; the comparison would be unfair"
        )


def ablate(spec: AblationSpec, root: Path, *, catalog: api.CatalogPaths = (),
           progress: bool = True, log: Callable[[str], None] = print,
           write_report: bool = True) -> AblationResult:
    """Run (or bring up to date) every candidate of the spec; see the module docstring."""
    check_spec(spec, catalog)
    cleans = []
    for part in spec.eval.parts():
        log(f"[ablate] eval set: {part.corpus} split {part.split}")
        cleans.append((part, eval_clean(part, root, catalog, progress)))
    evalset = load_eval_set(spec, cleans)
    runs: list[dict[str, Any]] = []
    for candidate in spec.candidates:
        runs.extend(_candidate(spec, candidate, evalset, root, catalog, progress, log))
    check_equal_budget(spec, runs)
    rule = (f"within noise: |mean difference| < {NOISE_SIGMAS:g} x sqrt(std1^2 + std2^2), "
            "std the sample standard deviation over seeds")
    budget = spec.budget.model_dump(exclude_none=True)
    folder = ablation_folder(root, spec.name)
    result = AblationResult(spec.name, folder, summarize(spec, runs), runs,
                            evalset.provenance, budget, rule=rule)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / RESULT, {**result.as_dict(), "spec": spec.model_dump()})
    if write_report:
        from corpuskit.ablate_report import write_ablation_report

        result.html = write_ablation_report(result, spec)
        write_json_atomic(folder / RESULT, {**result.as_dict(), "spec": spec.model_dump()})
    return result


def ablation_runs(root: Path, name: str) -> list[Path] | None:
    """The run folders of a finished ablation named ``name`` (None when there is none), so that
    ``corpuskit compare NAME`` shows them together."""
    path = ablation_folder(root, name) / RESULT
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CorpuskitError(f"{path} is damaged; run `corpuskit ablate` again") from None
    return [runs_root(root) / r["run"] for r in data.get("runs", [])]


def format_table(result: AblationResult) -> str:
    """The table the CLI prints."""
    lines = [f"ablation {result.name}: bits per byte on {result.eval['corpus']} "
             f"{result.eval['split']} ({result.eval['documents']:,} documents), "
             f"budget {_budget_text(result.budget)}"]
    width = max(len(r["candidate"]) for r in result.rows)
    for r in result.rows:
        std = f"± {r['std']:.4f}" if r["std"] is not None else "(1 seed)"
        lines.append(f"  {r['candidate']:<{width}}  {r['bits_per_byte']:.4f} {std:<9}  "
                     f"{r['trained_tokens']:,} tokens  {r['verdict']}")
        if r["components"]:
            parts = ", ".join(f"{k} {v:.4f}" for k, v in r["components"].items())
            lines.append(f"  {'':<{width}}  per eval component: {parts}")
    lines.append(f"  {result.rule}")
    if result.html is not None:
        lines.append(f"report: {result.html}")
    return "\n".join(lines)


def _budget_text(budget: dict[str, Any]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in budget.items())
