"""The document shard format opens with pyarrow, polars and datasets, and manifests are honest."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.shards import (
    ShardWriter,
    document_schema,
    fingerprint,
    read_manifest,
    staging_dir,
    write_json_atomic,
)


def _write(directory: Path, n: int, shard_bytes: int = 1 << 20):
    schema = document_schema(["path"])
    writer = ShardWriter(directory, schema, shard_bytes=shard_bytes, batch_rows=7)
    for i in range(n):
        split = "val" if i % 5 == 0 else "train"
        writer.write({"id": f"c/{i}", "text": f"document {i} " * 10, "split": split,
                      "source": "test", "path": f"p{i}.txt"})
    return writer, writer.close()


def test_shards_open_with_pyarrow_polars_and_datasets(tmp_path: Path) -> None:
    import datasets
    import polars as pl

    writer, shards = _write(tmp_path, 50, shard_bytes=2000)
    assert len(shards) > 1, "a small shard size must split the output"
    files = [str(tmp_path / s.file) for s in shards]
    reader = ipc.open_file(files[0])
    assert reader.schema.field("text").type == pa.large_string()
    total = sum(ipc.open_file(f).read_all().num_rows for f in files)
    assert total == 50
    frame = pl.scan_ipc(files).collect()
    assert frame.height == 50 and frame["id"][0] == "c/0"
    ds = datasets.load_dataset("arrow", data_files={"train": files}, split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == 50 and set(ds.column_names) >= {"id", "text", "split", "source", "path"}
    assert writer.split_counts["val"]["documents"] == 10
    assert writer.split_counts["train"]["documents"] == 40


def test_fingerprint_is_order_independent_and_sensitive() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_staging_dir_keeps_old_artifact_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    final.mkdir()
    (final / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), staging_dir(final) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert (final / "keep.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"], "no debris left"
    with staging_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_manifest_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CorpuskitError, match="not a complete artifact"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CorpuskitError, match="corrupt"):
        read_manifest(tmp_path)
    write_json_atomic(tmp_path / "manifest.json", {"format_version": 99})
    with pytest.raises(CorpuskitError, match="format_version 99"):
        read_manifest(tmp_path)
