"""Fetch reading many files as executor tasks: the raw shards and manifest are byte-identical
whatever the executor, the number of workers and the grouping of files into tasks, and equal
to writing the same documents one by one (the one-process fetch of earlier versions).

The Ray side of the same checks is in ``tests/sources/test_fetch_ray.py``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from corpuskit.catalog import Catalog
from corpuskit.fetch import Rechunker, fetch_entry, group_units
from corpuskit.shards import ShardWriter, document_schema, iter_documents
from corpuskit.sources import local
from tests.conftest import SHARED_DATA, make_documents
from tests.sources.test_fetch_helpers import LoopbackServer, Route, tar_gz_bytes

# The module by its full name: the package root's name is the API function.
# The module that reads parts (split out of corpuskit/fetch.py): its globals are what the
# reading looks up, so the spies and the part size are patched there.
fetch_module = importlib.import_module("corpuskit.fetch_parts")

PYTORCH_EXAMPLES = SHARED_DATA / "code-sample" / "pytorch_examples_source.jsonl"
SHA = "77f55b912142e11fcfdf5b530231fb9c52f181e8"


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def files_catalog(tmp_path: Path, name: str, folder: Path, globs: str = '["**/*"]') -> Path:
    catalog = tmp_path / f"{name}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {name}
    title: {name}
    description: Files of a folder.
    license: see the files
    languages: [en]
    domains: [code]
    source: {{type: local, kind: files, path: "{folder}", globs: {globs}}}
""",
        encoding="utf-8",
    )
    return catalog


def generated_folder(root: Path, n: int = 300) -> Path:
    """Text files of very different sizes in nested folders, plus files that are skipped."""
    rng = random.Random(7)
    docs = make_documents(n, seed=3)
    for i, text in enumerate(docs):
        path = root / f"d{i % 7}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text * rng.choice([1, 1, 2, 5, 40]) + " é ✓ 𝄞\n", encoding="utf-8")
    (root / "d0" / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))  # not UTF-8
    (root / "empty.txt").write_text("", encoding="utf-8")
    return root


def pytorch_examples_tree(root: Path) -> dict[str, bytes]:
    """The real PyTorch examples source (../shared/data) as files at their repository paths."""
    if not PYTORCH_EXAMPLES.exists():
        pytest.skip(f"real data {PYTORCH_EXAMPLES} is absent (../shared beside the clone)")
    files: dict[str, bytes] = {}
    with PYTORCH_EXAMPLES.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            files[record["path"]] = record["content"].encode("utf-8")
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def one_by_one(entry_docs: list[dict], directory: Path, schema: pa.Schema, **kw: int) -> None:
    """The reference: every document through ``ShardWriter.write``, as fetch always did."""
    writer = ShardWriter(directory, schema, **kw)
    for doc in entry_docs:
        writer.write(doc)
    writer.close()


