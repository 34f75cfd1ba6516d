"""Crash safety: ``corpuskit fetch`` and ``corpuskit build`` are SIGKILLed at many points, then
run again; the result must be byte-identical to an uninterrupted run.

The corpus is served by a loopback HTTP server as a ``.tar.gz`` of text files, so one scenario
list covers the download (chunks, verification, rename), the unpack (members, the final rename),
shard writing, the lock file, the build's three phases (per-shard clean+filter, the global
exact/near-dedup grouping, the per-shard finish), tokenizer training, packing and the
``LATEST`` pointer. ``CORPUSKIT_FAULT_POINT=name:count`` makes ``corpuskit.faults.checkpoint``
kill the process the ``count``-th time it reaches ``name``.

After each kill, before the re-run, every file that is *not* debris (a ``.tmp-*``/``.old-*``
staging name or a ``.part``) must already be byte-identical to the reference run: nothing
half-written is ever visible under a final name. After the re-run, the whole data folder (shards,
manifests, token files, tokenizer, lock file, download cache) is byte-identical to the reference
and the debris is gone.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_documents
from tests.reliability.test_crash_helpers import Zygote, debris, tree_digest
from tests.sources.test_fetch_helpers import LoopbackServer, Route

BUILD = ["build", "crashy", "--tokenizer", "byte", "--workers", "1", "--near-dedup"]

# Killed during `corpuskit fetch`, then `corpuskit fetch` again.
FETCH_POINTS = [
    "download.chunk:1",
    "download.chunk:3",
    "download.verified:1",
    "download.renamed:1",
    "unpack.member:20",
    "unpack.before_rename:1",
    "fetch.document:1500",
    "shards.batch:2",
    "shards.part_closed:1",
    "json.before_replace:1",
    "staging.before_swap:1",
    "staging.swapped:1",
    "lockfile.before_replace:1",
]
# Killed during `corpuskit build` of a fetched corpus, then `corpuskit build` again.
BUILD_POINTS = [
    "build.shard_phase:1",
    "build.near_dedup:1",
    "build.global_phase:1",
    "build.finish_phase:1",
    "build.clean_batch:2",
    "build.before_clean_manifest:1",
    "staging.swapped:1",
    "encode.tokenizer_saved:1",
    "encode.pack_batch:3",
    "encode.concatenate:1",
    "encode.meta_written:1",
    "staging.before_swap:2",
    "encode.latest:1",
]


def _corpus_archive() -> bytes:
    """2,400 generated documents in 40 JSON Lines files, with exact and near duplicates, a
    line that is not UTF-8, one that is not JSON, and an incompressible member the globs skip
    (so the download spans several chunks)."""
    import json
    import random

    docs = make_documents(2400, seed=7)
    docs[5] = docs[1]
    docs[6] = docs[2] + " Extra words at the end of it."
    members: dict[str, bytes] = {}
    for f in range(40):
        lines = [json.dumps({"text": t}).encode() for t in docs[f * 60 : (f + 1) * 60]]
        if f == 3:
            lines += [b'{"text": "caf\xe9"}', b"{not json"]
        members[f"data/part{f:02d}.jsonl"] = b"\n".join(lines) + b"\n"
    members["noise.bin"] = random.Random(0).randbytes(200_000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ARCHIVE = _corpus_archive()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The server, the zygote, the catalog and the reference (uninterrupted) runs."""
    work = tmp_path_factory.mktemp("crash")
    with LoopbackServer() as srv, Zygote(work) as zygote:
        srv.routes["/corpus.tar.gz"] = Route(ARCHIVE)
        catalog = work / "crashy.yaml"
        catalog.write_text(
            f"""corpora:
  - name: crashy
    title: Crash test corpus
    description: Generated documents in a tar.gz on loopback.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: http
      allow_http: true
      files:
        - url: {srv.url}/corpus.tar.gz
          sha256: {hashlib.sha256(ARCHIVE).hexdigest()}
          bytes: {len(ARCHIVE)}
      globs: ["data/*.jsonl"]
    reader: jsonl
""",
            encoding="utf-8",
        )
        env = {
            "CORPUSKIT_CATALOG": str(catalog),
            "CORPUSKIT_HTTP_BACKOFF": "0.01",
            "CORPUSKIT_LOCK": None,
            "CORPUSKIT_MIRROR": None,
            "CORPUSKIT_OFFLINE": None,
        }
        fetched = work / "fetched"
        ran = zygote.run(["-q", "--data-dir", str(fetched), "fetch", "crashy"], env)
        assert ran.rc == 0, ran.stderr
        fetched_digest = tree_digest(fetched)
        reference = work / "reference"
        shutil.copytree(fetched, reference)
        ran = zygote.run(["-q", "--data-dir", str(reference), *BUILD], env)
        assert ran.rc == 0, ran.stderr
        digest = tree_digest(reference)
        assert any(k.startswith("tokens/crashy/") and k.endswith("train.bin") for k in digest)
        assert "corpuskit-lock.json" in digest
        yield {
            "zygote": zygote,
            "env": env,
            "fetched": fetched,
            "ref_fetch": fetched_digest,
            "ref_build": digest,
        }


