"""What the fact check of the catalog (issue 15) relies on: the compressed files entries name are
readable by their readers, and the globs select the publisher's layout as it was read.

Offline: compressed files are written in tmp_path; layouts are the paths the sources showed.
"""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest

from corpuskit.catalog import BUILTIN_CATALOG_DIR, Catalog, CorpusEntry, ReaderOptions, load_file
from corpuskit.errors import CorpuskitError
from corpuskit.readers import reader_for
from corpuskit.sources.common import infer_split, match_any

PARAGRAPHS = "Erster Absatz.\nNoch der erste.\n\nZweiter Absatz: äöü ß.\n\nDritter."
COMPRESS = {".xz": lzma.compress, ".gz": gzip.compress}


@pytest.fixture(scope="module")
def builtin() -> dict[str, CorpusEntry]:
    files = sorted(BUILTIN_CATALOG_DIR.glob("*.yaml"))
    return {e.name: e for e in Catalog(e for f in files for e in load_file(f))}


def _texts(reader: str, path: Path, **options: object) -> list[str | None]:
    docs = reader_for(reader).read([(path, path.name)], ReaderOptions(**options))
    return [d["text"] for d in docs]


@pytest.mark.parametrize("suffix", [".xz", ".gz"])
def test_text_reader_streams_compressed_paragraphs(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"de.txt{suffix}"
    path.write_bytes(COMPRESS[suffix](PARAGRAPHS.encode()))
    assert _texts("text", path, unit="paragraph") == [
        "Erster Absatz.\nNoch der erste.",
        "Zweiter Absatz: äöü ß.",
        "Dritter.",
    ]
    assert _texts("text", path, unit="line")[2] == "Zweiter Absatz: äöü ß."
    assert _texts("text", path) == [PARAGRAPHS]  # unit: file, decompressed whole


def test_jsonl_reader_streams_xz(tmp_path: Path) -> None:
    path = tmp_path / "part.jsonl.xz"
    lines = [json.dumps({"text": f"doc {i}"}) for i in range(3)]
    path.write_bytes(lzma.compress("\n".join(lines).encode()))
    assert _texts("jsonl", path) == ["doc 0", "doc 1", "doc 2"]


def _damaged(kind: str, data: bytes) -> bytes:
    packed = lzma.compress(data)
    if kind == "truncated":
        return packed[: len(packed) // 2]
    return packed[:40] + bytes(b ^ 0xFF for b in packed[40:80]) + packed[80:]


@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
@pytest.mark.parametrize(
    ("reader", "name", "options"),
    [
        ("text", "de.txt.xz", {"unit": "paragraph"}),
        ("text", "de.txt.xz", {"unit": "file"}),
        ("jsonl", "part.jsonl.xz", {}),
    ],
)
def test_damaged_xz_is_one_line_error_naming_the_file(
    tmp_path: Path, kind: str, reader: str, name: str, options: dict[str, str]
) -> None:
    """A cut download must stop the fetch, never end the language's text early as complete."""
    body = "\n".join(json.dumps({"text": f"document number {i} " * 5}) for i in range(400))
    path = tmp_path / name
    path.write_bytes(_damaged(kind, body.encode()))
    with pytest.raises(CorpuskitError) as info:
        _texts(reader, path, **options)
    message = str(info.value)
    assert "\n" not in message
    assert name in message and "delete it and fetch again" in message


def test_every_compressed_file_the_catalog_names_has_a_reader_that_opens_it(
    tmp_path: Path, builtin: dict[str, CorpusEntry]
) -> None:
    """cc100 names xx.txt.xz for the text reader: each (reader, suffix) pair in the catalog is
    read back from a real compressed file."""
    pairs: set[tuple[str, str]] = set()
    for entry in builtin.values():
        src = entry.source
        names = list(getattr(src, "globs", None) or [])
        for f in getattr(src, "files", None) or []:
            names.append(getattr(f, "url", None) or getattr(f, "path", ""))
        names += [g for s in entry.subsets for g in s.globs or []]
        for name in names:
            suffix = Path(str(name)).suffix
            if suffix in COMPRESS and entry.reader in {"text", "jsonl"}:
                pairs.add((entry.reader, suffix))
    assert ("text", ".xz") in pairs  # cc100: the case this test exists for
    for reader, suffix in sorted(pairs):
        raw = json.dumps({"text": "hello"}) if reader == "jsonl" else "hello"
        path = tmp_path / f"f.{reader}{suffix}"
        path.write_bytes(COMPRESS[suffix](raw.encode()))
        assert _texts(reader, path) == ["hello"], (reader, suffix)


def test_fineweb2_glob_takes_language_folders_not_removed_documents(
    builtin: dict[str, CorpusEntry],
) -> None:
    """data/<lang>_removed/train holds what FineWeb-2's filters threw away (seen at commit
    cab26bb); data/<lang>/test is a held-out split. Neither belongs in a train fetch."""
    entry = builtin["fineweb-2"]
    globs = entry.source.globs
    assert match_any("data/dan_Latn/train/000_00000.parquet", globs)
    assert match_any("data/cmn_Hani/train/000_00003.parquet", globs)
    assert not match_any("data/acf_Latn_removed/train/000_00000.parquet", globs)
    assert not match_any("data/dan_Latn/test/000_00000.parquet", globs)
    for subset in entry.subsets:  # a subset selects a part of what the source selects
        sample = subset.globs[0].replace("*", "000_00000")
        assert match_any(sample, globs), subset.name


def test_mbpp_leaves_out_the_few_shot_prompt_split(builtin: dict[str, CorpusEntry]) -> None:
    """full/prompt-*.parquet (10 few-shot problems) has no train/validation/test word in its
    name, so it would be read as train; the card's splits are 374/90/500 (+10 prompt)."""
    globs = builtin["mbpp"].source.globs
    layout = [f"full/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")]
    assert all(match_any(p, globs) for p in layout)
    assert {infer_split(p) for p in layout} == {"train", "validation", "test"}
    assert not match_any("full/prompt-00000-of-00001.parquet", globs)
    assert builtin["mbpp"].size.documents == 374 + 90 + 500


def test_hub_entries_pinned_where_main_lost_or_relicensed_files(
    builtin: dict[str, CorpusEntry],
) -> None:
    """github-code's main deleted a shard; NuminaMath-CoT's first upload was CC-BY-NC-4.0."""
    assert builtin["github-code"].source.revision == "e74c701b519f59c3ae6f65d45588cabd93396362"
    assert builtin["numinamath-cot"].source.revision == "78193828787c02a8eb8a8582166f3f0b42644797"
    assert builtin["numinamath-cot"].license == "Apache-2.0"
