"""The report's charts: matplotlib figures rendered to PNG bytes with the Agg backend.

Figures are built with ``matplotlib.figure.Figure`` directly (no ``pyplot``): no global state, no
GUI backend, safe in any thread or headless machine. PNGs are written without a timestamp so
that the same build gives the same files. Every function returns ``None`` when it has nothing to
draw, and the page then says so instead of showing an empty plot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

WIDTH = 9.0
DPI = 100
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _color(name: str, i: int) -> str:
    return COLORS.get(name, _PALETTE[i % len(_PALETTE)])


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _human(n: float, _pos: Any = None) -> str:
    """Axis ticks: 950, 1.5k, 12M (not 1.5e+06)."""
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:g}{unit}" if unit == "" or n == int(n) else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def length_histograms(
    chars: Mapping[str, np.ndarray], tokens: Mapping[str, np.ndarray]
) -> bytes | None:
    """Document length distributions, characters and tokens, one step histogram per split."""
    panels = [(t, d) for t, d in (("characters", chars), ("tokens", tokens)) if d]
    panels = [(t, d) for t, d in panels if any(len(v) for v in d.values())]
    if not panels:
        return None
    fig = Figure(figsize=(WIDTH, 3.4))
    for k, (title, data) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        low = max(1, min(int(v.min()) for v in data.values() if len(v)))
        top = max(int(v.max()) for v in data.values() if len(v))
        # Lengths span orders of magnitude in real corpora (log bins); a narrow range reads
        # better on a linear axis.
        log_scale = top / low >= 20
        space = np.geomspace if log_scale else np.linspace
        bins = np.unique(space(low, max(low + 1, top + 1), 40).astype(np.int64))
        for i, (split, values) in enumerate(data.items()):
            if len(values):
                ax.hist(
                    np.maximum(values, 1), bins=bins, histtype="step", linewidth=1.6,
                    label=f"{split} ({len(values):,})", color=_color(split, i),
                )
        if log_scale:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"document length ({title}{', log scale' if log_scale else ''})")
        ax.set_ylabel("documents")
        ax.set_title(f"Length in {title}")
        ax.legend(fontsize=8)
    return _png(fig)


def funnel(points: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Documents and bytes remaining after each stage."""
    if len(points) < 2:
        return None
    fig = Figure(figsize=(WIDTH, 3.6))
    labels = [str(p["stage"]) for p in points]
    x = np.arange(len(points))
    for k, key in enumerate(("documents", "bytes")):
        ax = fig.add_subplot(1, 2, k + 1)
        values = [int(p.get(key) or 0) for p in points]
        bars = ax.bar(x, values, color=_PALETTE[k], alpha=0.85)
        first = values[0] or 1
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(f"{100 * v / first:.0f}%", (bar.get_x() + bar.get_width() / 2, v),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        ax.set_title(f"{key.capitalize()} after each stage")
        ax.set_ylim(0, max(values) * 1.15 or 1)
    return _png(fig)


def drop_reasons(stages: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Documents dropped, per stage and reason."""
    rows = [
        (f"{s['stage']}: {reason}", int(n))
        for s in stages
        for reason, n in sorted((s.get("dropped") or {}).items())
        if n
    ]
    if not rows:
        return None
    fig = Figure(figsize=(WIDTH, 0.9 + 0.32 * len(rows)))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [n for _, n in rows], color="#d62728", alpha=0.8)
    ax.set_yticks(y, [label for label, _ in rows], fontsize=8)
    for yi, (_, n) in zip(y, rows, strict=True):
        ax.annotate(f" {n:,}", (n, yi), va="center", fontsize=7)
    ax.set_xlabel("documents dropped")
    ax.set_title("Drop reasons")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(_human))
    return _png(fig)


def cluster_sizes(histogram: Mapping[str, Mapping[str, int]]) -> bytes | None:
    """How many duplicate clusters have each size (kept document included)."""
    if not histogram:
        return None
    fig = Figure(figsize=(WIDTH, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    kinds = sorted(histogram)
    sizes = sorted({int(s) for h in histogram.values() for s in h})
    width = 0.8 / len(kinds)
    x = np.arange(len(sizes))
    peak = 0
    for i, kind in enumerate(kinds):
        counts = [histogram[kind].get(str(s), 0) for s in sizes]
        peak = max(peak, *counts)
        ax.bar(x + i * width - 0.4 + width / 2, counts, width, label=kind, color=_PALETTE[i])
    ax.set_xticks(x, [str(s) for s in sizes], fontsize=8)
    ax.set_xlim(-0.5, max(len(sizes), 6) - 0.5)  # one or two sizes: no full-width bars
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    if peak >= 100:  # pairs dominate real corpora; a log axis keeps the large clusters visible
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Duplicate clusters by size")
    ax.legend(fontsize=8)
    return _png(fig)


def language_mix(languages: Mapping[str, Mapping[str, int]], k: int = 15) -> bytes | None:
    """Documents per language (the ``language`` column), stacked by split."""
    totals: dict[str, int] = {}
    for counts in languages.values():
        for lang, n in counts.items():
            totals[lang] = totals.get(lang, 0) + int(n)
    if not totals:
        return None
    top = sorted(totals, key=lambda lang: (-totals[lang], lang))[:k]
    fig = Figure(figsize=(WIDTH, 1.6 + 0.3 * len(top)))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(top))[::-1]
    left = np.zeros(len(top))
    for i, (split, counts) in enumerate(languages.items()):
        values = np.array([counts.get(lang, 0) for lang in top], dtype=float)
        ax.barh(y, values, left=left, label=split, color=_color(split, i))
        left += values
    ax.set_yticks(y, top, fontsize=8)
    ax.set_xlabel("documents")
    ax.set_title("Language mix" + (f" (top {k})" if len(totals) > k else ""))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def ratios(values: Mapping[str, np.ndarray], language: str) -> bytes | None:
    """Histograms of the per-document stopword share and symbol share (on the sample)."""
    if not values or not any(len(v) for v in values.values()):
        return None
    fig = Figure(figsize=(WIDTH, 3.2))
    titles = {
        "stopword_ratio": f"Stopword share of words ({language})",
        "symbol_ratio": "Symbol share of non-space characters",
    }
    for k, (key, data) in enumerate(values.items()):
        ax = fig.add_subplot(1, len(values), k + 1)
        # Symbol shares of prose sit near zero: zoom to where the documents are.
        top = 1.0 if key == "stopword_ratio" or not len(data) else float(
            min(1.0, max(0.05, 1.2 * np.percentile(data, 99.5)))
        )
        ax.hist(np.clip(data, 0, top), bins=np.linspace(0, top, 41), color=_PALETTE[k + 2],
                alpha=0.85)
        if len(data):
            ax.axvline(float(np.median(data)), color="black", linestyle="--", linewidth=1,
                       label=f"median {np.median(data):.2f}")
            ax.legend(fontsize=8)
        ax.set_title(titles.get(key, key), fontsize=10)
        ax.set_xlabel("share")
        ax.set_ylabel("documents")
    return _png(fig)


def top_items(
    panels: Sequence[tuple[str, Sequence[tuple[str, int]]]], xlabel: str = "count"
) -> bytes | None:
    """Side-by-side horizontal bar charts of the most frequent items (tokens, n-grams)."""
    panels = [(t, rows) for t, rows in panels if rows]
    if not panels:
        return None
    height = max(len(rows) for _, rows in panels)
    fig = Figure(figsize=(WIDTH, 0.9 + 0.24 * height))
    for k, (title, rows) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        y = np.arange(len(rows))[::-1]
        ax.barh(y, [c for _, c in rows], color=_PALETTE[k], alpha=0.85)
        ax.set_yticks(y, [_label(s) for s, _ in rows], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
    return _png(fig)


def _label(text: str, width: int = 28) -> str:
    """A tick label that neither overflows nor is read by matplotlib as mathtext."""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


def bytes_per_token(
    per_split: Mapping[str, float], per_document: Mapping[str, np.ndarray]
) -> bytes | None:
    """Bytes per token: the split averages, and the distribution over documents."""
    if not per_split:
        return None
    has_docs = any(len(v) for v in per_document.values())
    fig = Figure(figsize=(WIDTH, 3.2))
    ax = fig.add_subplot(1, 2 if has_docs else 1, 1)
    names = list(per_split)
    bars = ax.bar(names, [per_split[n] for n in names],
                  color=[_color(n, i) for i, n in enumerate(names)])
    for bar, n in zip(bars, names, strict=True):
        ax.annotate(f"{per_split[n]:.2f}", (bar.get_x() + bar.get_width() / 2, per_split[n]),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("UTF-8 bytes per token")
    ax.set_title("Bytes per token, per split")
    ax.set_ylim(0, max(per_split.values()) * 1.2)
    if has_docs:
        ax2 = fig.add_subplot(1, 2, 2)
        low = min(float(np.percentile(v, 0.5)) for v in per_document.values() if len(v))
        top = max(float(np.percentile(v, 99.5)) for v in per_document.values() if len(v))
        bins = np.linspace(low * 0.95, max(top * 1.05, low * 0.95 + 0.1), 40)
        for i, (split, values) in enumerate(per_document.items()):
            if len(values):
                ax2.hist(np.clip(values, bins[0], bins[-1]), bins=bins, histtype="step",
                         linewidth=1.6, label=split, color=_color(split, i))
        ax2.set_xlabel("bytes per token (per document)")
        ax2.set_ylabel("documents")
        ax2.set_title("Bytes per token over documents")
        ax2.legend(fontsize=8)
    return _png(fig)


def run_curves(runs: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Loss and perplexity against step: training loss as lines, evaluations as markers."""
    if not any(r["train"] or r["eval"] for r in runs):
        return None
    fig = Figure(figsize=(WIDTH, 3.6))
    ax_loss = fig.add_subplot(1, 2, 1)
    ax_ppl = fig.add_subplot(1, 2, 2)
    for i, run in enumerate(runs):
        color = _PALETTE[i % len(_PALETTE)]
        if run["train"]:
            steps, losses = zip(*run["train"], strict=True)
            ax_loss.plot(steps, losses, color=color, linewidth=1.2, label=f"{run['name']} train")
            ppl = [math.exp(min(x, 50.0)) for x in losses]
            ax_ppl.plot(steps, ppl, color=color, linewidth=1.2, label=f"{run['name']} train")
        for j, (split, points) in enumerate(sorted(run["eval"].items())):
            steps = [p[0] for p in points]
            losses = [p[1] for p in points]
            ppl = [p[2] if p[2] is not None else math.exp(min(p[1], 50.0)) for p in points]
            marker = "os^"[j % 3]
            ax_loss.plot(steps, losses, marker=marker, linestyle="--", color=color,
                         label=f"{run['name']} {split}")
            ax_ppl.plot(steps, ppl, marker=marker, linestyle="--", color=color,
                        label=f"{run['name']} {split}")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (nats/token)")
    ax_loss.set_title("Loss")
    ax_ppl.set_xlabel("step")
    ax_ppl.set_ylabel("perplexity (log scale)")
    ax_ppl.set_yscale("log")
    ax_ppl.set_title("Perplexity")
    ax_loss.legend(fontsize=7)
    return _png(fig)
