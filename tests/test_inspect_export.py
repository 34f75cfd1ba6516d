"""`inspect` and `export` on a small real build."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from corpuskit import api
from corpuskit.cli import cli


def test_inspect_and_export(data_dir: Path, tiny_corpus: str, tmp_path: Path) -> None:
    import datasets

    result = api.build(tiny_corpus, progress=False)
    report = api.inspect(tiny_corpus, samples=2)
    assert set(report["splits"]) == {"train", "val"}
    train = report["splits"]["train"]
    assert train["tokens"] == result.meta["splits"]["train"]["tokens"]
    assert train["unknown_rate"] == 0.0  # byte fallback: nothing is unknown
    assert sum(b["documents"] for b in train["length_histogram"]) == train["documents"]
    assert len(train["samples"]) == 2 and train["samples"][0]["text"]
    out = CliRunner().invoke(cli, ["inspect", tiny_corpus, "--json"], catch_exceptions=False)
    assert json.loads(out.output)["corpus"] == tiny_corpus

    target = tmp_path / "hf"
    api.export(tiny_corpus, target)
    docs = datasets.load_from_disk(str(target / "documents"))
    tokens = datasets.load_from_disk(str(target / "tokens"))
    assert docs["train"].num_rows == train["documents"]
    assert tokens["validation"].num_rows == report["splits"]["val"]["documents"]
    first = tokens["train"][0]["input_ids"]
    assert first[-1] == result.meta["eos_id"]
    from corpuskit.tokenizers import load_tokenizer

    assert load_tokenizer(result.tokens_dir).decode(first[:-1]) == docs["train"][0]["text"]


def test_nanogpt_style_trainer_reads_build_unchanged(data_dir: Path, tiny_corpus: str) -> None:
    # What nanoGPT's train.py does: meta.pkl for vocab_size, np.memmap(uint16) + random windows.
    import pickle

    import numpy as np
    import torch

    build = api.build(tiny_corpus, progress=False).tokens_dir
    with open(build / "meta.pkl", "rb") as fh:
        vocab_size = pickle.load(fh)["vocab_size"]
    block_size, batch_size = 16, 4
    data = np.memmap(build / "train.bin", dtype=np.uint16, mode="r")
    ix = torch.randint(
        len(data) - block_size, (batch_size,), generator=torch.Generator().manual_seed(0)
    )
    x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack(
        [torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix]
    )
    assert x.shape == y.shape == (batch_size, block_size)
    assert int(x.max()) < vocab_size and torch.equal(x[:, 1:], y[:, :-1])
