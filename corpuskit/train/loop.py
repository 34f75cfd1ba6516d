"""The training loop: one function that turns a token build and a config into a run folder.

Everything a step consumes (weights, optimizer moments, RNG streams, data position, recurrent
state) is checkpointed at step boundaries, so a resumed run ends with exactly the weights of an
uninterrupted one. Ctrl-C (and SIGTERM, what schedulers and ``docker stop`` send) is turned into
"finish this step, save, stop" rather than losing work.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn import functional as F

from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint as fault_point
from corpuskit.train import checkpoint as ckpt
from corpuskit.train.components import add_components
from corpuskit.train.config import TrainConfig
from corpuskit.train.data import RandomWindows, StreamBatches, to_device
from corpuskit.train.flops import device_peak_tflops, flops_per_token, mfu
from corpuskit.train.metrics import measure
from corpuskit.train.models import LanguageModel, build_model, counted
from corpuskit.train.optim import lr_at, make_optimizer, plan_steps
from corpuskit.train.runtime import (
    DistEnv,
    autocast,
    cpu_threads,
    distributed,
    resolve_device,
    resolve_dtype,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_backends,
)
from corpuskit.train.session import TrainingTerminated, run_session
from corpuskit.train.tokens import TokenBuild, open_build

Log = Callable[[str], None]


@dataclass
class Progress:
    """Counters that survive a resume."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    initial_val_loss: float | None = None


def train(build_dir: str | Path, run_dir: str | Path, config: TrainConfig | None = None, *,
          progress: bool = True, log: Log = print, resume: bool = False) -> dict[str, Any]:
    """Train ``config.model`` on a token build, writing checkpoints and metrics to ``run_dir``.

    ``run_dir`` must be empty or absent, unless ``resume`` is set: then training continues from
    its checkpoint (with ``config`` None, the saved config is used; a given config may change
    only the run length, intervals and device). Returns the final evaluation (``val``, ``test``
    when the build has one), ``initial_val_loss`` and a ``train`` summary; the same is written
    to ``eval.json``. The build's files are checked against its ``meta.json`` first; one process
    at a time trains a run folder; a new run that fails before its first checkpoint leaves no
    folder behind.
    """
    run_dir = Path(run_dir)
    env = DistEnv.from_env()
    with run_session(run_dir, main=env.is_main):
        config, resuming = ckpt.prepare_run_dir(run_dir, config, resume, main=env.is_main)
        counted_family = counted(config.model)
        if counted_family is not None:
            if env.enabled:
                raise CorpuskitError(
                    "the n-gram model counts in one process; run it without torchrun"
                )
            return counted_family.train(open_build(build_dir), run_dir, config, log=log)
        build = open_build(build_dir)
        device = resolve_device(config.device, env)
        with cpu_threads(config.threads), distributed(env, device):
            trainer = _Trainer(build, run_dir, config, env, device, log, progress)
            return trainer.run(resuming)