def _check_killed_state(root: Path, reference: dict[str, str]) -> None:
    """Whatever a kill left, a file under a final (non-debris) name is complete and correct."""
    for rel, sha in tree_digest(root).items():
        if ".tmp-" in rel or ".old-" in rel or rel.endswith(".part"):
            continue
        assert reference.get(rel) == sha, f"{rel} is visible but differs from the reference"


def _kill_and_rerun(
    world: dict, root: Path, argv: list[str], point: str, rerun: list[str], reference: str
) -> None:
    zygote, env = world["zygote"], world["env"]
    fault = {**env, "CORPUSKIT_FAULT_POINT": point}
    killed = zygote.run(["-q", "--data-dir", str(root), *argv], fault)
    assert killed.rc == -9, f"{point} was never reached (rc {killed.rc}): {killed.stderr[-500:]}"
    _check_killed_state(root, world[reference])
    again = zygote.run(["-q", "--data-dir", str(root), *rerun], env)
    assert again.rc == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stderr
    assert debris(root) == [], "the re-run left the killed run's debris"
    got, want = tree_digest(root), world[reference]
    differ = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    assert differ == [], f"not byte-identical after a kill at {point}: {differ[:10]}"


@pytest.mark.parametrize("point", FETCH_POINTS)
def test_fetch_killed_then_rerun_is_byte_identical(
    world: dict, tmp_path: Path, point: str
) -> None:
    fetch = ["fetch", "crashy"]
    _kill_and_rerun(world, tmp_path / "data", fetch, point, fetch, "ref_fetch")


@pytest.mark.parametrize("point", BUILD_POINTS)
def test_build_killed_then_rerun_is_byte_identical(
    world: dict, tmp_path: Path, point: str
) -> None:
    root = tmp_path / "data"
    shutil.copytree(world["fetched"], root)
    _kill_and_rerun(world, root, BUILD, point, BUILD, "ref_build")


def test_forced_refetch_killed_between_the_two_renames(world: dict, tmp_path: Path) -> None:
    """``fetch --force`` over a complete artifact, killed after the old one was moved aside
    and before the new one took its name: the re-run rebuilds it and removes both."""
    root = tmp_path / "data"
    shutil.copytree(world["fetched"], root)
    fetch = ["fetch", "crashy", "--force"]
    _kill_and_rerun(world, root, fetch, "staging.old_moved:1", fetch, "ref_fetch")


def test_killed_twice_in_a_row_then_rerun(world: dict, tmp_path: Path) -> None:
    """Debris of several dead runs (a resumed .part, two staging folders) is all cleaned."""
    zygote, env = world["zygote"], world["env"]
    root = tmp_path / "data"
    for point in ("download.chunk:2", "fetch.document:10"):
        killed = zygote.run(
            ["-q", "--data-dir", str(root), "fetch", "crashy"],
            {**env, "CORPUSKIT_FAULT_POINT": point},
        )
        assert killed.rc == -9
    _kill_and_rerun(world, root, BUILD, "build.global_phase:1", BUILD, "ref_build")
