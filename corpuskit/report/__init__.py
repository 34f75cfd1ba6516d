"""``corpuskit report``: one self-contained HTML page (plus PNG charts) about a build.

``stats`` gathers the numbers (manifests, one streaming pass over the clean shards, the packed
offsets via ``tokens``, run logs via ``runs``), ``charts`` draws them with matplotlib, ``html``
lays them out, and ``sections`` holds one function per section of the page. This module runs
the sections in order and writes ``report.html``, one PNG per chart and ``report.json`` (the
numbers, for scripts) into the output folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit import __version__
from corpuskit.report import sections
from corpuskit.report import stats as st
from corpuskit.report.html import Page

log = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"


@dataclass
class ReportResult:
    """Where the report went, and the numbers it shows (JSON-able)."""

    html: Path
    out_dir: Path
    charts: list[Path]
    summary: dict[str, Any] = field(repr=False)


def default_out_dir(art: st.Artifacts) -> Path:
    """``<data>/reports/<corpus>/<fingerprint>/`` (``clean-<fp>`` for a clean-only report)."""
    if art.tokens_dir is not None:
        name = art.tokens_dir.name
    else:
        assert art.clean_dir is not None
        name = f"clean-{art.clean_dir.name}"
    return art.root / "reports" / art.corpus / name


def _entry(art: st.Artifacts, fallback: Mapping[str, Any] | None) -> dict[str, Any]:
    entry = (art.raw_manifest or {}).get("entry")
    return dict(entry) if isinstance(entry, dict) else dict(fallback or {})


def _start(art: st.Artifacts, catalog_entry: Mapping[str, Any] | None) -> sections.Report:
    """An empty page titled after the corpus, and the summary's artifact paths."""
    entry = _entry(art, catalog_entry)
    summary: dict[str, Any] = {
        "corpus": art.corpus,
        "tokens_dir": str(art.tokens_dir) if art.tokens_dir else None,
        "clean_dir": str(art.clean_dir) if art.clean_dir else None,
        "raw_dir": str(art.raw_dir) if art.raw_dir else None,
        "notes": list(art.notes),
    }
    page = Page(
        title=f"corpuskit report: {entry.get('title') or art.corpus}",
        subtitle=f"{art.corpus} · build {art.tokens_dir or art.clean_dir} · "
        f"corpuskit {__version__}",
    )
    return sections.Report(art, entry, page, summary)


def build_report(
    build_dir: Path,
    root: Path,
    *,
    out_dir: Path | None = None,
    runs: Sequence[Path] = (),
    sample_docs: int = 2000,
    catalog_entry: Mapping[str, Any] | None = None,
) -> ReportResult:
    """Write the report of ``build_dir`` (a token build or a clean artifact) and its runs."""
    with st.timed("locate artifacts"):
        art = st.locate(build_dir, root)
    out = out_dir if out_dir is not None else default_out_dir(art)
    out.mkdir(parents=True, exist_ok=True)
    report = _start(art, catalog_entry)
    sections.overview(report)
    sections.funnel(report)
    sections.dropped(report)
    sections.duplicates(report)
    docs = sections.measure_documents(report, sample_docs)
    sections.lengths(report, docs)
    sections.bytes_per_token(report, docs)
    sections.languages(report, docs)
    sections.text(report, docs)
    sections.top_tokens(report)
    sections.kept(report, docs)
    sections.runs(report, runs)
    sections.files(report)
    written = _write(report, out)
    log.info("report: %s", out / REPORT_HTML)
    return ReportResult(out / REPORT_HTML, out, written, report.summary)


def _write(report: sections.Report, out: Path) -> list[Path]:
    """The charts as PNG files, then ``report.json`` and ``report.html``, each replaced whole."""
    with st.timed(f"write {len(report.pngs)} charts"):
        written = []
        for name, png in report.pngs.items():
            path = out / f"{name}.png"
            path.write_bytes(png)
            written.append(path)
        report.summary["charts"] = [p.name for p in written]
        text = json.dumps(report.summary, indent=2, default=_jsonable) + "\n"
        _write_text(out / REPORT_JSON, text)
        _write_text(out / REPORT_HTML, report.page.render())
    return written


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` whole: a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["REPORT_HTML", "REPORT_JSON", "ReportResult", "build_report", "default_out_dir"]
