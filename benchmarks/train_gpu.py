"""GPU training throughput: tokens/s and MFU of ``gpt2-124m`` (bf16, torch.compile), and the loader.

Run it where a GPU is lent: ``python -m benchmarks.train_gpu [--steps N] [--no-compile]``. It
builds the offline default corpus with a sentencepiece BPE of 8,000 pieces (GPT-2's 50,257 would
add 32M embedding parameters; the MFU estimate counts the parameters the model has), then times

- the loader alone: ``RandomWindows.next_batch`` + pinned, non-blocking host-to-device copies;
- forward + backward + fused AdamW steps of the GPT-2 small architecture under bf16 autocast.

MFU uses the PaLM/nanoGPT estimate ``6 N + 12 L H Q T`` FLOPs per token against the device's
dense bf16 peak (H100 SXM 989 TFLOP/s, H200 989 TFLOP/s, A100 312 TFLOP/s; override with
``--peak-tflops``). On a machine without CUDA it prints why and returns no rows, so the suite's
runner can list it without failing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result
from corpuskit.train.flops import flops_per_token, peak_tflops


def run(
    quick: bool = False,
    *,
    steps: int | None = None,
    compile_model: bool = True,
    peak_override: float | None = None,
) -> list[Result]:
    import torch

    if not torch.cuda.is_available():
        print("train_gpu: no CUDA device here, nothing measured")
        return []
    from benchmarks.common import default_build
    from corpuskit.train.config import TrainConfig
    from corpuskit.train.data import RandomWindows, to_device
    from corpuskit.train.models import build_model
    from corpuskit.train.tokens import open_build

    steps = steps or (20 if quick else 100)
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(0)
    work = Path(tempfile.mkdtemp(prefix="ck-gpu-"))
    build_dir = default_build(work / "data", tokenizer="spm-bpe:8000").tokens_dir
    build = open_build(build_dir)
    config = TrainConfig.from_preset("gpt", "gpt2-124m")
    batch, block = 16, config.block_size
    loader = RandomWindows(build, "train", batch, block, seed=0)

    # Loader alone: what the training loop asks of it per step.
    start = time.perf_counter()
    n = 200
    for _ in range(n):
        x, y, _ = loader.next_batch()
        x, y = to_device(device, x, y)
    torch.cuda.synchronize()
    loader_tps = n * batch * block / (time.perf_counter() - start)

    torch.manual_seed(0)
    model = build_model(config, build.vocab_size, build.eos_id).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=True)
    step_model = torch.compile(model) if compile_model else model

    def one_step() -> None:
        x, y, _ = loader.next_batch()
        x, y = to_device(device, x, y)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _ = step_model(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(5):  # warm-up, compilation included
        one_step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = steps * batch * block
    tps = tokens / seconds
    peak = peak_tflops(name, peak_override)
    achieved = tps * flops_per_token(n_params, config.n_layer, config.n_head, config.n_embd, block)
    mfu = achieved / (peak * 1e12) if peak else None
    extra = {
        "device": name,
        "params": n_params,
        "batch": batch,
        "block": block,
        "compile": compile_model,
        "mfu": mfu,
        "loader_tokens_per_s": loader_tps,
        "threads": torch.get_num_threads(),
    }
    return [Result("train_gpu", "corpuskit gpt2-124m bf16", seconds, tokens, "tokens", extra)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float)
    args = parser.parse_args()
    results = run(
        args.quick,
        steps=args.steps,
        compile_model=not args.no_compile,
        peak_override=args.peak_tflops,
    )
    for r in results:
        print(
            json.dumps({"contender": r.contender, "tokens_per_s": r.rate, **r.extra}, default=str)
        )


if __name__ == "__main__":
    main()
