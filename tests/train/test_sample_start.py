"""`sample` continues a prompt as the start of a document, exactly as training saw documents:
after the end-of-document id, and after the BOS id too when the build put one before each
document (`build --bos`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from corpuskit import api

sample_module = importlib.import_module("corpuskit.train.sample")


@pytest.mark.parametrize("bos", [False, True])
def test_sampling_starts_where_documents_start(
    data_dir: Path, tiny_corpus: str, monkeypatch: pytest.MonkeyPatch, bos: bool
) -> None:
    built = api.build(tiny_corpus, tokenizer="spm-bpe:300", bos=bos, workers=1, progress=False)
    meta = built.meta
    run = api.train(tiny_corpus, model="ngram", preset="trigram", progress=False)
    seen: list[list[int]] = []
    real_counted = sample_module.counted

    class Spy:
        """The n-gram family, recording the ids sampling starts from."""

        def __init__(self, family: Any) -> None:
            self.family = family

        def sample(self, run_dir: Path, ids: list[int], *args: Any) -> list[int]:
            seen.append(list(ids))
            return self.family.sample(run_dir, ids, *args)

    monkeypatch.setattr(sample_module, "counted", lambda name: Spy(real_counted(name)))
    text = api.sample(run.run_dir.name, "River", max_new_tokens=5, temperature=0)
    assert text.startswith("River")
    start = [meta["eos_id"], meta["bos_id"]] if bos else [meta["eos_id"]]
    assert seen[0][: len(start)] == start
    assert seen[0][len(start)] != meta.get("bos_id")  # the prompt follows at once
