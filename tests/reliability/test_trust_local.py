"""Local folders: splits from file names (or ``split:`` per glob), and nothing read from outside
the folder (no ``..`` or absolute globs; symlinks out of the folder skipped and counted)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents, read_manifest
from tests.conftest import run_main

NAME = "folder"


def _catalog(tmp_path: Path, source: str, reader: str = "text") -> Path:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {NAME}
    title: A local folder
    description: Files written by the test.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    reader: {reader}
    source: {source}
    recipe: {{tokenizer: byte}}
""",
        encoding="utf-8",
    )
    return catalog


def _files_source(folder: Path, globs: str, extra: str = "") -> str:
    return f'{{type: local, kind: files, path: "{folder}", globs: {globs}{extra}}}'


def _articles(split: str, n: int) -> str:
    """WikiText-shaped text: n articles whose titles and bodies name their split."""
    return "".join(
        f" \n = {split} article {i} = \n \n {split} body {i} words here \n" for i in range(n)
    )


def _fetch(catalog: Path) -> tuple[dict, list[dict]]:
    result = api.fetch(NAME, catalog=[catalog], progress=False)
    return read_manifest(result.path), list(iter_documents(result.path))


@pytest.fixture
def wiki_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    for split, word, n in (("train", "train", 5), ("valid", "validation", 3), ("test", "test", 2)):
        (folder / f"wiki.{split}.tokens").write_text(_articles(word, n), encoding="utf-8")
    return folder


@pytest.mark.parametrize("reader", ["wikitext", "text"])
def test_split_names_in_a_local_folder_become_the_raw_splits(
    tmp_path: Path, data_dir: Path, wiki_folder: Path, reader: str
) -> None:
    catalog = _catalog(tmp_path, _files_source(wiki_folder, '["*.tokens"]'), reader)
    manifest, docs = _fetch(catalog)
    per_file = 1 if reader == "text" else None
    expected = {"train": 5, "validation": 3, "test": 2}
    assert {s: c["documents"] for s, c in manifest["splits"].items()} == {
        s: per_file or n for s, n in expected.items()
    }
    for doc in docs:  # every document sits in the split its file (and its text) names
        assert doc["text"].count(f" {doc['split']} body ") == (
            expected[doc["split"]] if per_file else 1
        )
    assert len({d["id"] for d in docs}) == len(docs)
    if reader == "wikitext":
        assert [d["title"] for d in docs if d["split"] == "validation"] == [
            f"validation article {i}" for i in range(3)
        ]


def test_the_build_keeps_a_folders_own_splits(
    tmp_path: Path, data_dir: Path, wiki_folder: Path
) -> None:
    """Val and test are the folder's validation and test files, not a hash split of all."""
    catalog = _catalog(tmp_path, _files_source(wiki_folder, '["*.tokens"]'), "wikitext")
    api.fetch(NAME, catalog=[catalog], progress=False)
    result = api.build(NAME, catalog=[catalog], dedup=False, progress=False)
    splits = result.meta["splits"]
    assert {s: splits[s]["documents"] for s in ("train", "val", "test")} == {
        "train": 5,
        "val": 3,
        "test": 2,
    }


def test_a_folder_without_a_validation_file_gets_one_cut_from_train(
    tmp_path: Path, data_dir: Path
) -> None:
    """Train and test files only: test is kept whole, validation is a hash share of train."""
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(60):
        (folder / f"train_{i}.txt").write_text(f"train document {i} words", "utf-8")
    for i in range(4):
        (folder / f"test_{i}.txt").write_text(f"test document {i} words", "utf-8")
    catalog = _catalog(tmp_path, _files_source(folder, '["**/*.txt"]'))
    api.fetch(NAME, catalog=[catalog], progress=False)
    result = api.build(NAME, catalog=[catalog], dedup=False, val_fraction=0.2, progress=False)
    counts = {s: c["documents"] for s, c in result.meta["splits"].items()}
    assert counts["test"] == 4
    assert counts["train"] + counts["val"] == 60
    assert 0 < counts["val"] < 30
    again = api.build(NAME, catalog=[catalog], dedup=False, val_fraction=0.2, progress=False)
    assert again.tokens_dir == result.tokens_dir  # the same split every time


