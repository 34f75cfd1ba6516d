"""The build with every stage: worker-count determinism, manifest stats, recipes, dry run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.build import DROPPED_SAMPLES, DUPLICATES, BuildConfig, build_clean
from corpuskit.cli import cli
from corpuskit.errors import CorpuskitError
from corpuskit.fetch import fetch_entry
from corpuskit.recipe import load_recipe, parse_sets, resolve
from corpuskit.shards import iter_documents
from tests.conftest import WORDS, make_documents

FULL = {
    "quality": True,
    "min_words": 10,
    "repetition": True,
    "near_dedup": True,
    "stopwords": "filter",
    "min_stopword_fraction": 0.05,
    "decontaminate": "drop",
    "test_fraction": 0.1,
    "val_fraction": 0.1,
}


@pytest.fixture
def messy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> str:
    """A generated corpus with every kind of problem, fetched into several small shards."""
    rng = random.Random(3)
    parts = [d.replace("\n", " ") for d in make_documents(900, seed=5)]
    docs = [" ".join(parts[i : i + 3]) for i in range(0, 900, 3)]
    docs[20] = docs[10]  # exact duplicate
    words = docs[11].split()
    words[5] = "changed"
    docs[40] = " ".join(words)  # near duplicate
    docs[50] = "Buy now! " * 40  # repetition
    docs[60] = "tiny"  # too few words
    docs[70] = "The Mona Lisa doesnâ€™t have eyebrows. " + docs[70]  # mojibake
    for i in range(80, 90):
        docs[i] = " ".join(rng.choice(WORDS[:18]) for _ in range(40))  # nouns: no stopwords
    folder = tmp_path / "messy"
    folder.mkdir()
    for i, text in enumerate(docs):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp_path / "messy.yaml"
    catalog.write_text(
        f"""corpora:
  - name: messy
    title: Messy generated corpus
    description: Generated documents with planted problems.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
    recipe: {{tokenizer: "byte"}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    entry = api.load_catalog().get("messy")
    fetch_entry(entry, data_dir, progress=False, shard_bytes=40_000)
    return "messy"


def _build(name: str, root: Path, **settings: object) -> tuple[Path, dict]:  # type: ignore[type-arg]
    entry = api.load_catalog().get(name)
    config = resolve(entry, overrides=settings)
    path, manifest, _ = build_clean(entry, root, config, progress=False)
    return path, manifest


def test_every_stage_counts_and_records(messy: str, data_dir: Path) -> None:
    path, manifest = _build(messy, data_dir, **FULL, workers=1)
    stats = manifest["stats"]
    assert list(stats) == [
        "clean",
        "length",
        "quality",
        "repetition",
        "exact_dedup",
        "near_dedup",
        "stopwords",
        "decontaminate",
    ]
    assert stats["clean"]["changed"] >= 1
    assert stats["quality"]["dropped"]["too_few_words"] == 1
    assert sum(stats["repetition"]["dropped"].values()) >= 1
    assert stats["exact_dedup"]["dropped"] == {"exact_duplicate": 1}
    assert stats["exact_dedup"]["clusters"] == 1
    assert stats["near_dedup"]["dropped"] == {"near_duplicate": 1}
    assert stats["stopwords"]["dropped"]["too_few_stopwords"] == 10
    for name, st in stats.items():
        assert st["documents_in"] - st["documents_out"] == sum(st["dropped"].values()), name
    ids = {d["id"] for d in iter_documents(path, ["id"])}
    assert not any(i.endswith(("doc0020.txt", "doc0040.txt")) for i in ids)
    dupes = pq.read_table(path / DUPLICATES).to_pylist()
    assert [(d["id"][-11:], d["duplicate_of"][-11:], d["kind"]) for d in dupes] == [
        ("doc0020.txt", "doc0010.txt", "exact"),
        ("doc0040.txt", "doc0011.txt", "near"),
    ]
    samples = [json.loads(line) for line in (path / DROPPED_SAMPLES).read_text().splitlines()]
    assert {(s["stage"], s["reason"]) for s in samples} >= {
        ("quality", "too_few_words"),
        ("exact_dedup", "exact_duplicate"),
    }
    assert not (path / "_work").exists()
    texts = " ".join(d["text"] for d in iter_documents(path, ["text"]))
    assert "doesn’t" in texts and "â€" not in texts


def test_output_is_identical_for_one_and_two_workers(
    messy: str, data_dir: Path, tmp_path: Path
) -> None:
    one, m1 = _build(messy, data_dir, **FULL, workers=1)
    files1 = {p.name: p.read_bytes() for p in sorted(one.iterdir())}
    # Same config, another root: a fresh build with two workers.
    other = tmp_path / "other"
    (other / "raw").mkdir(parents=True)
    import shutil

    shutil.copytree(data_dir / "raw" / messy, other / "raw" / messy)
    two, m2 = _build(messy, other, **FULL, workers=2)
    files2 = {p.name: p.read_bytes() for p in sorted(two.iterdir())}
    assert len([n for n in files1 if n.startswith("part-")]) >= 1
    assert files1 == files2
    assert m1["fingerprint"] == m2["fingerprint"]


def test_decontamination_in_a_build(messy: str, data_dir: Path) -> None:
    path, manifest = _build(
        messy, data_dir, val_fraction=0.3, decontaminate="mark", decontaminate_ngram=4
    )
    docs = list(iter_documents(path, ["split", "contaminated"]))
    assert any(d["contaminated"] for d in docs)  # a 24-word vocabulary: 4-grams repeat
    assert not any(d["contaminated"] for d in docs if d["split"] != "train")
    assert manifest["stats"]["decontaminate"]["eval_ngrams"] > 0


def test_recipe_sections_flags_and_precedence(tmp_path: Path, tiny_corpus: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "filter: {min_chars: 5, quality: true}\n"
        "dedup: {near: true, threshold: 0.9}\n"
        "stopwords: {mode: remove}\n"
        "languages: [en]\n",
        encoding="utf-8",
    )
    entry = api.load_catalog().get(tiny_corpus)
    config = resolve(entry, recipe, {"min_chars": 7, **parse_sets(["minhash_bands=16"])})
    assert config.min_chars == 7 and config.quality and config.near_dedup
    assert config.minhash_threshold == 0.9 and config.minhash_bands == 16
    assert config.stopwords == "remove" and config.languages == ("en",)
    assert config.tokenizer == "spm-bpe:300"  # from the catalog entry's recipe
    assert BuildConfig().output_config()["dedup"] is True  # old field names still there


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("filter: {min_char: 5}", "unknown build option 'filter.min_char'"),
        ("qualty: true", "did you mean 'quality'"),
        ("min_chars: [1, 2", "not valid YAML at line"),
        ("- a\n- b", "must be a mapping"),
        ("min_chars: lots", "min_chars"),
        ("stopwords: {mode: sometimes}", "--stopwords must be"),
        ("dedup: {near: true, bands: 50}", "exceeds"),
    ],
)
def test_recipe_errors_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(content, encoding="utf-8")
    entry = api.load_catalog().get("python-docs")
    with pytest.raises(CorpuskitError, match=message.replace("[", r"\[")) as err:
        resolve(entry, recipe)
    assert "\n" not in str(err.value)


def test_missing_recipe_and_bad_set() -> None:
    with pytest.raises(CorpuskitError, match="does not exist"):
        load_recipe("/nonexistent/recipe.yaml")
    with pytest.raises(CorpuskitError, match="KEY=VALUE"):
        parse_sets(["quality"])


def test_cli_dry_run_prints_the_plan(tmp_path: Path, data_dir: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dedup: {near: true}\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "python-stdlib",
            "--recipe",
            str(recipe),
            "--quality",
            "--dry-run",
            "--set",
            "min_chars=3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "code corpus" in result.output
    assert "code_quality" in result.output and "near_dedup" in result.output
    assert "min_chars=3" in result.output
    assert not data_dir.exists()  # nothing fetched, nothing built
    bad = CliRunner().invoke(cli, ["build", "python-stdlib", "--set", "nope=1", "--dry-run"])
    assert "unknown build option 'nope'" in str(bad.exception)
