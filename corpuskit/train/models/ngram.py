"""Count-based n-gram language model: interpolated Kneser-Ney, or add-k, in vectorised numpy.

n-grams are never stored as tuples. Each order gets dense ids built from the order below it: the
id of ``w1..wk`` is the rank of ``id(w1..wk-1) * V + wk`` among the distinct keys of that order,
so keys stay 64-bit for any order and counting is one ``np.unique`` per order. Lookups are
``np.searchsorted`` on the same sorted keys.

Interpolated Kneser-Ney (Chen & Goodman 1998, one discount per order, D = n1 / (n1 + 2 n2)):

    P_k(w | h) = (max(a_k(h w) - D_k, 0) + D_k * N_k(h) * P_{k-1}(w | h')) / A_k(h)

where ``a_k`` is the raw count at the highest order and the continuation count (number of
distinct words seen before the n-gram) below it, ``A_k(h)`` sums ``a_k`` over the words seen
after ``h``, ``N_k(h)`` counts those words, and ``h'`` drops the first word of ``h``. A context
with ``A_k(h) = 0`` backs off entirely; the unigram level interpolates with the uniform
distribution, so no token has probability zero. Add-k uses the raw counts of the longest
available context: ``(c(h w) + k) / (c(h) + k V)``.

The token stream is one sequence (EOS separates documents), exactly as the neural models see it,
so the perplexities are comparable. No torch needed: this is the registry's counted family, and
``run``, ``train``, ``evaluate_run`` and ``sample`` are what the trainer, the evaluator and the
sampler call for it (see :mod:`corpuskit.train.models`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.train import checkpoint as ckpt
from corpuskit.train.components import add_components
from corpuskit.train.config import TrainConfig
from corpuskit.train.scores import summarize
from corpuskit.train.tokens import TokenBuild, open_build


@dataclass
class Order:
    """The tables of order k: sorted keys of its distinct k-grams and their statistics."""

    keys: np.ndarray  # uint64, sorted: id(first k-1 words) * V + last word
    raw: np.ndarray  # raw counts per k-gram
    cont: np.ndarray  # continuation counts per k-gram (distinct words seen before it)
    discount: float = 0.0
    total: np.ndarray = field(default_factory=lambda: np.zeros(1))  # A_k per context id
    types: np.ndarray = field(default_factory=lambda: np.zeros(1))  # N_k per context id


class NgramModel:
    """Counts of orders 1..N over a token stream and the probabilities they define."""

    def __init__(self, vocab_size: int, order: int, smoothing: str = "kn", add_k: float = 1.0):
        if order < 1:
            raise ValueError(f"setting 'order' must be >= 1, got {order}")
        if smoothing not in ("kn", "addk"):
            raise ValueError(f"setting 'smoothing' is {smoothing!r}; allowed: kn, addk")
        self.vocab_size, self.order = vocab_size, order
        self.smoothing, self.add_k = smoothing, add_k
        self.orders: list[Order] = []

    # ----- counting ---------------------------------------------------------------------------
    def fit(self, tokens: np.ndarray) -> NgramModel:
        """Count every n-gram of orders 1..N in the stream."""
        toks = np.asarray(tokens).astype(np.int64)
        if toks.size and (toks.min() < 0 or toks.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        v = np.uint64(self.vocab_size)
        level_ids = [toks]  # level_ids[k-1][j]: id of the k-gram starting at j
        firsts = [np.zeros(0, np.int64)]  # first occurrence of each distinct k-gram (k >= 2)
        self.orders = [Order(np.arange(self.vocab_size, dtype=np.uint64),
                             np.bincount(toks, minlength=self.vocab_size).astype(np.float64),
                             np.zeros(self.vocab_size))]
        for k in range(2, self.order + 1):
            prev = level_ids[-1]
            if prev.size < 2:
                keys, first, inverse = (np.zeros(0, np.uint64), np.zeros(0, np.int64),
                                        np.zeros(0, np.int64))
            else:
                gram_keys = prev[:-1].astype(np.uint64) * v + toks[k - 1 :].astype(np.uint64)
                keys, first, inverse = np.unique(gram_keys, return_index=True,
                                                 return_inverse=True)
            level_ids.append(inverse.astype(np.int64).ravel())
            firsts.append(first.astype(np.int64))
            raw = np.bincount(level_ids[-1], minlength=keys.size).astype(np.float64)
            self.orders.append(Order(keys, raw, np.zeros(keys.size)))
        # Continuation counts of order k: distinct (k+1)-grams ending with each k-gram, i.e. a
        # count over the (k+1)-grams' suffixes (the k-gram starting one word later).
        for k in range(1, self.order):
            suffix = level_ids[k - 1][firsts[k] + 1]
            self.orders[k - 1].cont = np.bincount(
                suffix, minlength=self.orders[k - 1].keys.size).astype(np.float64)
        self._finalise()
        return self

    def effective(self, k: int) -> np.ndarray:
        """``a_k``: raw counts at the top order (and always for add-k), else continuation."""
        od = self.orders[k - 1]
        return od.raw if (k == self.order or self.smoothing == "addk") else od.cont

    def _finalise(self) -> None:
        """Discounts and per-context totals for the chosen smoothing."""
        v = np.uint64(self.vocab_size)
        for k, od in enumerate(self.orders, start=1):
            a = self.effective(k)
            n1, n2 = float(np.sum(a == 1)), float(np.sum(a == 2))
            od.discount = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.5
            if k == 1:
                od.total, od.types = np.array([a.sum()]), np.array([float(np.sum(a > 0))])
            else:
                contexts = (od.keys // v).astype(np.int64)
                n_ctx = self.orders[k - 2].keys.size
                od.total = np.bincount(contexts, weights=a, minlength=n_ctx)
                od.types = np.bincount(contexts, weights=(a > 0).astype(np.float64),
                                       minlength=n_ctx)

    # ----- probabilities ----------------------------------------------------------------------
    def _find(self, k: int, prev: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Ids of the k-grams (prefix id ``prev``, last word ``words``); -1 where unseen."""
        if k == 1:
            return words.astype(np.int64)
        keys = self.orders[k - 1].keys
        prev, words = np.broadcast_arrays(np.asarray(prev, np.int64), np.asarray(words, np.int64))
        if keys.size == 0:
            return np.full(prev.shape, -1, dtype=np.int64)
        key = prev.clip(min=0).astype(np.uint64) * np.uint64(self.vocab_size) + words.astype(
            np.uint64)
        pos = np.searchsorted(keys, key).clip(max=keys.size - 1)
        return np.where((prev >= 0) & (keys[pos] == key), pos, -1).astype(np.int64)

    def _unigram(self, words: np.ndarray) -> np.ndarray:
        od = self.orders[0]
        raw_total = float(od.raw.sum())
        if self.smoothing == "addk":
            return (od.raw[words] + self.add_k) / (raw_total + self.add_k * self.vocab_size)
        uniform = 1.0 / self.vocab_size
        total, types = float(od.total[0]), float(od.types[0])
        if total <= 0:
            return np.full(words.shape, uniform)
        a = self.effective(1)[words]
        return (np.maximum(a - od.discount, 0.0) + od.discount * types * uniform) / total

    def _mix(self, k: int, ctx: np.ndarray, gram: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """P_k from the context ids, k-gram ids (-1 unseen) and P_{k-1}, all vectorised."""
        od = self.orders[k - 1]
        ctx, gram = np.broadcast_arrays(ctx, gram)
        total = np.where(ctx >= 0, od.total[ctx.clip(min=0)], 0.0)
        a = np.where(gram >= 0, self.effective(k)[gram.clip(min=0)], 0.0)
        if self.smoothing == "addk":
            return (a + self.add_k) / (total + self.add_k * self.vocab_size)
        types = np.where(ctx >= 0, od.types[ctx.clip(min=0)], 0.0)
        safe = np.where(total > 0, total, 1.0)
        mixed = (np.maximum(a - od.discount, 0.0) + od.discount * types * lower) / safe
        return np.where(total > 0, mixed, lower)

    def prob_targets(self, tokens: np.ndarray) -> np.ndarray:
        """P(tokens[i] | up to N-1 previous tokens) for i = 1..len-1 (the first has no context).

        Near the start, where fewer than N-1 tokens precede, the longest available order is used.
        """
        toks = np.asarray(tokens).astype(np.int64)
        m = toks.size
        ids = [toks]
        p = self._unigram(toks)
        for k in range(2, min(self.order, m) + 1):
            ids.append(self._find(k, ids[-1][:-1], toks[k - 1 :]))
            i = np.arange(k - 1, m)
            p[i] = self._mix(k, ids[-2][: m - k + 1], ids[-1], p[i])
        return p[1:]

    def next_distribution(self, context: list[int] | np.ndarray) -> np.ndarray:
        """P(w | context) for every w of the vocabulary; sums to 1."""
        ctx = [int(t) for t in context][-(self.order - 1):] if self.order > 1 else []
        words = np.arange(self.vocab_size, dtype=np.int64)
        p = self._unigram(words)
        for k in range(2, len(ctx) + 2):
            suffix = ctx[len(ctx) - (k - 1):]  # the last k-1 context tokens
            ctx_id = np.int64(suffix[0])
            for j, word in enumerate(suffix[1:], start=2):
                ctx_id = self._find(j, np.array([ctx_id]), np.array([word]))[0]
            p = self._mix(k, np.full(words.shape, ctx_id), self._find(k, ctx_id, words), p)
        return p

    # ----- persistence ------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, od in enumerate(self.orders, start=1):
            out[f"order{k}.keys"], out[f"order{k}.raw"] = od.keys, od.raw
            out[f"order{k}.cont"] = od.cont
        return out

    def metadata(self) -> dict[str, str]:
        return {"model": "ngram", "vocab_size": str(self.vocab_size), "order": str(self.order),
                "smoothing": self.smoothing, "add_k": repr(self.add_k)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, str]) -> NgramModel:
        model = cls(int(meta["vocab_size"]), int(meta["order"]), meta["smoothing"],
                    float(meta["add_k"]))
        model.orders = [Order(arrays[f"order{k}.keys"], arrays[f"order{k}.raw"],
                              arrays[f"order{k}.cont"]) for k in range(1, model.order + 1)]
        model._finalise()
        return model


