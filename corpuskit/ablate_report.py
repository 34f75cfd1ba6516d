"""The ablation's report page: loss curves of every candidate on one chart (bits per byte on the
shared evaluation set, against tokens trained), final scores with their spread, what each recipe
removed (the clean manifest's per-stage funnel), and where every number came from.

Built from the report package's pieces (``report/html.Page``, ``report/runs.read_run``, the
funnel of ``report/stats``), so it looks and reads like ``corpuskit report``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corpuskit.ablate_spec import AblationSpec
from corpuskit.paths import raw_dir
from corpuskit.report.html import Page
from corpuskit.report.stats import ordered_stages
from corpuskit.shards import existing_manifest


def _curves(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per candidate, the eval bits per byte against step, averaged over its seeds."""
    import json

    points: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        path = Path(run["path"]) / "metrics.jsonl"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("kind") == "eval" and \
                    record.get("bits_per_byte") is not None:
                step = int(record["step"])
                by_step = points.setdefault(run["candidate"], {})
                by_step.setdefault(step, []).append(float(record["bits_per_byte"]))
    return {c: [(s, sum(v) / len(v)) for s, v in sorted(steps.items())]
            for c, steps in points.items()}


def curves_chart(curves: Mapping[str, list[tuple[int, float]]],
                 tokens_per_step: Mapping[str, float]) -> bytes | None:
    """One chart, one line per candidate: eval bits per byte against tokens trained."""
    if not any(curves.values()):
        return None
    from matplotlib.figure import Figure

    from corpuskit.report.charts import _PALETTE, WIDTH, _png

    fig = Figure(figsize=(WIDTH, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, pts) in enumerate(sorted(curves.items())):
        per_step = tokens_per_step.get(name) or 1.0
        ax.plot([s * per_step for s, _ in pts], [b for _, b in pts], marker="o",
                color=_PALETTE[i % len(_PALETTE)], label=name)
    ax.set_xlabel("tokens trained")
    ax.set_ylabel("bits per byte (shared eval set)")
    ax.set_title("Evaluation loss during training (mean over seeds)")
    ax.legend(fontsize=8)
    return _png(fig)


def funnel_rows(clean_dir: str) -> list[dict[str, Any]]:
    """What each stage of a candidate's build removed (documents and bytes, and why)."""
    manifest = existing_manifest(Path(clean_dir))
    if manifest is None or manifest.get("kind") != "clean":
        return []
    rows = []
    for name, st in ordered_stages(manifest):
        dropped = st.get("dropped") or {}
        rows.append({
            "stage": name, "documents_in": st.get("documents_in"),
            "documents_out": st.get("documents_out"), "bytes_in": st.get("bytes_in"),
            "bytes_out": st.get("bytes_out"),
            "dropped": ", ".join(f"{k}={v:,}" for k, v in dropped.items()) or "none",
        })
    return rows


def _raw(clean_dir: Path, clean: Mapping[str, Any]) -> dict[str, Any]:
    """The fetched artifact a clean one was made from: its fingerprint, source and pins."""
    if clean.get("kind") != "clean":
        return {}
    raw = existing_manifest(raw_dir(clean_dir.parents[2], str(clean.get("corpus")))) or {}
    return {"fingerprint": raw.get("fingerprint"), "source": (raw.get("config") or {}).get(
        "source"), "resolved": raw.get("resolved")}


def _provenance(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    tokens = existing_manifest(Path(record["tokens_dir"])) or {}
    clean = existing_manifest(Path(record["clean_dir"])) or {}
    return [
        ("fetched (source, pins)", _raw(Path(record["clean_dir"]), clean)),
        ("corpus inputs", clean.get("inputs") or tokens.get("inputs")),
        ("clean fingerprint", clean.get("fingerprint")),
        ("token build", record["tokens_dir"]),
        ("token fingerprint", tokens.get("fingerprint")),
        ("ablation build (decontaminated train + eval as val)", record["build_dir"]),
        ("train documents dropped as contaminated", record["decontaminated"]),
        ("runs", ", ".join(record["runs"])),
    ]


def _tokens_per_step(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for run in runs:
        if run.get("steps") and run.get("trained_tokens"):
            out[run["candidate"]] = run["trained_tokens"] / run["steps"]
    return out


def _sections(page: Page, result: Any, spec: AblationSpec) -> None:
    page.section("scores", "Bits per byte on the shared evaluation set")
    page.paragraph(f"{result.rule}. Budget: {result.budget}; seeds: {spec.seeds}; model "
                   f"{spec.model}/{spec.preset} {spec.set or ''}.")
    page.table([{k: v for k, v in r.items() if k != "per_seed"} for r in result.rows])
    page.section("curves", "Loss curves")
    png = curves_chart(_curves(result.runs), _tokens_per_step(result.runs))
    if png is not None:
        page.chart("ablation_curves", png, "Eval bits per byte against tokens trained")
    page.section("funnel", "What each recipe removed")
    for candidate in spec.candidates:
        record = next(r for r in result.runs if r["candidate"] == candidate.name)
        page.heading(f"{candidate.name} ({candidate.corpus}, settings {candidate.settings})")
        rows = funnel_rows(record["clean_dir"])
        if rows:
            page.table(rows)
        else:
            page.paragraph("A mixture: see its components' builds.")
    page.section("provenance", "Provenance")
    page.facts([("eval set", result.eval)])
    for candidate in spec.candidates:
        mine = [r for r in result.runs if r["candidate"] == candidate.name]
        page.heading(candidate.name)
        page.facts(_provenance({**mine[0], "runs": [r["path"] for r in mine]}))
    page.section("runs", "Runs")
    page.table([{k: r[k] for k in ("run", "candidate", "seed", "status", "bits_per_byte",
                                   "trained_tokens", "steps")} for r in result.runs])


def write_ablation_report(result: Any, spec: AblationSpec) -> Path:
    """Write ``<data>/ablations/<name>/report.html`` (and its chart beside it)."""
    page = Page(f"Ablation {result.name}",
                f"{len(spec.candidates)} candidates x {len(spec.seeds)} seeds, scored on "
                f"{result.eval['corpus']} {result.eval['split']}")
    _sections(page, result, spec)
    folder = Path(result.folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = curves_chart(_curves(result.runs), _tokens_per_step(result.runs))
    if png is not None:
        (folder / "ablation_curves.png").write_bytes(png)
    out = folder / "report.html"
    tmp = out.with_name(".report.html.tmp")
    tmp.write_text(page.render(), encoding="utf-8")
    tmp.replace(out)
    return out

