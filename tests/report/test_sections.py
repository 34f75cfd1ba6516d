"""The report's sections one at a time, on artifacts that lack what a section draws from: each
says so on the page (and leaves its summary key empty) instead of failing the report."""

from __future__ import annotations

import json
from pathlib import Path

from corpuskit.report import sections
from corpuskit.report import stats as st
from corpuskit.report.html import Page


def _bare_report(tmp_path: Path) -> sections.Report:
    """A clean artifact whose manifest has no stats and no splits, and nothing else."""
    art = st.Artifacts(
        corpus="bare", root=tmp_path, tokens_dir=None, clean_dir=tmp_path, raw_dir=None,
        meta=None, clean_manifest={"kind": "clean"}, raw_manifest=None,
    )
    return sections.Report(art, {"languages": ["en"]}, Page(title="t", subtitle="s"), {})


def test_sections_without_their_sources_say_what_is_missing(tmp_path: Path) -> None:
    report = _bare_report(tmp_path)
    sections.funnel(report)
    sections.dropped(report)
    sections.bytes_per_token(report, sections.Documents(None, {}, {}, {}))
    sections.languages(report, sections.Documents(None, {}, {}, {}))
    sections.text(report, sections.Documents(None, {}, {}, {}))
    sections.top_tokens(report)
    sections.kept(report, sections.Documents(None, {}, {}, {}))
    sections.runs(report, [])
    page = report.page.render()
    for sentence in (
        "No per-stage statistics in the clean manifest.",
        "No dropped-document samples were recorded",
        "No token build: bytes per token unknown.",
        "languages listed in the catalog: en.",
        "No clean documents to sample.",
        "No token build: no token counts.",
        "No clean documents to show.",
    ):
        assert sentence in page, sentence
    assert 'id="runs"' not in page  # no runs asked for: no section at all
    assert report.pngs == {}
    assert report.summary == {
        "funnel": None, "dropped_samples": {}, "bytes_per_token": {}, "top_tokens": None,
    }


def test_dropped_samples_are_grouped_by_reason_and_capped(tmp_path: Path) -> None:
    lines = [{"stage": "length", "reason": "too_short", "id": f"d{i}", "text": "x"}
             for i in range(5)]
    lines.append({"stage": "exact_dedup", "reason": "exact_duplicate", "id": "e", "text": "y"})
    text = "\n".join(json.dumps(x) for x in lines) + '\n[1, 2]\n{"torn": '
    (tmp_path / "dropped-samples.jsonl").write_text(text, encoding="utf-8")
    report = _bare_report(tmp_path)
    sections.dropped(report)
    assert report.summary["dropped_samples"] == {
        "length: too_short": sections.DROPPED_SAMPLES_PER_REASON,
        "exact_dedup: exact_duplicate": 1,
    }
    assert "<h3>length: too_short</h3>" in report.page.render()


def test_a_chart_with_nothing_to_draw_leaves_its_sentence(tmp_path: Path) -> None:
    report = _bare_report(tmp_path)
    report.chart("x", None, "caption", "nothing to draw")
    report.chart("y", b"\x89PNG", "a caption", "unused")
    assert report.pngs == {"y": b"\x89PNG"}
    page = report.page.render()
    assert "nothing to draw" in page and "a caption" in page and "unused" not in page