# ----- runs --------------------------------------------------------------------------------------
def _score(model: NgramModel, build: TokenBuild, split: str,
           max_tokens: int | None = None) -> dict[str, Any]:
    tokens = np.asarray(build.tokens(split))
    if max_tokens is not None:
        tokens = tokens[: max_tokens + 1]
    probs = model.prob_targets(tokens)
    return summarize(float(-np.log(probs).sum()), None, probs.size, build, split)


def train(build: TokenBuild, run_dir: Path, config: TrainConfig, *,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Count the train split, save the counts, evaluate on val (and test): a whole run.

    Counting is deterministic and takes seconds, so ``--resume`` simply counts again.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write_config(run_dir, config, build.describe())
    start = time.perf_counter()
    tokens = np.asarray(build.tokens("train"))
    model = NgramModel(build.vocab_size, config.order, config.smoothing, config.add_k).fit(tokens)
    seconds = time.perf_counter() - start
    sizes = [od.keys.size for od in model.orders]
    log(f"counted {tokens.size:,} tokens: distinct n-grams per order {sizes} in {seconds:.1f}s")
    _save(run_dir, model)
    result: dict[str, Any] = {}
    for split in ("val", "test"):
        if build.has_split(split):
            result[split] = _score(model, build, split, config.final_eval_tokens)
            ckpt.append_metrics(run_dir, {"kind": "eval", "step": 1, "split": split,
                                          **result[split]})
            add_components(result[split], build.path, split,  # a mixture: per component
                           lambda name: _score(model, build, name, config.final_eval_tokens))
    result["initial_val_loss"] = math.log(build.vocab_size)  # before counting: uniform
    result["train"] = {"model": "ngram", "preset": config.preset, "params": int(sum(sizes)),
                       "steps": 1, "tokens": int(tokens.size), "seconds": seconds,
                       "tokens_per_s": tokens.size / seconds if seconds else None,
                       "world_size": 1, "device": "cpu"}
    ckpt.write_json(run_dir / ckpt.EVAL, result)
    log(f"done: val loss {result['initial_val_loss']:.4f} (uniform) -> "
        f"{result['val']['loss']:.4f} (perplexity {result['val']['perplexity']:.2f})")
    return result


def _save(run_dir: Path, model: NgramModel) -> None:
    from safetensors.numpy import save_file

    def write(path: Path) -> None:
        save_file(model.arrays(), str(path), metadata=model.metadata())
        ckpt.canonical_safetensors(path)

    ckpt.save_checkpoint(run_dir, write, None)


def load(run_dir: Path) -> NgramModel:
    from safetensors import safe_open

    path = ckpt.weights_path(run_dir)
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata()
            arrays = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 - not a dict
        return NgramModel.from_arrays(arrays, meta)
    except Exception as exc:  # SafetensorError, a missing array or key: not a whole n-gram file
        raise ckpt.DamagedRunError(
            f"{path} is damaged ({str(exc).strip()[:200] or type(exc).__name__}); train the "
            "run again (counting takes seconds)"
        ) from None


def run(build_dir: str | Path, run_dir: str | Path, config: TrainConfig | None, *,
              log: Callable[[str], None] = print, resume: bool = False) -> dict[str, Any]:
    """The torch-free entry point :func:`corpuskit.train.train` uses for ``model: ngram``."""
    from corpuskit.train.session import run_session

    run_dir = Path(run_dir)
    with run_session(run_dir):
        config, _ = ckpt.prepare_run_dir(run_dir, config, resume)
        return train(open_build(build_dir), run_dir, config, log=log)


def evaluate_run(run_dir: Path, build_dir: Path, split: str) -> dict[str, Any]:
    config, _ = ckpt.read_run_config(run_dir)
    model = load(run_dir)
    return _score(model, open_build(build_dir, [split]), split, config.final_eval_tokens)


def sample(run_dir: Path, ids: list[int], max_new_tokens: int, temperature: float,
                 top_k: int | None, seed: int) -> list[int]:
    """Sample a continuation token by token from the full next-token distribution."""
    model = load(run_dir)
    rng = np.random.default_rng(seed)
    out = list(ids)
    for _ in range(max_new_tokens):
        p = model.next_distribution(out)
        if temperature <= 0:
            out.append(int(p.argmax()))
            continue
        logp = np.log(p) / temperature
        if top_k is not None and top_k < logp.size:
            cut = np.partition(logp, -top_k)[-top_k]
            logp = np.where(logp >= cut, logp, -np.inf)
        q = np.exp(logp - logp.max())
        out.append(int(rng.choice(q.size, p=q / q.sum())))
    return out
