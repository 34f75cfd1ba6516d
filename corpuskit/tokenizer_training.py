"""Training a build's tokenizer on a sample of train lines, in this process or a fresh one.

Both the token build (``encode``) and the mixture build train on the non-blank lines of clean
train splits, each line kept when a hash of it falls below the artifact's sample fraction
(``train_lines``): a line's fate does not depend on the order or the worker count.

Sentencepiece's trainer holds several times its sample in memory (about 530 MB over its input
for the default 100 MB budget). Trained in the build's driver, that peak stacked on whatever
the driver's allocators still held from the global phase (1.0 GB at 10 GB of input). A sample of
``ISOLATE_BYTES`` or more is therefore trained in a fresh spawned process that exits right
after and hands back the model bytes; smaller ones (tests, small corpora) stay in this process,
where spawning would cost more than training. The model is the same either way: the same lines,
seed and thread count (``tests/build/test_spm_sample.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import xxhash

from corpuskit.shards import read_batches, shard_paths
from corpuskit.tokenizers import (
    SentencePieceTokenizer,
    Tokenizer,
    TokenizerSpec,
    parse_spec,
    train_tokenizer,
)

# Sentencepiece's trainers sum floats across threads, so the model depends on the thread count.
# A fixed count keeps builds byte-identical whatever --workers is (encoding has no such issue).
SPM_TRAIN_THREADS = 8
# Samples of at least this many bytes train sentencepiece in a process of their own.
ISOLATE_BYTES = 16 * 2**20


def train_lines(clean_dir: Path, keep: float = 1.0, seed: int = 0) -> Iterator[str]:
    """Non-blank lines of the train split; with ``keep`` < 1, each line is kept when a hash of
    it falls below ``keep``: the same lines whatever the order or the worker count."""
    cut = int(keep * 2**64) if keep < 1 else None
    for path in shard_paths(clean_dir):
        for batch in read_batches(path, ["text", "split"]):
            texts = batch.filter(pc.equal(batch.column("split"), "train")).column("text")
            for text in texts.to_pylist():
                for line in text.split("\n"):
                    if not line.strip():
                        continue
                    if cut is None or xxhash.xxh64_intdigest(line.encode("utf-8"), seed) < cut:
                        yield line


@dataclass(frozen=True)
class TrainingSample:
    """What a tokenizer is trained on: the train lines of each ``(clean_dir, keep)`` part, in
    order, and the sample's expected size in bytes (it decides where sentencepiece runs)."""

    parts: tuple[tuple[str, float], ...]
    seed: int
    expected_bytes: int

    def lines(self) -> Iterator[str]:
        for clean_dir, keep in self.parts:
            yield from train_lines(Path(clean_dir), keep, self.seed)


@dataclass(frozen=True)
class _Job:
    spec: TokenizerSpec
    sample: TrainingSample
    sentence_budget: int


def _train(job: _Job) -> Tokenizer:
    return train_tokenizer(
        job.spec,
        job.sample.lines(),
        sentence_budget=job.sentence_budget,
        seed=job.sample.seed,
        num_threads=SPM_TRAIN_THREADS,
    )


def _train_model_proto(job: _Job) -> bytes:
    """Runs in the spawned process: the trained sentencepiece model's bytes."""
    tokenizer = _train(job)
    assert isinstance(tokenizer, SentencePieceTokenizer)
    return tokenizer.model_proto


def train_on_sample(
    spec: str | TokenizerSpec, sample: TrainingSample, *, sentence_budget: int
) -> Tokenizer:
    """The tokenizer for ``spec``, trained on ``sample`` where it needs training."""
    from corpuskit.executors.local import call_isolated

    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    job = _Job(parsed, sample, sentence_budget)
    if parsed.kind != "spm" or sample.expected_bytes < ISOLATE_BYTES:
        return _train(job)
    proto = call_isolated(_train_model_proto, job, desc="tokenizer training")
    return SentencePieceTokenizer(proto, parsed.text)
