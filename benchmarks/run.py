"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--only NAME]``.

Each benchmark module has ``run(quick) -> list[Result]``; contenders of one benchmark run side by
side in the same run on the same machine, and the table shows each one's rate relative to
corpuskit's. The machine, cores and package versions are printed first and stored with every
result (``--json``, default ``benchmarks/results/latest.json``, which git ignores).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from pathlib import Path

from benchmarks.common import Result, machine_info

BENCHMARKS = ["end_to_end", "near_dedup", "tokenize_pack", "memory", "executors"]
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def _groups(results: list[Result]) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for r in results:
        out.setdefault(r.benchmark, []).append(r)
    return out


def _reference(results: list[Result]) -> Result:
    """The corpuskit row the others are compared with (the equal-recall pick where there is
    one)."""
    ours = [r for r in results if r.contender.startswith("corpuskit")] or results
    picked = [r for r in ours if r.extra.get("equal_recall_pick")]
    return (picked or ours)[0]


def table(name: str, results: list[Result]) -> str:
    """A markdown table of one benchmark's contenders (copied into BENCHMARKS.md)."""
    ours = _reference(results)
    lines = [
        f"### {name}",
        "",
        "| contender | seconds | rate | vs corpuskit | notes |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        notes = []
        for key in (
            "documents_out",
            "tokens",
            "recall",
            "false_removals",
            "cpu_seconds",
            "docs_per_s",
            "peak_rss_mb",
            "input_mb",
        ):
            if key in r.extra:
                value = r.extra[key]
                notes.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
        if r.extra.get("equal_recall_pick"):
            notes.append("**equal-recall pick**")
        lines.append(
            f"| {r.contender} | {r.seconds:.2f} | {r.rate:.2f} {r.unit}/s | "
            f"{r.rate / ours.rate:.2f}x | {', '.join(notes)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small inputs (a few minutes).")
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="Write results here.")
    parser.add_argument("--markdown", type=Path, help="Also write the tables here.")
    parser.add_argument(
        "--scaled-mb", type=float, help="Size of the scaled end-to-end corpus (1000; quick 20)."
    )
    args = parser.parse_args(argv)
    if args.scaled_mb is not None:
        os.environ["CORPUSKIT_BENCH_SCALED_MB"] = str(args.scaled_mb)
    info = machine_info()
    print(f"# corpuskit benchmarks ({'quick' if args.quick else 'full'})")
    print(json.dumps(info, indent=2))
    results: list[Result] = []
    markdown = []
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        t0 = time.perf_counter()
        got = importlib.import_module(f"benchmarks.{name}").run(quick=args.quick)
        results += got
        for group, rs in _groups(got).items():
            text = table(group, rs)
            markdown.append(text)
            print("\n" + text, flush=True)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    records = []
    for group, rs in _groups(results).items():
        ours = _reference(rs)
        for r in rs:
            extra = {k: v for k, v in r.extra.items() if k != "machine"}
            records.append(
                {
                    "benchmark": group,
                    "contender": r.contender,
                    "seconds": r.seconds,
                    "rate": r.rate,
                    "unit": r.unit,
                    "relative_to_corpuskit": r.rate / ours.rate,
                    **extra,
                }
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": info, "quick": args.quick, "results": records}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text("\n".join(markdown))
    return results


if __name__ == "__main__":
    main()
