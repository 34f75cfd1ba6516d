"""End to end: datatrove vs ``corpuskit build`` on the same documents, same machine, same run.

The work, for both: read the documents → Gopher quality filter → MinHash near-duplicate removal
(5-word shingles, 20 bands x 6 rows, threshold 0.8 for corpuskit, whose candidates are verified)
→ tokenize with the same local ``tokenizer.json`` (a byte-level BPE trained here, untimed, on
the benchmark text) → packed token files with an end-of-text id after each document.

- ``datatrove``: ``JsonlReader → GopherQualityFilter → JsonlWriter → MinhashDedupSignature``,
  then ``MinhashDedupBuckets``, ``MinhashDedupCluster``, and ``JsonlReader → MinhashDedupFilter
  → DocumentTokenizer`` (its documented four-stage MinHash recipe), each stage a
  ``LocalPipelineExecutor`` with ``tasks = workers = cores``. Stop-word check off and document
  shuffling off, to do the same work as corpuskit (and no more).
- ``corpuskit build``: ``fetch`` of a ``files`` source (one ``.txt`` per document) plus
  ``build`` with ``quality: true, near_dedup: true, dedup: false`` (exact dedup off, as datatrove
  has none here) and ``tokenizer: hf:tokenizer.json``, ``workers = cores``. corpuskit also runs
  its ``clean`` stage (NFC, mojibake repair), which cannot be turned off: extra work on our side.

Throughput is input MB (UTF-8 text) per second of wall time, everything included (reading,
writing, process start-up). Each contender runs in a fresh subprocess so that neither warms the
other's caches or imports; the peak RSS reported is its main process's VmHWM
(workers not included).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import corpora
from benchmarks.common import Result, machine_info

EOT = "<|endoftext|>"

_DATATROVE = r"""
import json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
    MinhashDedupSignature)
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer
from datatrove.pipeline.writers import JsonlWriter

inp, work, tok, tasks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = MinhashConfig(n_grams=5, num_buckets=20, hashes_per_bucket=6)
def ex(pipeline, n, name, depends=None):
    return LocalPipelineExecutor(pipeline=pipeline, tasks=n, workers=min(n, tasks),
                                 logging_dir=f"{work}/logs/{name}", depends=depends)
s1 = ex([JsonlReader(inp),
         GopherQualityFilter(min_stop_words=None),
         JsonlWriter(f"{work}/filtered", compression=None),
         MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)], tasks, "sigs")
s2 = ex([MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets",
                             config=cfg)], cfg.num_buckets, "buckets", s1)
s3 = ex([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove",
                             config=cfg)], 1, "cluster", s2)
s4 = ex([JsonlReader(f"{work}/filtered"),
         MinhashDedupFilter(input_folder=f"{work}/remove"),
         DocumentTokenizer(output_folder=f"{work}/tokens", tokenizer_name_or_path=tok,
                           eos_token="<|endoftext|>", shuffle_documents=False)],
        tasks, "tokens", s3)
s4.run()
stats = json.load(open(f"{work}/logs/tokens/stats.json"))
tokens = docs = 0
for step in stats:
    if "TOKENIZER" in step["name"]:
        tokens = step["stats"]["tokens"]["total"]
        docs = step["stats"]["tokens"]["n"]
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"documents_out": docs, "tokens": tokens, "main_peak_kb": hwm}))
"""

_CORPUSKIT = r"""
import json, sys
from corpuskit import api
res = api.build(sys.argv[1], data_dir=sys.argv[2], catalog=[sys.argv[3]], progress=False,
                tokenizer="hf:" + sys.argv[4], workers=int(sys.argv[5]), quality=True,
                near_dedup=True, dedup=False, code=False)
splits = res.meta["splits"]
print(json.dumps({"documents_out": sum(s["documents"] for s in splits.values()),
                  "tokens": sum(s["tokens"] for s in splits.values()),
                  "main_peak_kb": next(int(l.split()[1]) for l in open("/proc/self/status")
                                       if l.startswith("VmHWM"))}))
"""


def train_hf_tokenizer(texts: list[str], path: Path, vocab: int = 8192) -> Path:
    """A byte-level BPE ``tokenizer.json`` with an end-of-text token (setup, not timed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))
    return path


