"""Whole-build throughput on the scaled corpus, and its cost curve from 1 GB to 10 GB.

Two uses:

- **Side by side** (``--code NAME=PATH``, repeatable): the same fetched-then-built job run by
  several checkouts of corpuskit, e.g. this one and a ``git worktree`` of the previous release,
  back to back, ``--repeats`` times each in alternation, medians reported. Each checkout runs in
  its own subprocess with ``PYTHONPATH`` pointing at it, so the baseline is its own code, not
  this one's.
- **Cost curve** (``--sizes-mb 1000,2000,5000,10000``): one fetch and one build per size, wall
  time, MB/s and the peak RSS of the largest process (driver or worker), and an SVG chart.

The job is the one the 1 GB figures in BENCHMARKS.md used::

    corpuskit fetch scaled --workers W
    corpuskit build scaled --quality --near-dedup --no-dedup --tokenizer spm-bpe:8000 \\
        --val-fraction 0.01 --workers W

Peak RSS is sampled from ``/proc/<pid>/status`` (``VmHWM``, the kernel's own high-water mark)
of the child and all its descendants every 0.2 s: a process's peak is kept even when it is
sampled late, and workers live for the whole phase.

    python -m benchmarks.throughput --sizes-mb 40 --code new=. --code old=../baseline --repeats 3
    python -m benchmarks.throughput --sizes-mb 1000,2000,5000,10000 --chart scale.svg
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import corpora

_CHILD = """
import json, sys, time
# Only the checkout on PYTHONPATH: not the editable install's finder (this checkout's modules).
sys.meta_path[:] = [f for f in sys.meta_path if "EditableFinder" not in repr(f)]
import logging, os
if os.environ.get("CK_TIMELINE"):
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated).0f ms %(name)s %(message)s")
import corpuskit
from corpuskit import api
if os.environ.get("CK_TIMELINE"):  # when each executor step starts and ends, on stderr
    from corpuskit.executors import base as _base
    _plain, _t0 = _base.Executor.map_ordered, time.perf_counter()
    def _traced(self, fn, items, *, desc, **kw):
        print(f"{time.perf_counter() - _t0:.1f} s step {desc}: {len(items)} tasks", file=sys.stderr)
        yield from _plain(self, fn, items, desc=desc, **kw)
        print(f"{time.perf_counter() - _t0:.1f} s step {desc}: done", file=sys.stderr)
    _base.Executor.map_ordered = _traced
    import importlib
    def _timed(module, name):  # CK_TRACE=module:function,...: when each call starts and ends
        plain = getattr(module, name)
        def call(*args, **kw):
            print(f"{time.perf_counter() - _t0:.1f} s call {name}", file=sys.stderr)
            try:
                return plain(*args, **kw)
            finally:
                print(f"{time.perf_counter() - _t0:.1f} s call {name}: done", file=sys.stderr)
        setattr(module, name, call)
    for spec in filter(None, os.environ.get("CK_TRACE", "").split(",")):
        _module, _name = spec.split(":")
        _timed(importlib.import_module(_module), _name)
step, data, catalog, workers, repeat = sys.argv[1:6]
start = time.perf_counter()
if step == "fetch":
    api.fetch("scaled", data_dir=data, catalog=[catalog], progress=False, workers=int(workers))
    out = {}
else:
    res = api.build("scaled", data_dir=data, catalog=[catalog], progress=False, force=True,
                    quality=True, near_dedup=True, dedup=False, tokenizer="spm-bpe:8000",
                    val_fraction=0.01, workers=int(workers), fetch_missing=False)
    splits = res.meta["splits"]
    out = {"tokens": sum(s["tokens"] for s in splits.values()),
           "documents": sum(s["documents"] for s in splits.values())}