@pytest.mark.parametrize(
    ("shard_bytes", "batch_rows", "cuts"),
    [(3_000, 7, 1), (50_000, 1024, 5), (1, 3, 40), (10**9, 2, 13), (20_000, 5, 200)],
)
def test_rechunker_cuts_where_write_does(
    tmp_path: Path, shard_bytes: int, batch_rows: int, cuts: int
) -> None:
    rng = random.Random(shard_bytes + cuts)
    schema = document_schema(["path", "language"])
    docs = []
    for i, text in enumerate(make_documents(400, seed=cuts)):
        docs.append({
            "id": f"c/{i}",
            "text": text * rng.choice([1, 3, 30]) + rng.choice(["", "é", "日本語", "𝄞"]),
            "split": rng.choice(["train", "validation"]),
            "source": "gen",
            "path": None if i % 5 == 0 else f"p/{i}",
            "language": None if i % 3 == 0 else "en",
        })
    ref, got = tmp_path / "ref", tmp_path / "got"
    ref.mkdir()
    got.mkdir()
    one_by_one(docs, ref, schema, shard_bytes=shard_bytes, batch_rows=batch_rows)
    writer = ShardWriter(got, schema, shard_bytes=shard_bytes, batch_rows=batch_rows)
    rechunker = Rechunker(writer)
    bounds = sorted({0, len(docs), *rng.sample(range(1, len(docs)), cuts)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        part = docs[a:b]
        columns = {n: [d.get(n) for d in part] for n in schema.names}
        rechunker.feed(pa.RecordBatch.from_pydict(columns, schema=schema))
    rechunker.close()
    writer.close()
    assert digests(ref) == digests(got)
    assert len(digests(ref)) >= 1


def test_group_units_covers_every_unit_in_order() -> None:
    sizes = [random.Random(1).randint(0, 3_000_000) for _ in range(500)]
    for slots in (1, 2, 7, 64):
        parts = group_units(sizes, slots)
        assert [i for p in parts for i in p] == list(range(500))
    assert group_units([], 4) == []
    assert len(group_units([10] * 10, 2)) == 1  # tiny inputs: one task, not ten


def test_generated_folder_is_byte_identical_for_1_and_2_workers_and_one_by_one(
    tmp_path: Path,
) -> None:
    folder = generated_folder(tmp_path / "texts")
    entry = Catalog.load([files_catalog(tmp_path, "gen", folder)]).get("gen")
    # many tasks, so that the grouping differs between 1 and 2 workers
    outputs = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        result = fetch_entry(entry, root, progress=False, shard_bytes=20_000, workers=workers)
        outputs[workers] = digests(result.path)
    assert outputs[1] == outputs[2]
    assert len(outputs[1]) > 5, "the corpus should span several shards"
    assert result.manifest["skipped"] == {"not_utf8": 1}
    assert result.documents == 301  # 300 generated + the empty file
    assert not any(".tmp" in n or "_work" in n for n in outputs[1])
    # the documents one by one, as the one-process fetch writes them
    ref = tmp_path / "ref"
    ref.mkdir()
    docs = [d for d in local.iter_documents(entry) if d.pop("skip", None) is None and d["text"]
            is not None]
    one_by_one(docs, ref, document_schema(local.metadata_columns(entry)), shard_bytes=20_000)
    assert {k: v for k, v in outputs[1].items() if k != "manifest.json"} == digests(ref)


def test_python_docs_units_read_in_parts_equal_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-docs parses every stdlib module with ``ast``: units read alone or together
    give the same documents, topics first."""
    entry = Catalog.load().get("python-docs")
    units = [u for u, _ in local.read_units(entry)]
    assert units[0].kind == "topics" and len(units) > 100
    some = units[:1] + units[200:230]
    whole = list(local.read_part(entry, some))
    pieces = [d for u in some for d in local.read_part(entry, [u])]
    assert whole == pieces and whole[0]["kind"] == "topic"


def test_real_code_from_a_github_archive_with_2_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PyTorch examples source (../shared/data) served as a GitHub archive: downloaded,
    safely extracted, then read as tasks by 1 and by 2 worker processes: the same bytes."""
    files = pytorch_examples_tree(tmp_path / "unused")
    archive = tar_gz_bytes({f"examples-{SHA}/{rel}": data for rel, data in files.items()})
    for name in ("CORPUSKIT_OFFLINE", "CORPUSKIT_LOCK", "CORPUSKIT_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    catalog = tmp_path / "gh.yaml"
    catalog.write_text(
        f"""corpora:
  - name: pt-examples
    title: PyTorch examples
    description: Real code.
    license: BSD-3-Clause
    languages: [python]
    domains: [code]
    source: {{type: github, repo: pytorch/examples, commit: {SHA}, globs: ["**/*"]}}
    reader: code
""",
        encoding="utf-8",
    )
    entry = Catalog.load([catalog]).get("pt-examples")
    outputs = {}
    with LoopbackServer() as srv:
        srv.routes[f"/pytorch/examples/archive/{SHA}.tar.gz"] = Route(archive)
        monkeypatch.setenv("CORPUSKIT_GITHUB_ENDPOINT", srv.url)
        for workers in (1, 2):
            result = fetch_entry(
                entry, tmp_path / f"w{workers}", progress=False, shard_bytes=64_000,
                workers=workers,
            )
            outputs[workers] = digests(result.path)
    assert outputs[1] == outputs[2]
    assert len(result.manifest["shards"]) > 3
    assert result.documents + sum(result.manifest["skipped"].values()) == len(files)
    paths = {d["path"] for d in iter_documents(result.path, ["path"])}
    assert "mnist/main.py" in paths or any(p.endswith("main.py") for p in paths)


def test_the_task_function_is_what_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every reading goes through ``read_part_task`` (what Ray and the pool run), in order."""
    folder = generated_folder(tmp_path / "texts", n=60)
    entry = Catalog.load([files_catalog(tmp_path, "gen", folder)]).get("gen")
    monkeypatch.setattr(fetch_module, "PART_BYTES_MIN", 1)
    seen: list[int] = []
    real = fetch_module.read_part_task

    def spy(task: fetch_module.ReadTask) -> fetch_module.ReadResult:
        seen.append(int(Path(task.out).stem.split("-")[1]))
        return real(task)

    monkeypatch.setattr(fetch_module, "read_part_task", spy)
    fetch_entry(entry, tmp_path / "d", progress=False, workers=1)
    assert seen == list(range(len(seen))) and len(seen) == fetch_module.PARTS_PER_SLOT


def test_many_jsonl_files_over_http_with_2_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``http`` source of several JSON Lines files (a loopback mirror) is read as tasks:
    1 and 2 worker processes write the same bytes."""
    for name in ("CORPUSKIT_OFFLINE", "CORPUSKIT_LOCK", "CORPUSKIT_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    docs = make_documents(90)
    bodies = {}
    for i in range(6):
        lines = [json.dumps({"text": text}) for text in docs[i::6]]
        bodies[f"/data/part-{i}.jsonl"] = ("\n".join(lines) + "\n").encode()
    files = "".join(
        f"        - {{url: 'URL{route}', sha256: {hashlib.sha256(body).hexdigest()}}}\n"
        for route, body in bodies.items()
    )
    outputs = {}
    with LoopbackServer() as srv:
        for route, body in bodies.items():
            srv.routes[route] = Route(body)
        catalog = tmp_path / "h.yaml"
        catalog.write_text(
            "corpora:\n  - name: hj\n    title: t\n    description: d\n    license: CC0-1.0\n"
            "    languages: [en]\n    domains: [prose]\n"
            "    source:\n      type: http\n      allow_http: true\n      files:\n"
            + files.replace("URL", srv.url)
            + "    reader: jsonl\n",
            encoding="utf-8",
        )
        entry = Catalog.load([catalog]).get("hj")
        monkeypatch.setattr(fetch_module, "PART_BYTES_MIN", 1)
        tasks: list[str] = []
        real = fetch_module.read_part_task

        def spy(task: fetch_module.ReadTask) -> fetch_module.ReadResult:
            tasks.append(task.out)
            return real(task)

        for workers in (1, 2):
            # The spy runs in this process (1 worker); the pool needs the importable function.
            monkeypatch.setattr(fetch_module, "read_part_task", spy if workers == 1 else real)
            result = fetch_entry(
                entry, tmp_path / f"w{workers}", progress=False, shard_bytes=8_000,
                workers=workers,
            )
            outputs[workers] = digests(result.path)
        assert len(tasks) > 1, "the http files were read as tasks, not in one pass"
    assert outputs[1] == outputs[2]
    assert result.documents == len(docs) and len(result.manifest["shards"]) == 3
