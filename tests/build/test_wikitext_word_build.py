"""The classic word-level WikiText-2 setup through fetch and build, on the real validation split.

A fake Hub on loopback serves parquet rebuilt from the real ``wiki.valid.tokens``; it stands in
for both the train and the validation file, so that the build's validation split is exactly the
published one and its vocabulary comes from a (here identical) train split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpuskit import api
from corpuskit.tokenizers import load_tokenizer
from tests.conftest import needs_shared
from tests.sources.test_fetch_helpers import LoopbackServer, Route, wikitext_parquet
from tests.sources.test_fetch_hf import REV, unpinned_wikitext2


@pytest.fixture(autouse=True)
def hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CORPUSKIT_OFFLINE",
        "HF_HUB_OFFLINE",
        "CORPUSKIT_MIRROR",
        "CORPUSKIT_LOCK",
        "HF_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def test_word_level_validation_split_has_the_published_token_count(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = needs_shared("wikitext-2", "wiki.valid.tokens")
    parquet = wikitext_parquet(valid)
    catalog = unpinned_wikitext2(tmp_path)
    with LoopbackServer() as hub:
        for split in ("train", "validation"):
            path = f"wikitext-2-v1/{split}-00000-of-00001.parquet"
            hub.routes[f"/datasets/Salesforce/wikitext/resolve/{REV}/{path}"] = Route(parquet)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        api.fetch(
            "wikitext2-unpinned", catalog=[catalog], splits=["train", "validation"], progress=False
        )
    # The entry's own recipe (word tokenizer, text kept exactly as published); deduplication
    # off only because this stand-in train split is the validation split itself.
    result = api.build("wikitext2-unpinned", catalog=[catalog], dedup=False, progress=False)
    meta = result.meta
    assert meta["tokenizer"]["spec"] == "word"
    assert meta["splits"]["val"]["tokens"] == 217_646  # Merity et al. 2016, validation
    assert meta["splits"]["val"]["documents"] == 60
    words = valid.read_text(encoding="utf-8").split()
    # <unk>, <eos> and every distinct word of the split (which already contains <unk>).
    assert meta["vocab_size"] == len(set(words)) + 1
    ids = np.memmap(result.tokens_dir / "val.bin", dtype=np.uint16, mode="r")
    assert int((ids == meta["unk_id"]).sum()) == words.count("<unk>")
    text = load_tokenizer(result.tokens_dir).decode(ids[:40].tolist())
    assert text.lstrip("\n").startswith("= Homarus gammarus =")