out["seconds"] = time.perf_counter() - start
out["code"] = corpuskit.__file__
print("RESULT " + json.dumps(out))
"""


def make_corpus(folder: Path, megabytes: float, parts: int = 16, seed: int = 0) -> dict:
    """The scaled corpus as ``parts`` JSON Lines files (``id``, ``text``), streamed."""
    folder.mkdir(parents=True, exist_ok=True)
    target = int(megabytes * 1e6)
    files = [(folder / f"part-{i:03d}.jsonl").open("w", encoding="utf-8") for i in range(parts)]
    total = documents = 0
    try:
        for doc in corpora.scaled_documents(target, seed=seed):
            line = json.dumps({"id": doc.id, "text": doc.text}, ensure_ascii=False)
            files[documents % parts].write(line + "\n")
            total += len(doc.text.encode("utf-8"))
            documents += 1
    finally:
        for fh in files:
            fh.close()
    return {"bytes": total, "documents": documents}


def write_catalog(path: Path, texts: Path) -> Path:
    path.write_text(
        "corpora:\n  - name: scaled\n    title: scaled\n    description: benchmark input\n"
        "    license: various\n    languages: [en]\n    domains: [web]\n    reader: jsonl\n"
        f"    source: {{type: local, kind: files, path: '{texts}', globs: ['*.jsonl']}}\n",
        encoding="utf-8",
    )
    return path


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_child(code: Path, step: str, data: Path, catalog: Path, workers: int) -> dict:
    """One fetch or build in a fresh interpreter running ``code``'s corpuskit."""
    env = dict(os.environ, PYTHONPATH=str(code.resolve()), TQDM_DISABLE="1")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, step, str(data), str(catalog), str(workers), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=code,  # `python -c` puts the working folder first on sys.path
    )
    peaks: dict[int, int] = {}
    done = threading.Event()
    timeline = os.environ.get("CK_TIMELINE")
    log = open(timeline, "a") if timeline else None  # noqa: SIM115 - closed below

    logged: dict[int, int] = {}

    def sample() -> None:
        while not done.is_set():
            for pid in _descendants(proc.pid):
                kb = _hwm_kb(pid)
                if log is not None and kb > logged.get(pid, 0) + 50_000:  # +50 MB: a line
                    role = "driver" if pid == proc.pid else "worker"
                    log.write(f"{time.perf_counter() - start:.1f} s {step} {role} {pid} "
                              f"peak {kb / 1024:.0f} MB\n")
                    log.flush()
                    logged[pid] = kb
                peaks[pid] = max(peaks.get(pid, 0), kb)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    if log is not None:
        log.write(stderr)
        log.close()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{step} with {code} failed:\n{stderr[-3000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    workers = [kb for pid, kb in peaks.items() if pid != proc.pid]
    result.update(
        wall=wall,
        peak_rss_mb=max(peaks.values(), default=0) / 1024,
        driver_peak_rss_mb=peaks.get(proc.pid, 0) / 1024,
        worker_peak_rss_mb=max(workers, default=0) / 1024,
    )
    return result


def side_by_side(codes: dict[str, Path], megabytes: float, repeats: int, workers: int,
                 work: Path) -> dict:
    """Each checkout fetches once, then builds ``repeats`` times, the checkouts alternating."""
    texts = work / "texts"
    corpus = make_corpus(texts, megabytes)
    catalog = write_catalog(work / "scaled.yaml", texts)
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    for name, code in codes.items():
        run_child(code, "fetch", work / f"data-{name}", catalog, workers)
    for _ in range(repeats):
        for name, code in codes.items():
            runs[name].append(run_child(code, "build", work / f"data-{name}", catalog, workers))
    summary = {}
    for name, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        summary[name] = {
            "median_wall_s": wall,
            "walls": [round(r["wall"], 2) for r in results],
            "mb_per_s": corpus["bytes"] / 1e6 / wall,
            "mb_per_s_per_core": corpus["bytes"] / 1e6 / wall / workers,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "driver_peak_rss_mb": max(r["driver_peak_rss_mb"] for r in results),
            "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in results),
            "documents": results[-1]["documents"],
            "tokens": results[-1]["tokens"],
            "code": sorted({r["code"] for r in results}),
        }
    return {"input": corpus, "workers": workers, "repeats": repeats, "contenders": summary}


def cost_curve(code: Path, sizes_mb: list[float], workers: int, work: Path) -> list[dict]:
    """Fetch and build each size once, in its own folder, removed afterwards."""
    rows = []
    for mb in sizes_mb:
        folder = work / f"scale-{int(mb)}"
        try:
            gen_start = time.perf_counter()
            corpus = make_corpus(folder / "texts", mb)
            generated = time.perf_counter() - gen_start
            catalog = write_catalog(folder / "scaled.yaml", folder / "texts")
            fetch = run_child(code, "fetch", folder / "data", catalog, workers)
            build = run_child(code, "build", folder / "data", catalog, workers)
            row = {
                "size_mb": corpus["bytes"] / 1e6,
                "documents_in": corpus["documents"],
                "generate_s": generated,
                "fetch_s": fetch["wall"],
                "build_s": build["wall"],
                "total_s": fetch["wall"] + build["wall"],
                "mb_per_s": corpus["bytes"] / 1e6 / (fetch["wall"] + build["wall"]),
                "peak_rss_mb": max(fetch["peak_rss_mb"], build["peak_rss_mb"]),
                "fetch_peak_rss_mb": fetch["peak_rss_mb"],
                "build_peak_rss_mb": build["peak_rss_mb"],
                "build_driver_peak_rss_mb": build["driver_peak_rss_mb"],
                "build_worker_peak_rss_mb": build["worker_peak_rss_mb"],
                "documents_kept": build["documents"],
                "tokens": build["tokens"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def chart(rows: list[dict], path: Path) -> None:
    """Time and peak RSS against input size, two panels, as a self-contained SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size_mb"] / 1000 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(sizes, [r["total_s"] / 60 for r in rows], "o-", label="fetch + build")
    left.plot(sizes, [r["build_s"] / 60 for r in rows], "s--", label="build")
    left.axhline(40, color="grey", lw=0.8, ls=":", label="40 min goal")
    left.set(xlabel="input (GB of text)", ylabel="wall time (min)", title="time, 2 workers")
    left.legend(fontsize=8)
    right.plot(sizes, [r["peak_rss_mb"] for r in rows], "o-")
    right.axhline(1024, color="grey", lw=0.8, ls=":", label="1 GB goal")
    right.set(xlabel="input (GB of text)", ylabel="peak RSS, largest process (MB)",
              title="memory", ylim=(0, 1200))
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="40", help="comma-separated input sizes in MB")
    parser.add_argument("--code", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout to run (repeatable); default: this one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: tmp)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--chart", type=Path, default=None, help="SVG of the cost curve")
    args = parser.parse_args(argv)
    codes = dict(c.split("=", 1) for c in args.code) or {"this": "."}
    codes_p = {k: Path(v) for k, v in codes.items()}
    sizes = [float(s) for s in args.sizes_mb.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="ck-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if len(sizes) == 1 and (len(codes_p) > 1 or args.repeats > 1):
            out: object = side_by_side(codes_p, sizes[0], args.repeats, args.workers, work)
        else:
            code = next(iter(codes_p.values()))
            out = cost_curve(code, sizes, args.workers, work)
            if args.chart:
                chart(out, args.chart)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