def test_split_per_glob_overrides_the_name_and_plain_globs_still_work(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = tmp_path / "texts"
    (folder / "main").mkdir(parents=True)
    (folder / "held").mkdir()
    for i in range(4):
        (folder / "main" / f"doc{i}.txt").write_text(f"main {i}", encoding="utf-8")
    (folder / "main" / "test_notes.txt").write_text("named test", encoding="utf-8")
    (folder / "held" / "a.txt").write_text("held a", encoding="utf-8")
    (folder / "held" / "train_b.txt").write_text("held b", encoding="utf-8")
    globs = '["main/*.txt", {glob: "held/*.txt", split: validation}]'
    manifest, docs = _fetch(_catalog(tmp_path, _files_source(folder, globs)))
    split_of = {d["path"]: d["split"] for d in docs}
    assert split_of == {
        **{f"main/doc{i}.txt": "train" for i in range(4)},
        "main/test_notes.txt": "test",  # inferred from the name, as for downloads
        "held/a.txt": "validation",
        "held/train_b.txt": "validation",  # the glob's split wins over the name
    }
    assert manifest["skipped"] == {}


def test_globs_of_different_splits_matching_one_file_are_refused(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("a", encoding="utf-8")
    globs = '[{glob: "*.txt", split: train}, {glob: "a.*", split: test}]'
    with pytest.raises(CorpuskitError, match=r"a\.txt is matched by globs of different splits"):
        api.fetch(NAME, catalog=[_catalog(tmp_path, _files_source(folder, globs))], progress=False)


def test_code_files_named_test_stay_in_train(tmp_path: Path, data_dir: Path) -> None:
    """``test_x.py`` is a test module, not a held-out split: the build still splits by hash."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "test_x.py").write_text("def test_x():\n    assert True\n", encoding="utf-8")
    (folder / "x.py").write_text("X = 1\n", encoding="utf-8")
    manifest, docs = _fetch(_catalog(tmp_path, _files_source(folder, '["*.py"]'), "code"))
    assert set(manifest["splits"]) == {"train"}


@pytest.mark.parametrize(
    "glob", ["../outside/*.txt", "sub/../../x.txt", "/etc/*", "~/notes/*.txt", "C:/data/*.txt"]
)
@pytest.mark.parametrize("form", ["plain", "with_split"])
def test_globs_leaving_the_folder_are_refused_in_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], glob: str, form: str
) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    globs = f'["{glob}"]' if form == "plain" else f'[{{glob: "{glob}", split: test}}]'
    catalog = _catalog(tmp_path, _files_source(folder, globs))
    code, out, err = run_main(capsys, "--catalog", str(catalog), "fetch", NAME)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "must be relative to the folder and stay inside it" in lines[0]
    assert not (data_dir / "raw" / NAME).exists()


@pytest.fixture
def linked_folder(tmp_path: Path) -> Path:
    """A folder with its own files, a link to a file outside, a link to a folder outside,
    a link to one of its own files, and a dangling link."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("outside secret", encoding="utf-8")
    (outside / "dir" / "inner.txt").write_text("outside inner", encoding="utf-8")
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "own.txt").write_text("own text", encoding="utf-8")
    (folder / "sub" / "deep.txt").write_text("deep text", encoding="utf-8")
    os.symlink(outside / "secret.txt", folder / "secret.txt")
    os.symlink(outside / "dir", folder / "linked")
    os.symlink(Path("sub") / "deep.txt", folder / "alias.txt")
    os.symlink(folder / "missing.txt", folder / "dangling.txt")
    return folder


def test_symlinks_out_of_the_folder_are_skipped_and_counted(
    tmp_path: Path, data_dir: Path, linked_folder: Path
) -> None:
    catalog = _catalog(tmp_path, _files_source(linked_folder, '["*.txt", "*/*.txt"]'))
    manifest, docs = _fetch(catalog)
    assert sorted(d["text"] for d in docs) == ["deep text", "deep text", "own text"]
    assert manifest["skipped"] == {"broken_symlink": 1, "symlink_outside": 2}
    assert not any("outside" in json.dumps(d) for d in docs)


def test_follow_symlinks_true_reads_what_the_links_point_to(
    tmp_path: Path, data_dir: Path, linked_folder: Path
) -> None:
    source = _files_source(linked_folder, '["*.txt", "*/*.txt"]', ", follow_symlinks: true")
    manifest, docs = _fetch(_catalog(tmp_path, source))
    assert sorted(d["text"] for d in docs) == [
        "deep text",
        "deep text",
        "outside inner",
        "outside secret",
        "own text",
    ]
    assert manifest["skipped"] == {"broken_symlink": 1}


def test_a_symlinked_folder_root_is_the_folder(tmp_path: Path, data_dir: Path) -> None:
    """``path:`` itself may be a symlink (a data disk mounted elsewhere): its files are inside."""
    real = tmp_path / "disk" / "texts"
    real.mkdir(parents=True)
    (real / "a.txt").write_text("on the disk", encoding="utf-8")
    os.symlink(real, tmp_path / "texts")
    manifest, docs = _fetch(_catalog(tmp_path, _files_source(tmp_path / "texts", '["*.txt"]')))
    assert [d["text"] for d in docs] == ["on the disk"]
    assert manifest["skipped"] == {}
