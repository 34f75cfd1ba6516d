"""Property: packed ids of a sentencepiece build decode back to the cleaned documents exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpuskit import api
from corpuskit.pack import open_split
from corpuskit.shards import iter_documents
from corpuskit.tokenizers import load_tokenizer
from tests.conftest import make_documents

# Documents mixing generated prose with arbitrary Unicode (controls and odd whitespace included):
# whatever cleaning leaves, the tokenizer must give back byte for byte.
extra_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(extra_text, min_size=1, max_size=8), st.integers(0, 1000))
def test_packed_ids_decode_to_the_cleaned_documents(extras: list[str], seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "texts"
        folder.mkdir()
        docs = make_documents(40, seed=seed)
        for i, extra in enumerate(extras):
            docs[i] = f"{docs[i]}\n{extra}"
        for i, text in enumerate(docs):
            (folder / f"d{i:03d}.txt").write_bytes(text.encode("utf-8", "surrogatepass"))
        catalog = root / "c.yaml"
        catalog.write_text(
            "corpora:\n  - name: rt\n    title: rt\n    description: rt\n    license: CC0-1.0\n"
            "    languages: [en]\n    domains: [prose]\n"
            f"    source: {{type: local, kind: files, path: '{folder}', globs: ['*.txt']}}\n"
        )
        result = api.build(
            "rt",
            data_dir=root / "data",
            catalog=[catalog],
            workers=1,
            tokenizer="spm-bpe:400",
            val_fraction=0.2,
            progress=False,
        )
        tokenizer = load_tokenizer(result.tokens_dir)
        for split in result.meta["splits"]:
            expected = [d["text"] for d in iter_documents(result.clean_dir, split=split)]
            ids, idx = open_split(result.tokens_dir, split)
            got = [
                tokenizer.decode(ids[idx[i] : idx[i + 1] - 1].tolist()) for i in range(len(idx) - 1)
            ]
            assert got == expected