class _Trainer:
    def __init__(self, build: TokenBuild, run_dir: Path, config: TrainConfig, env: DistEnv,
                 device: torch.device, log: Log, progress: bool):
        self.build, self.run_dir, self.config, self.env = build, run_dir, config, env
        self.device, self.log, self.show_progress = device, log, progress and env.is_main
        self.dtype = resolve_dtype(config.dtype, device)
        setup_backends(device)
        seed_everything(config.seed)  # identical initial weights on every process
        self.model: LanguageModel = build_model(config, build.vocab_size, build.eos_id).to(device)
        if env.rank:
            seed_everything(config.seed + env.rank)  # but different dropout masks
        self.optimizer = make_optimizer(self.model, config, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.forward: Any = self.model
        if config.compile:
            self.forward = torch.compile(self.model)
        if env.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.forward = DDP(self.forward, device_ids=ids)
        if self.model.stateful:
            self.batches: RandomWindows | StreamBatches = StreamBatches(
                build, "train", config.batch_size, config.block_size, env.rank, env.world_size)
        else:
            self.batches = RandomWindows(build, "train", config.batch_size, config.block_size,
                                         config.seed, env.rank)
        self.tokens_per_step = self.batches.tokens_per_batch * config.grad_accum * env.world_size
        if self.model.stateful:  # each process walks its own share of the rows once per epoch
            self.steps_per_epoch = self.batches.batches_per_epoch / config.grad_accum
        else:
            self.steps_per_epoch = self.batches.num_tokens / self.tokens_per_step
        self.total_steps = plan_steps(config, self.tokens_per_step, self.steps_per_epoch)
        # MFU on CUDA in bf16/fp16 (None elsewhere: there is no honest peak to divide by).
        attention = config.model == "gpt"
        self.flops_per_token = flops_per_token(
            self.model.num_params(),
            config.n_layer if attention else 0,
            config.n_head if attention else 0,
            config.n_embd if attention else 0,
            config.block_size if attention else 0,
        )
        self.peak_tflops = device_peak_tflops(device, self.dtype)
        self.state: Any = None  # a recurrent model's hidden state between batches
        self.progress = Progress()
        self.stop_requested = False
        self.terminated = False  # the stop was asked for by SIGTERM
        self.tensorboard = (
            tensorboard_writer(run_dir) if config.tensorboard and env.is_main else None
        )

    # ----- the run --------------------------------------------------------------------------
    def run(self, resuming: bool) -> dict[str, Any]:
        cfg = self.config
        if cfg.init and not resuming:  # train --init: GPT-2 weights (same on every process)
            from corpuskit.train.hf_model import init_from_hf

            init_from_hf(self.model, cfg.init, self.build)
        if resuming:
            self._load_checkpoint()
        elif self.env.is_main:
            ckpt.write_config(self.run_dir, cfg, self.build.describe())
            fault_point("train.config_written")
        if self.env.is_main:
            self._say(
                f"training {cfg.model}/{cfg.preset}: {self.model.num_params():,} parameters, "
                f"{self.total_steps:,} steps of {self.tokens_per_step:,} tokens "
                f"({self.total_steps / self.steps_per_epoch:.2f} epochs) on {self.device}"
                + (f" x{self.env.world_size}" if self.env.enabled else "")
            )
        if self.progress.initial_val_loss is None and self.env.is_main:
            first = self._eval("val", cfg.final_eval_tokens)
            self.progress.initial_val_loss = first["loss"]
            # Step 0 on the loss chart; a resume restores initial_val_loss, so never logs it twice.
            self._record({"kind": "eval", "step": 0, "split": "val", **first})
            self._say(f"step 0: val loss {first['loss']:.4f} before training")
        with self._progress_bar() as bar, self._graceful_interrupt():
            self.bar = bar
            self._loop()
        return self._finish()

    def _loop(self) -> None:
        cfg, p = self.config, self.progress
        window_loss = torch.zeros((), device=self.device)
        window_steps, window_start, window_tokens = 0, time.perf_counter(), 0
        while p.step < self.total_steps:
            lr = lr_at(p.step, cfg, self.total_steps, self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            window_loss += self._step()
            p.step += 1
            fault_point("train.step")
            p.tokens += self.tokens_per_step
            window_steps += 1
            window_tokens += self.tokens_per_step
            try:
                if p.step % cfg.log_interval == 0 or p.step == self.total_steps:
                    now = time.perf_counter()
                    p.train_seconds += now - window_start
                    loss = self._mean_across_ranks(window_loss / window_steps)
                    self._log_train(lr, loss, window_tokens / max(now - window_start, 1e-9))
                    window_loss.zero_()
                    window_steps, window_tokens = 0, 0
                    window_start = time.perf_counter()
                self.bar.update(1)
                if cfg.eval_interval and p.step % cfg.eval_interval == 0 and (
                    p.step < self.total_steps
                ):
                    self._periodic_eval()
                    window_start = time.perf_counter()
                every = cfg.checkpoint_interval or cfg.eval_interval
                if every and p.step % every == 0 and p.step < self.total_steps:
                    self._save_checkpoint()
                if self.stop_requested:
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                if not self.env.enabled:
                    p.train_seconds += time.perf_counter() - window_start
                    self._save_checkpoint()
                    self._say(f"interrupted: step {p.step} saved in {self.run_dir}; continue "
                              "with --resume")
                if self.terminated:
                    raise TrainingTerminated from None
                raise

    def _step(self) -> torch.Tensor:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss."""
        cfg = self.config
        total = torch.zeros((), device=self.device)
        for micro in range(cfg.grad_accum):
            x, y, reset = self.batches.next_batch()
            x, y = to_device(self.device, x, y)
            if reset:
                self.state = None
            last = micro == cfg.grad_accum - 1
            sync = contextlib.nullcontext() if last or not self.env.enabled else (
                self.forward.no_sync())
            with sync:
                with autocast(self.device, self.dtype):
                    logits, state = self.forward(x, self.state)
                loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
                self.scaler.scale(loss / cfg.grad_accum).backward()
            self.state = self.model.detach_state(state)
            total += loss.detach()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return total / cfg.grad_accum

    # ----- evaluation and logging ------------------------------------------------------------
    def _eval(self, split: str, max_tokens: int | None) -> dict[str, Any]:
        return measure(self.model, self.build, split, self.config, self.device, self.dtype,
                       max_tokens=max_tokens)

    def _periodic_eval(self) -> None:
        if not self.env.is_main:
            return
        cfg = self.config
        budget = cfg.eval_batches * cfg.batch_size * cfg.block_size
        result = self._eval("val", budget)
        self._record({"kind": "eval", "step": self.progress.step, "split": "val", **result})
        self._say(f"step {self.progress.step}: val loss {result['loss']:.4f} "
                  f"(perplexity {result['perplexity']:.2f}, {result['tokens']:,} tokens)")

    def _log_train(self, lr: float, loss: float, tokens_per_s: float) -> None:
        if not self.env.is_main:
            return
        p = self.progress
        used = mfu(tokens_per_s, self.flops_per_token, self.peak_tflops, self.env.world_size)
        record = {"kind": "train", "step": p.step, "loss": loss, "lr": lr, "tokens": p.tokens,
                  "tokens_per_s": tokens_per_s, "elapsed_s": p.train_seconds}
        postfix = {"loss": f"{loss:.3f}", "tok_s": f"{tokens_per_s:,.0f}"}
        shown = ""
        if used is not None:
            record["mfu"] = used
            postfix["mfu"] = f"{used:.1%}"
            shown = f" mfu {used:.1%}"
        self._record(record)
        self.bar.set_postfix(postfix, refresh=False)
        self._say(f"step {p.step:>{len(str(self.total_steps))}}/{self.total_steps} "
                  f"loss {loss:.4f} lr {lr:.2e} {tokens_per_s:,.0f} tok/s{shown}")

    def _record(self, record: dict[str, Any]) -> None:
        ckpt.append_metrics(self.run_dir, record)
        if self.tensorboard is not None:
            # train/loss, train/lr, ..., val/perplexity, test/bits_per_byte: one scalar each.
            group = "train" if record["kind"] == "train" else record.get("split", record["kind"])
            step = int(record.get("step", self.progress.step))
            for key, value in record.items():
                if key in ("kind", "step", "split") or isinstance(value, bool):
                    continue
                if isinstance(value, int | float):
                    self.tensorboard.add_scalar(f"{group}/{key}", value, step)
            self.tensorboard.flush()

    def _say(self, message: str) -> None:
        if not self.env.is_main:
            return
        bar = getattr(self, "bar", None)
        if bar is None or bar.disable:
            self.log(message)
            return
        with bar.external_write_mode():
            self.log(message)

    def _mean_across_ranks(self, value: torch.Tensor) -> float:
        if self.env.enabled:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.env.world_size
        return float(value)

    @contextlib.contextmanager
    def _progress_bar(self) -> Iterator[Any]:
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total_steps, initial=self.progress.step, unit="step",
                   disable=not self.show_progress, dynamic_ncols=True, leave=False)
        try:
            yield bar
        finally:
            bar.close()
            self.bar = None

    @contextlib.contextmanager
    def _graceful_interrupt(self) -> Iterator[None]:
        """First Ctrl-C or SIGTERM: stop after the current step and save. Second: stop now."""
        usable = not self.env.enabled and threading.current_thread() is threading.main_thread()
        if not usable:
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self.terminated = self.terminated or signum == signal.SIGTERM
            if self.stop_requested:
                raise TrainingTerminated if self.terminated else KeyboardInterrupt
            self.stop_requested = True

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # ----- checkpoints -----------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        """Weights and the full training state; every process's data/RNG state is gathered so
        that a distributed run resumes exactly too."""
        p = self.progress
        mine = {"rng": rng_state(self.device), "data": self.batches.state_dict(),
                "hidden": _to_cpu(self.state)}
        if self.env.enabled:
            ranks: list[Any] = [None] * self.env.world_size
            dist.all_gather_object(ranks, mine)
        else:
            ranks = [mine]
        if not self.env.is_main:
            return
        metadata = self._weights_metadata()
        ckpt.save_checkpoint(
            self.run_dir,
            lambda path: ckpt.write_safetensors_model(path, self.model, metadata),
            {
                "step": p.step, "tokens": p.tokens, "train_seconds": p.train_seconds,
                "initial_val_loss": p.initial_val_loss, "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "ranks": ranks,
                "world_size": self.env.world_size,
            },
        )

    def _load_checkpoint(self) -> None:
        state = ckpt.load_state(self.run_dir)
        if state.get("world_size", 1) != self.env.world_size:
            raise CorpuskitError(
                f"{self.run_dir} was trained with {state.get('world_size', 1)} processes; "
                f"resume it with the same number (not {self.env.world_size})"
            )
        ckpt.load_weights(self.run_dir, self.model, device=str(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        mine = state["ranks"][self.env.rank]
        set_rng_state(mine["rng"], self.device)
        self.batches.load_state_dict(mine["data"])
        self.state = _to_device(mine["hidden"], self.device)
        p = self.progress
        p.step, p.tokens = int(state["step"]), int(state["tokens"])
        p.train_seconds, p.initial_val_loss = state["train_seconds"], state["initial_val_loss"]
        if self.env.is_main:
            ckpt.truncate_metrics(self.run_dir, p.step)
            ckpt.write_config(self.run_dir, self.config, self.build.describe())
            self._say(f"resuming {self.run_dir} at step {p.step}")

    def _weights_metadata(self) -> dict[str, str]:
        return {"model": self.config.model, "step": str(self.progress.step),
                "config": json.dumps(self.config.to_dict()),
                "vocab_size": str(self.build.vocab_size)}

    def _finish(self) -> dict[str, Any]:
        """Final checkpoint and the evaluation on every held-out split the build has."""
        self._save_checkpoint()
        result: dict[str, Any] = {}
        if self.env.is_main:
            p, cfg = self.progress, self.config
            for split in ("val", "test"):
                if self.build.has_split(split):
                    result[split] = self._eval(split, cfg.final_eval_tokens)
                    self._record({"kind": "eval", "step": p.step, "split": split,
                                  **result[split]})
                    add_components(result[split], self.build.path, split,  # a mixture
                                   lambda name: self._eval(name, cfg.final_eval_tokens))
            result["initial_val_loss"] = p.initial_val_loss
            result["train"] = {
                "model": cfg.model, "preset": cfg.preset, "params": self.model.num_params(),
                "steps": p.step, "tokens": p.tokens, "seconds": p.train_seconds,
                "tokens_per_s": p.tokens / p.train_seconds if p.train_seconds else None,
                "world_size": self.env.world_size, "device": str(self.device),
            }
            fault_point("train.before_eval_json")
            ckpt.write_json(self.run_dir / ckpt.EVAL, result)
            if self.tensorboard is not None:
                self.tensorboard.close()
            val = result["val"]
            self._say(f"done: val loss {p.initial_val_loss:.4f} -> {val['loss']:.4f} "
                      f"(perplexity {val['perplexity']:.2f}) in {p.train_seconds:.1f}s")
        if self.env.enabled:
            dist.barrier()
        return result


def tensorboard_writer(run_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``<run>/tensorboard/``, or None when the tensorboard
    package is not installed (``pip install tensorboard``); the run does not need it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _to_cpu(state: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    return type(state)(_to_cpu(s) for s in state)


def _to_device(state: Any, device: torch.device) -> Any:
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return type(state)(_to_device(s, device) for s in state)