def _timed_child(code: str, args: list[str]) -> tuple[float, dict, float]:
    """Run ``code`` in a fresh interpreter: (seconds, its last-line JSON, its main process's
    peak RSS in MB). The peak is the child's own VmHWM: ``ru_maxrss`` survives exec on Linux
    and would report the (large) runner's size instead."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(  # files, not pipes: datatrove logs more than a pipe holds
            [sys.executable, "-c", code, *args],
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "true"},
        )
        _, status, _ = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark child failed:\n{stderr[-3000:]}")
    data = json.loads(stdout.strip().splitlines()[-1])
    return seconds, data, data.pop("main_peak_kb", 0) / 1024


def datatrove_available() -> bool:
    try:
        import datatrove  # noqa: F401
    except ImportError:
        return False
    return True


def prepare(docs: list[corpora.Doc], folder: Path, name: str, parts: int) -> tuple[Path, Path, int]:
    """Write one corpus twice: ``input/data-NN.jsonl`` (datatrove; ``parts`` contiguous files, so
    that each of its tasks gets one) and ``texts/`` (corpuskit: one ``.txt`` per document)."""
    per = -(-len(docs) // parts)
    nbytes = 0
    for i in range(parts):
        nbytes += corpora.write_jsonl(
            docs[i * per : (i + 1) * per], folder / "input" / f"data-{i:02d}.jsonl"
        )
    corpora.write_text_files(docs, folder / "texts")
    catalog = corpora.local_catalog(folder / "catalog.yaml", name, folder / "texts")
    return folder / "input", catalog, nbytes


def compare(
    name: str, docs: list[corpora.Doc], work: Path, tokenizer: Path, cores: int
) -> list[Result]:
    """Both contenders on one corpus, one after the other, in fresh processes."""
    folder = work / name
    # "bench-": the built-in catalog already has entries such as python-stdlib.
    inp, catalog, nbytes = prepare(docs, folder, f"bench-{name}", cores)
    mb = nbytes / 1e6
    extra = {"input_mb": mb, "documents_in": len(docs), "threads": cores, "corpus": name}
    results = []
    seconds, out, rss = _timed_child(
        _CORPUSKIT, [f"bench-{name}", str(folder / "ck"), str(catalog), str(tokenizer), str(cores)]
    )
    results.append(
        Result(
            f"end_to_end/{name}",
            "corpuskit build",
            seconds,
            mb,
            "MB",
            {**extra, **out, "peak_rss_mb": rss},
        )
    )
    if datatrove_available():
        seconds, out, rss = _timed_child(
            _DATATROVE, [str(inp), str(folder / "dt"), str(tokenizer), str(cores)]
        )
        results.append(
            Result(
                f"end_to_end/{name}",
                "datatrove",
                seconds,
                mb,
                "MB",
                {**extra, **out, "peak_rss_mb": rss},
            )
        )
    else:
        print("[benchmarks] datatrove not installed: pip install -e '.[bench]'")
    shutil.rmtree(folder, ignore_errors=True)
    return results


def run(quick: bool = False, *, scaled_mb: float | None = None, only_scaled: bool = False):
    """Every real corpus, then the scaled one (``CORPUSKIT_BENCH_SCALED_MB``: 1000 full, 20
    quick)."""
    cores = os.cpu_count() or 1
    if scaled_mb is None:
        scaled_mb = float(os.environ.get("CORPUSKIT_BENCH_SCALED_MB", 20 if quick else 1000))
    work = Path(tempfile.mkdtemp(prefix="ck-e2e-"))
    results: list[Result] = []
    try:
        real = {} if only_scaled else corpora.available()
        sample = [d.text for docs in real.values() for d in docs[:400]] or [
            d.text for d in corpora.scaled_documents(5_000_000)
        ]
        tokenizer = train_hf_tokenizer(sample, work / "tokenizer.json")
        for name, docs in real.items():
            if name in ("python-stdlib", "code"):
                # Code: a prose quality filter drops every document, and datatrove's MinHash
                # filter then fails on its empty input. Code is measured by memory/tokenize_pack.
                continue
            results += compare(name, docs, work, tokenizer, cores)
        scaled = list(corpora.scaled_documents(int(scaled_mb * 1e6)))
        results += compare(f"scaled-{scaled_mb:g}mb", scaled, work, tokenizer, cores)
        del scaled
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine_info()
    for r in results:
        r.extra.setdefault("machine", info)
    return results
