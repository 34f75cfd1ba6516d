"""Runs side by side: one row per run folder, from its ``config.yaml`` and ``eval.json``.

Reads files only (no torch), so comparing finished runs is instant and works on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.train.checkpoint import read_eval, read_run_config


def compare(run_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """A row per run: model, preset, size, training cost and held-out metrics.

    Rows are sorted by validation loss (best first); a run without ``eval.json`` (still
    training, or interrupted) is listed last with ``status: "incomplete"``, and a run whose
    ``config.yaml`` or ``eval.json`` cannot be read with ``status: "damaged"`` and the reason in
    ``error`` (one bad run never hides the others). Metrics a model does not report are
    ``None``.
    """
    rows = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        try:
            rows.append(_row(run_dir))
        except CorpuskitError as exc:
            rows.append({"run": run_dir.name, "path": str(run_dir), "model": None,
                         "preset": None, "status": "damaged", "error": str(exc)})

    def order(row: dict[str, Any]) -> tuple[int, float]:
        loss = row.get("val_loss")
        rank = {"done": 0, "incomplete": 1}.get(row["status"], 2)
        return (rank, loss if loss is not None else math.inf)

    return sorted(rows, key=order)


def _external_row(run_dir: Path) -> dict[str, Any] | None:
    """The row of an ``eval --hf-model`` folder (see ``hf_model.record_hf_eval``): model
    ``hf``, its model type as the preset, no training numbers; None for a trained run."""
    from corpuskit.train.hf_model import EXTERNAL

    result = read_eval(run_dir)
    if result is None or EXTERNAL not in result:
        return None
    external = result[EXTERNAL] or {}
    row: dict[str, Any] = {
        "run": run_dir.name, "path": str(run_dir), "model": "hf",
        "preset": external.get("model_type") or None, "external_model": external.get("path"),
        "params": external.get("params"), "steps": None, "status": "done",
    }
    for split in ("val", "test"):
        metrics = result.get(split) or {}
        for key in ("loss", "perplexity", "accuracy", "bits_per_byte", "word_perplexity"):
            if key in metrics or key != "word_perplexity":
                row[f"{split}_{key}"] = metrics.get(key)
    return row


def _row(run_dir: Path) -> dict[str, Any]:
    external = _external_row(run_dir)
    if external is not None:
        return external
    config, data = read_run_config(run_dir, resolve=False)
    row: dict[str, Any] = {
        "run": run_dir.name, "path": str(run_dir), "model": config.model,
        "preset": config.preset, "corpus": data.get("corpus"),
        "tokenizer": data.get("tokenizer"), "status": "incomplete",
    }
    result = read_eval(run_dir)
    if result is None:
        return row
    summary = result.get("train", {})
    row.update(status="done", params=summary.get("params"), steps=summary.get("steps"),
               tokens=summary.get("tokens"), seconds=summary.get("seconds"),
               initial_val_loss=result.get("initial_val_loss"))
    for split in ("val", "test"):
        metrics = result.get(split) or {}
        for key in ("loss", "perplexity", "accuracy", "bits_per_byte"):
            row[f"{split}_{key}"] = metrics.get(key)
    return row
