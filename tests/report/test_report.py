"""``corpuskit report`` on a small real build (fetched, cleaned, deduplicated and packed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.cli import cli
from corpuskit.report import stats as st

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_run(root: Path, name: str, build_dir: Path) -> Path:
    """A run folder in the trainer's format (``metrics.jsonl``, ``eval.json``), without training:
    the curves' maths is the trainer's business, the report only has to draw what is logged."""
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"model: gpt\ndata: {{build: {build_dir}}}\n")
    lines = []
    for step in range(0, 101, 10):
        loss = 6.0 * math.exp(-step / 60) + 2.0
        lines.append({"kind": "train", "step": step, "loss": loss, "lr": 1e-3, "tokens": step})
        if step % 50 == 0:
            lines.append({"kind": "eval", "step": step, "split": "val", "loss": loss + 0.1,
                          "perplexity": math.exp(loss + 0.1), "tokens": 500})
    text = "".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "train", "ste'  # torn line
    (run / "metrics.jsonl").write_text(text)
    (run / "eval.json").write_text(json.dumps({
        "val": {"loss": 2.1, "perplexity": math.exp(2.1), "bits_per_byte": 1.5},
        "initial_val_loss": 8.0,
        "train": {"model": "gpt", "preset": "tiny", "params": 1000, "steps": 100},
    }))
    return run


def test_report_of_a_real_build(data_dir: Path, tiny_corpus: str, tmp_path: Path) -> None:
    build = api.build(tiny_corpus, progress=False, workers=1, min_chars=100, near_dedup=True)
    run = _fake_run(data_dir, "tiny-gpt-tiny", build.tokens_dir)
    result = api.report(tiny_corpus, runs=[run.name])

    # Default location: <data>/reports/<corpus>/<tokens fingerprint>/
    assert result.out_dir == data_dir / "reports" / "tiny" / build.tokens_dir.name
    names = {p.stem for p in result.charts}
    assert {"funnel", "drop_reasons", "duplicate_clusters", "lengths", "bytes_per_token",
            "ratios", "ngrams", "top_tokens", "runs"} <= names
    for png in result.charts:
        assert png.read_bytes().startswith(PNG_MAGIC)

    page = result.html.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(result.charts)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    # Manifest facts: license, fingerprints of every artifact.
    for fact in ("CC0-1.0", build.clean_manifest["fingerprint"], build.meta["fingerprint"],
                 build.clean_manifest["inputs"]["raw"]):
        assert fact in page
    # Dropped samples per reason, and the duplicates the fixture planted.
    assert "length: too_short" in page and "exact_dedup: exact_duplicate" in page
    assert "tiny/doc0011.txt" in page  # the upper-cased copy of doc 3, dropped as a duplicate

    summary = json.loads((result.out_dir / "report.json").read_text())
    funnel = summary["funnel"]
    assert funnel["points"][0] == {"stage": "input", "documents": 200,
                                   "bytes": funnel["raw_bytes"]}
    stages = [p["stage"] for p in funnel["points"]]
    assert stages[:3] == ["input", "clean", "length"] and stages.index("exact_dedup") > 2
    docs = [p["documents"] for p in funnel["points"]]
    assert docs == sorted(docs, reverse=True)
    assert docs[-1] == sum(s["documents"] for s in build.meta["splits"].values())
    exact = summary["duplicates"]["clusters"]["exact"]
    assert exact == {"clusters": 2, "documents_removed": 3, "largest": 3}
    assert summary["bytes_per_token"].keys() == build.meta["splits"].keys()
    # Token lengths come from the packed offsets: they add up to the packed token counts.
    rows = {(r["split"], r["unit"]): r for r in summary["lengths"]}
    for split, s in build.meta["splits"].items():
        tokens = rows[(split, "tokens")]
        assert tokens["documents"] == s["documents"]
        assert round(tokens["mean"] * s["documents"]) == s["tokens"] - s["documents"]  # EOS
    assert 0.2 < summary["text"]["median_stopword_ratio"] < 0.8
    assert summary["top_tokens"]["top"][0]["count"] > 0
    assert summary["runs"][0]["run"] == "tiny-gpt-tiny"
    assert summary["runs"][0]["val_loss"] == 2.1


def test_report_cli_json_out_and_clean_artifact(
    data_dir: Path, tiny_corpus: str, tmp_path: Path
) -> None:
    build = api.build(tiny_corpus, progress=False, workers=1)
    out = tmp_path / "my-report"
    result = CliRunner().invoke(cli, ["report", str(build.tokens_dir), "--out", str(out),
                                      "--json", "--sample-docs", "10"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["html"] == str(out / "report.html") and (out / "report.html").is_file()
    assert data["text"]["sample_documents"] <= 12  # every ceil(N/10)-th document

    # A clean artifact alone still gets a report: no token charts, the rest is there.
    clean_only = api.report(str(build.clean_dir), out=tmp_path / "clean")
    names = {p.stem for p in clean_only.charts}
    assert "lengths" in names and "funnel" in names
    assert "top_tokens" not in names and "bytes_per_token" not in names

    missing = CliRunner().invoke(cli, ["report", "no-such-corpus"])
    assert missing.exit_code != 0


def test_report_survives_missing_side_files(data_dir: Path, tiny_corpus: str) -> None:
    """Another build version may lack duplicates.parquet, dropped samples or per-stage stats."""
    build = api.build(tiny_corpus, progress=False, workers=1)
    (build.clean_dir / "duplicates.parquet").unlink()
    (build.clean_dir / "dropped-samples.jsonl").write_text("not json\n")
    result = api.report(tiny_corpus)
    page = result.html.read_text()
    assert "No dropped-document samples" in page
    # Without the parquet file the manifest's largest clusters still give the sizes.
    assert result.summary["duplicates"]["clusters"]["exact"]["largest"] == 3


def test_language_column_and_sampling(tmp_path: Path) -> None:
    """The scan reads a ``language`` column when there is one, and samples evenly."""
    import pyarrow as pa

    from corpuskit.shards import ShardWriter, document_schema

    writer = ShardWriter(tmp_path, document_schema(["language"]), batch_rows=7)
    for i in range(100):
        writer.write({"id": f"d{i}", "text": "word " * (i + 1), "split": "train" if i % 5 else
                      "val", "source": "t", "language": "en" if i % 3 else "fr"})
    shards = writer.close()
    manifest = {"splits": writer.split_counts, "shards": [s.__dict__ for s in shards]}
    scan = st.scan_documents(tmp_path, manifest, sample_docs=10)
    assert scan.documents == 100 and len(scan.sample) == 10
    assert scan.languages is not None
    assert sum(scan.languages["train"].values()) == 80
    assert scan.languages["val"]["fr"] + scan.languages["train"]["fr"] == 34
    index, chars, _ = scan.lengths["val"].arrays()
    assert index.tolist() == list(range(20)) and chars[0] == 5
    assert pa.__version__  # the shard really was an Arrow file


def test_stage_order_and_text_measures() -> None:
    manifest = {
        "config": {"stages": [{"name": "clean"}, {"name": "length"}, {"name": "quality"}]},
        "stats": {  # sorted keys, as on disk
            "clean": {"documents_in": 10, "documents_out": 10},
            "exact_dedup": {"documents_in": 8, "documents_out": 7},
            "length": {"documents_in": 10, "documents_out": 9},
            "quality": {"documents_in": 9, "documents_out": 8},
            "stopwords": {"documents_in": 7, "documents_out": 7},
        },
    }
    assert [n for n, _ in st.ordered_stages(manifest)] == [
        "clean", "length", "quality", "exact_dedup", "stopwords"
    ]
    measured = st.text_stats(["the cat and the dog", "$$ ##", ""], {"the", "and"})
    assert np.allclose(measured.stopword_ratio, [0.6, 0.0, 0.0])
    assert np.allclose(measured.symbol_ratio, [0.0, 1.0, 0.0])
    assert st.text_stats(["a b a b", "a b"], set()).top(2, k=1) == [("a b", 3)]


@pytest.mark.parametrize("bad", ["", "{}", "[1, 2]"])
def test_read_run_tolerates_odd_logs(tmp_path: Path, bad: str) -> None:
    (tmp_path / "metrics.jsonl").write_text(bad + "\n" + json.dumps(
        {"kind": "train", "step": 1, "loss": 3.0}) + "\n")
    run = st.read_run(tmp_path)
    assert run["train"] == [(1, 3.0)] and run["final"] == {}
