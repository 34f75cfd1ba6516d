"""Driver memory of the clean build as the corpus grows: 1x, 4x and 16x the documents.

The global stages decide in hash-partitioned tasks that run in the workers and whose decisions
go to files (per shard and per partition), so the build's own process (the driver) should not
grow with the number of documents. Each scale builds a generated corpus (distinct documents,
with a few exact copies and a repeated boilerplate line planted in proportion) through
``build_clean`` with every global stage on (exact, near and line dedup, decontamination), 2
workers, in a fresh process (the fetch runs before, in another); the measurement is that
process's peak RSS (``VmHWM``), and its RSS once corpuskit is imported (the floor). Workers are
separate processes and not included: they are bounded by one shard each.

    python -m benchmarks.driver_memory            # 1x, 4x, 16x (10,000 documents at 1x)
    python -m benchmarks.driver_memory --quick    # 1x, 4x
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result

BASE_DOCUMENTS = 10_000
WORDS = [
    "river", "stone", "market", "engine", "signal", "garden", "window", "theory", "harbor",
    "winter", "letter", "silver", "forest", "mirror", "planet", "bridge", "castle", "ladder",
    "the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "by", "at",
]

_FETCH = """
import sys
from pathlib import Path
from corpuskit.catalog import Catalog
from corpuskit.fetch import fetch_entry
entry = Catalog.load([sys.argv[2]]).get("scaled")
fetch_entry(entry, Path(sys.argv[1]), progress=False, shard_bytes=2_000_000)
"""

_CHILD = """
import json, sys
def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
from pathlib import Path
from corpuskit.build import BuildConfig, build_clean
from corpuskit.catalog import Catalog
if __name__ == "__main__":
    floor_kb = status("VmRSS")
    entry = Catalog.load([sys.argv[2]]).get("scaled")
    config = BuildConfig(workers=2, val_fraction=0.05, test_fraction=0.05, near_dedup=True,
                         paragraph_dedup="lines", decontaminate="drop")
    clean, manifest, _ = build_clean(entry, Path(sys.argv[1]), config, progress=False)
    print(json.dumps({"peak_kb": status("VmHWM"), "floor_kb": floor_kb,
                      "documents_out": sum(s["documents"] for s in manifest["splits"].values()),
                      "stats": {k: v["dropped"] for k, v in manifest["stats"].items()}}))
"""


def _make_corpus(folder: Path, documents: int) -> int:
    """Distinct generated documents; 1% exact copies and 2% with a boilerplate line."""
    rng = random.Random(documents)
    folder.mkdir(parents=True)
    total = 0
    lines: list[str] = []
    for i in range(documents):
        body = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."
            for _ in range(rng.randint(3, 8))
        ] + [f"Document {i} of the benchmark corpus."]
        if i % 100 == 99:
            body = lines  # an exact copy of the previous document
        elif i % 50 == 7:
            body = [*body, "Subscribe to the river stone market letter for more news."]
        lines = body
        text = "\n".join(body)
        total += len(text.encode("utf-8"))
        lines_file = folder / f"{i // 1000:04d}.jsonl"
        with lines_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"text": text}) + "\n")
    return total


def _catalog(work: Path) -> Path:
    catalog = work / "scaled.yaml"
    catalog.write_text(
        "corpora:\n  - name: scaled\n    title: scaled\n    description: benchmark\n"
        "    license: CC0-1.0\n    languages: [en]\n    domains: [prose]\n"
        f"    source: {{type: local, kind: files, path: '{work / 'texts'}', "
        "globs: ['*.jsonl']}\n    reader: jsonl\n",
        encoding="utf-8",
    )
    return catalog


def _measure(scale: int) -> Result:
    work = Path(tempfile.mkdtemp(prefix="ck-driver-"))
    try:
        size = _make_corpus(work / "texts", BASE_DOCUMENTS * scale)
        args = [str(work / "data"), str(_catalog(work))]
        # Fetched in a process of its own: the measured process only builds.
        subprocess.run([sys.executable, "-c", _FETCH, *args], check=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - start
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        return Result(
            "driver_memory", f"build_clean {scale}x ({BASE_DOCUMENTS * scale:,} documents)",
            seconds, size / 1e6, "MB",
            {
                "peak_rss_mb": out["peak_kb"] / 1024,
                "floor_rss_mb": out["floor_kb"] / 1024,
                "above_floor_mb": (out["peak_kb"] - out["floor_kb"]) / 1024,
                "documents_out": out["documents_out"],
                "dropped": out["stats"],
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(quick: bool = False) -> list[Result]:
    return [_measure(scale) for scale in ([1, 4] if quick else [1, 4, 16])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    results = run(parser.parse_args().quick)
    first = results[0].extra["peak_rss_mb"]
    for r in results:
        e = r.extra
        print(
            f"{r.contender:<40} {r.work:7.1f} MB in {r.seconds:6.1f} s  driver peak "
            f"{e['peak_rss_mb']:6.0f} MB (floor {e['floor_rss_mb']:.0f}, +"
            f"{e['above_floor_mb']:.0f})  {100 * (e['peak_rss_mb'] / first - 1):+.1f}% vs 1x"
        )
        print(f"    dropped: {e['dropped']}")


if __name__ == "__main__":
    main()
