"""Local vs Ray executor: the same build, on the same machine and input (the overhead of Ray).

The input is the offline default corpus (the interpreter's standard library, about 12 MB of
code) fetched as 1 MB raw shards, so that the per-shard phases have a dozen tasks to spread;
exact and near-duplicate removal and decontamination are on, so that every phase runs. Every
run builds from the raw shards into a fresh clean and token artifact (nothing is skipped).

Contenders, each with every core of this machine:

- ``corpuskit local``: worker processes (``--executor local``, the default);
- ``corpuskit ray (warm)``: Ray tasks on a local Ray instance started before the clock, as
  on a running cluster (``--address auto``): the cost of scheduling through Ray;
- ``corpuskit ray (cold)``: ``--executor ray`` with no cluster, so the build starts a private
  Ray instance and stops it: what a one-off command costs.

``overhead`` in the notes is seconds divided by the local build's; the outputs are checked to be
byte-identical to the local build's (``identical``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Result, best_of

CONFIG: dict[str, Any] = {
    "tokenizer": "spm-bpe:4096",
    "near_dedup": True,
    "decontaminate": "drop",
}


def _digest(*folders: Path) -> str:
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(p.name.encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def run(quick: bool = False) -> list[Result]:
    try:
        import ray
    except ImportError:
        print("executors: Ray is not installed (pip install 'corpuskit[ray]'); skipped")
        return []
    from corpuskit import api
    from corpuskit.catalog import Catalog
    from corpuskit.fetch import fetch_entry

    cores = os.cpu_count() or 1
    repeats = 1 if quick else 3
    name = "python-docs" if quick else "python-stdlib"
    work = Path(tempfile.mkdtemp(prefix="ck-bench-exec-"))
    previous_auth = os.environ.get("RAY_AUTH_MODE")
    # A loopback instance that lives for this benchmark: no token written to ~/.ray.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        raw = fetch_entry(Catalog.load().get(name), work, progress=False, shard_bytes=2**20)
        mb = raw.bytes / 1e6
        shards = len(raw.manifest["shards"])

        def build(executor: str) -> str:
            for kind in ("clean", "tokens"):
                shutil.rmtree(work / kind, ignore_errors=True)
            result = api.build(
                name, data_dir=work, executor=executor, workers=cores, progress=False, **CONFIG
            )
            return _digest(result.clean_dir, result.tokens_dir)

        local_s, local_digest = best_of(lambda: build("local"), repeats)
        ray.init(
            num_cpus=cores,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        try:
            build("ray")  # first use: Ray starts its worker processes
            warm_s, warm_digest = best_of(lambda: build("ray"), repeats)
        finally:
            ray.shutdown()
        cold_s, cold_digest = best_of(lambda: build("ray"), repeats)
        results = []
        for contender, seconds, digest in (
            ("corpuskit local", local_s, local_digest),
            ("corpuskit ray (warm)", warm_s, warm_digest),
            ("corpuskit ray (cold)", cold_s, cold_digest),
        ):
            extra = {
                "overhead": seconds / local_s,
                "identical": digest == local_digest,
                "corpus": name,
                "raw_shards": shards,
                "workers": cores,
                "input_mb": mb,
            }
            results.append(Result("executors", contender, seconds, mb, "MB", extra))
        return results
    finally:
        if previous_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous_auth
        shutil.rmtree(work, ignore_errors=True)
