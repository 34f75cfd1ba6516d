"""Model FLOPs utilisation (MFU): how much of the accelerator's peak a training run uses.

The estimate is the one nanoGPT and the PaLM paper use: a training step costs ``6 N`` FLOPs per
token for the weights (forward 2N, backward 4N) plus, for attention, ``12 L H Q T`` (``L``
layers, ``H`` heads of width ``Q``, context ``T``). ``N`` counts every distinct parameter, so a
tied embedding counts once (it is used as the output layer) and an untied input embedding is
counted although a lookup costs nothing: a slight overestimate for the LSTM and FNN, none for
the GPT. The peak is the device's dense bf16/fp16 tensor-core rate from its data sheet; MFU is
shown only where that is known (CUDA devices in the table, or ``CORPUSKIT_PEAK_TFLOPS``) and
the run computes in bf16 or fp16, since a float32 run against a bf16 peak would mislead.
"""

from __future__ import annotations

import os

import torch

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets (SXM parts).
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
}
ENV_PEAK = "CORPUSKIT_PEAK_TFLOPS"


def flops_per_token(
    n_params: int, n_layer: int = 0, n_head: int = 0, n_embd: int = 0, block: int = 0
) -> float:
    """Training FLOPs per token: ``6 N`` plus attention's ``12 L H Q T`` (0 without attention)."""
    head_dim = n_embd // n_head if n_head else 0
    return 6.0 * n_params + 12.0 * n_layer * n_head * head_dim * block


def peak_tflops(device_name: str, override: float | None = None) -> float | None:
    """Dense bf16 peak: ``override``, else ``$CORPUSKIT_PEAK_TFLOPS``, else the table."""
    if override:
        return override
    env = os.environ.get(ENV_PEAK)
    if env:
        try:
            return float(env)
        except ValueError:
            return None
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)


def device_peak_tflops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Peak for MFU on ``device`` computing in ``dtype``; None where MFU would not be honest."""
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return None
    return peak_tflops(torch.cuda.get_device_name(device))


def mfu(
    tokens_per_s: float, flops_token: float, peak: float | None, devices: int = 1
) -> float | None:
    """Fraction of ``devices`` × ``peak`` TFLOP/s achieved at ``tokens_per_s`` (all devices)."""
    if not peak or devices < 1:
        return None
    return tokens_per_s * flops_token / (peak * 1e12 * devices)
