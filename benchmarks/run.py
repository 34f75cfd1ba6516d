"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--only NAME]``.

Each benchmark module has ``run(quick) -> list[Result]``; contenders of one benchmark run side by
side in the same process, and the table shows each one's rate relative to corpuskit's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
from pathlib import Path

BENCHMARKS = ["tokenize_pack", "memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Fewer repeats (a few minutes).")
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    args = parser.parse_args()
    records = []
    for name in args.only or BENCHMARKS:
        results = importlib.import_module(f"benchmarks.{name}").run(quick=args.quick)
        ours = next((r for r in results if r.contender.startswith("corpuskit")), results[0])
        print(
            f"\n## {name}  ({platform.processor() or platform.machine()}, "
            f"{results[0].extra.get('threads', '?')} threads)"
        )
        print(f"{'contender':<32} {'seconds':>9} {'rate':>14} {'vs corpuskit':>13}")
        for r in results:
            rel = r.rate / ours.rate
            extra = "".join(f"  {k}={v:.1f}" for k, v in r.extra.items() if k.endswith("_mb"))
            print(
                f"{r.contender:<32} {r.seconds:>9.3f} {r.rate:>10.2f} {r.unit}/s "
                f"{rel:>12.2f}x{extra}"
            )
            records.append(
                {
                    "benchmark": r.benchmark,
                    "contender": r.contender,
                    "seconds": r.seconds,
                    "rate": r.rate,
                    "unit": r.unit,
                    "relative_to_corpuskit": rel,
                    **r.extra,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
