"""MFU arithmetic: the nanoGPT/PaLM estimate, the peak table and when MFU is (not) shown."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from corpuskit.train.flops import (  # noqa: E402
    ENV_PEAK,
    device_peak_tflops,
    flops_per_token,
    mfu,
    peak_tflops,
)


def test_flops_per_token_matches_the_gpt2_small_figure() -> None:
    # nanoGPT's estimate_mfu for GPT-2 small (124M, 12 layers, 12 heads, 768 wide, T=1024).
    n = 124_000_000
    expected = 6 * n + 12 * 12 * 12 * 64 * 1024
    assert flops_per_token(n, 12, 12, 768, 1024) == expected
    # Without attention only the weights count.
    assert flops_per_token(1000) == 6000


def test_peak_table_env_override_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PEAK, raising=False)
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert peak_tflops("Some Future GPU") is None
    assert peak_tflops("Some Future GPU", override=100.0) == 100.0
    monkeypatch.setenv(ENV_PEAK, "250")
    assert peak_tflops("Some Future GPU") == 250.0
    monkeypatch.setenv(ENV_PEAK, "not a number")
    assert peak_tflops("Some Future GPU") is None


def test_mfu_fraction_and_devices() -> None:
    # 1e5 tokens/s at 1e9 FLOPs each = 1e14 FLOP/s = 10% of a 1000 TFLOP/s device.
    assert mfu(1e5, 1e9, 1000.0) == pytest.approx(0.1)
    # The same throughput spread over two devices uses half as much of each.
    assert mfu(1e5, 1e9, 1000.0, devices=2) == pytest.approx(0.05)
    assert mfu(1e5, 1e9, None) is None


def test_no_mfu_on_cpu_or_in_float32() -> None:
    assert device_peak_tflops(torch.device("cpu"), torch.bfloat16) is None
    assert device_peak_tflops(torch.device("cpu"), torch.float32) is None
