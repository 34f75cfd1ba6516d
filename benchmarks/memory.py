"""Peak memory of a whole build (fetch, clean, dedup, tokenize, pack) as the input grows.

The input is the offline default corpus (the interpreter's standard library) copied N times
into a folder, each copy made distinct by a header line so that deduplication keeps it. Each
scale runs in a fresh subprocess; its peak RSS (``VmHWM`` of the child) is the measurement.
Streaming means the peak should stay flat (within ~20%) from 1x to 16x.

The one part of a build that holds more than a batch is sentencepiece training: it keeps a
seeded sample of at most ``sentence_budget`` lines. The default budget (1M lines) is four times
the 1x corpus's ~223k train lines, so from 1x to ~4x the sample itself grows, by design, and then
stops. Each scale therefore runs twice: with the default budget (what a user gets) and with a
budget below the 1x line count, so that the sample is the same size at every scale and any
remaining growth would be a streaming defect.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result

_CHILD = """
import json, sys
from corpuskit import api
res = api.build("scaled", data_dir=sys.argv[1], catalog=[sys.argv[2]], progress=False,
                tokenizer="spm-bpe:4096", workers=2, sentence_budget=int(sys.argv[3]))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started from a large
# runner process would report the runner's size (every scale read the same 782 MB).
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_kb": peak_kb, "tokens": res.meta["splits"]["train"]["tokens"]}))
"""


def _make_corpus(folder: Path, copies: int) -> int:
    from corpuskit.sources.local import _stdlib_files, stdlib_dir

    root = stdlib_dir()
    files = _stdlib_files()
    total = 0
    for c in range(copies):
        for i, path in enumerate(files):
            text = path.read_text(encoding="utf-8", errors="replace")
            out = folder / f"c{c:03d}" / f"f{i:05d}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            body = f"# copy {c} of {path.relative_to(root).as_posix()}\n{text}"
            out.write_text(body, encoding="utf-8")
            total += len(body.encode("utf-8"))
    return total


DEFAULT_BUDGET = 1_000_000
FIXED_BUDGET = 200_000  # below the 1x corpus's ~223k train lines: the same sample at every scale


def run(quick: bool = False) -> list[Result]:
    scales = [1, 4] if quick else [1, 4, 16]
    budgets = [FIXED_BUDGET] if quick else [FIXED_BUDGET, DEFAULT_BUDGET]
    results = []
    for budget in budgets:
        results.extend(_run_scales(scales, budget))
    return results


def _run_scales(scales: list[int], budget: int) -> list[Result]:
    results = []
    for copies in scales:
        work = Path(tempfile.mkdtemp(prefix="ck-mem-"))
        try:
            size = _make_corpus(work / "texts", copies)
            catalog = work / "scaled.yaml"
            catalog.write_text(
                "corpora:\n  - name: scaled\n    title: scaled\n    description: benchmark\n"
                "    license: PSF-2.0\n    languages: [python]\n    domains: [code]\n"
                f"    source: {{type: local, kind: files, path: '{work / 'texts'}', "
                "globs: ['**/*.txt']}\n"
            )
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, str(work / "data"), str(catalog), str(budget)],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = time.perf_counter() - start
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            results.append(
                Result(
                    "memory",
                    f"corpuskit build {copies}x (sentence_budget {budget:,})",
                    seconds,
                    size / 1e6,
                    "MB",
                    {
                        "peak_rss_mb": out["peak_kb"] / 1024,
                        "input_mb": size / 1e6,
                        "max_child_rss_mb_so_far": children / 1024,
                        "threads": 2,
                        "sentence_budget": budget,
                    },
                )
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return results
