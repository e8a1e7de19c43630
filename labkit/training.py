"""One readable training loop for every model in the lab.

AdamW, a learning rate that warms up linearly then decays linearly to zero, gradient
clipping, seeding, the fastest device (cuda → mps → cpu), bf16 autocast on CUDA, a tqdm
progress bar, periodic validation, and a loss history for plotting.

**Data parallelism (数据并行)**: started under ``torchrun --nproc-per-node N`` (see ``labkit pretrain``),
with a process group set up, the same loop runs in N processes. Every process draws the same global
batch, keeps its own 1/N of the rows (:func:`shard`), and PyTorch's DistributedDataParallel averages the
gradients across processes during ``backward``, so each optimiser step sees the global batch's mean
gradient and every copy of the model stays identical.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .env import best_device

__all__ = ["TrainConfig", "History", "fit", "shard", "distributed", "seed_everything", "batches", "length_grouped_batches", "model_loss", "evaluating", "seeded", "to_device", "pad"]


@dataclass(kw_only=True)
class TrainConfig:
    """How long and how fast to train."""

    steps: int = 1000  # optimiser steps in all
    batch_size: int = 32
    lr: float = 5e-4  # peak learning rate, reached after warm-up
    weight_decay: float = 0.01  # AdamW decay (not applied to biases and LayerNorms)
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW moments; 0.98 (as RoBERTa) is steadier than 0.999 on small batches
    warmup_ratio: float = 0.06  # fraction of steps spent warming up
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    eval_every: int = 200  # validate every this many steps (and at the end)
    seed: int = 0
    device: str | None = None  # None = best available
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored elsewhere)
    progress: bool = True  # show a tqdm bar

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.batch_size <= 0 or self.eval_every <= 0:
            raise ValueError(f"steps, batch_size and eval_every must be positive, got {self.steps}, {self.batch_size}, {self.eval_every}")
        if self.lr <= 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"need lr > 0 and warmup_ratio in [0, 1), got lr={self.lr}, warmup_ratio={self.warmup_ratio}")


@dataclass
class History:
    """What happened during training: per-step loss and per-evaluation metrics."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    def last_eval(self) -> dict[str, float]:
        return self.eval_metrics[-1] if self.eval_metrics else {}



@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode and no gradients inside the block; the mode the model had comes back after it."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def to_device(batch, device: torch.device | str):
    """Move a named batch (a dict of tensors keyed by forward()'s argument names) to ``device``: the one place batches move."""
    if isinstance(batch, dict):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    raise TypeError(f"a batch is a dict keyed by forward()'s argument names, got {type(batch).__name__}")


@contextlib.contextmanager
def seeded(seed: int):
    """Inside the block torch's random streams (CPU and CUDA) start from ``seed``; after it they are
    as they were. Head initialisation and dropout drawn inside depend on ``seed`` alone, not on
    what ran before."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0, value_for_pad: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of ids into (B, T) ids and a (B, T) attention mask."""
    T = max(len(s) for s in seqs)
    fill = pad_id if value_for_pad is None else value_for_pad
    ids = torch.full((len(seqs), T), fill, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches(n: int, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[list[int]]:
    """Endless index batches over range(n), reshuffled every epoch."""
    if n <= 0:
        raise ValueError(f"cannot draw batches from an empty data set (n={n})")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for i in range(0, n, batch_size):
            yield order[i:i + batch_size].tolist()


def length_grouped_batches(lengths, batch_size: int, *, seed: int, megabatch: int = 50) -> Iterator[list[int]]:
    """Endless index batches of rows of similar length, so a batch padded to its longest row wastes
    little (transformers' ``group_by_length``): each epoch, shuffle; cut the order into megabatches of
    ``megabatch * batch_size`` rows; sort each by length (longest first); cut into batches; shuffle the
    batches. Every row appears once per epoch, as with :func:`batches`."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    if n <= 0:
        raise ValueError(f"cannot draw batches from an empty data set (n={n})")
    if megabatch < 1:
        raise ValueError(f"megabatch must be at least 1, got {megabatch}")
    rng = np.random.default_rng(seed)
    size = megabatch * batch_size
    while True:
        order = rng.permutation(n)
        epoch = []
        for i in range(0, n, size):
            chunk = order[i:i + size]
            chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
            epoch += [chunk[j:j + batch_size].tolist() for j in range(0, len(chunk), batch_size)]
        for k in rng.permutation(len(epoch)):
            yield epoch[k]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then linear decay to 0 at cfg.steps."""
    warmup = max(1, int(cfg.warmup_ratio * cfg.steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - warmup))


def model_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The default loss: the model's own, ``model(**batch).loss`` (the batch holds its labels)."""
    return model(**batch).loss


def distributed() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless a torch.distributed process group is set up."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch: dict, rank: int, world: int) -> dict:
    """Process ``rank``'s contiguous 1/world of a named batch's rows (every tensor's first dimension is B)."""
    if world == 1:
        return batch
    sizes = {k: v.shape[0] for k, v in batch.items() if isinstance(v, torch.Tensor)}
    B = next(iter(sizes.values()), 0)
    if any(n != B for n in sizes.values()) or B % world:
        raise ValueError(f"a batch split over {world} processes needs the same number of rows in every tensor, "
                         f"divisible by {world}; got {sizes} (choose batch_size as a multiple of {world})")
    per = B // world
    return {k: v[rank * per:(rank + 1) * per] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _WithLoss(nn.Module):
    """The model and its loss as one module, so that DistributedDataParallel's forward covers the whole loss."""

    def __init__(self, model: nn.Module, loss_fn: Callable):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: dict) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def fit(
    model: nn.Module,
    train_batches: Iterable[dict],
    loss_fn: Callable[[nn.Module, dict], torch.Tensor] = model_loss,
    cfg: TrainConfig | None = None,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    on_eval: Callable[[History], None] | None = None,
    desc: str = "training",
) -> History:
    """Train ``model`` for cfg.steps optimiser steps; the model ends in the mode it started in.

    Args:
        train_batches: an (endless) iterable of named batches (dicts keyed by ``forward``'s
            argument names); each is moved to the device here and passed to ``loss_fn``.
        loss_fn: ``loss_fn(model, batch)`` → scalar loss; by default the model's own loss.
        evaluate: ``evaluate(model)`` → metrics, called every cfg.eval_every steps and at the end
            (in eval mode, without gradients).
        on_eval: called with the history after each evaluation (e.g. to redraw a live plot).
    """
    from tqdm.auto import tqdm

    if cfg is None:
        raise ValueError("fit needs a TrainConfig (cfg=...)")
    device = torch.device(cfg.device) if cfg.device else best_device()
    rank, world = distributed()
    if world > 1 and device.type == "cuda":  # one GPU per process, as torchrun numbers them
        import os

        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    was_training = model.training
    model.to(device).train()
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        parallel = DistributedDataParallel(_WithLoss(model, loss_fn), device_ids=[device] if device.type == "cuda" else None,
                                           find_unused_parameters=True)  # a head an objective does not use gets no gradient
        compute = parallel
    else:
        compute = lambda batch: loss_fn(model, batch)  # noqa: E731
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    use_bf16 = cfg.bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported()
    history = History(device=str(device))
    start = time.perf_counter()
    it = iter(train_batches)
    bar = tqdm(range(cfg.steps), desc=desc, disable=not cfg.progress or rank > 0, leave=False)
    try:
        for step in bar:
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = compute(to_device(shard(next(it), rank, world), device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate (lr={cfg.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            history.steps.append(step)
            if world > 1:  # the global batch's loss: the mean of the processes' (equal-sized) shards
                loss = loss.detach().clone()
                dist.all_reduce(loss)
                loss /= world
            history.loss.append(loss.item())
            history.lr.append(lr)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(history.loss[-20:]):.3f}")
            if evaluate is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
                with evaluating(model), torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    metrics = evaluate(model)
                history.eval_steps.append(step + 1)
                history.eval_metrics.append({k: float(v) for k, v in metrics.items()})
                if on_eval is not None:
                    on_eval(history)
    finally:
        model.train(was_training)
    history.seconds = time.perf_counter() - start
    return history


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy in nats), capped to stay finite."""
    return math.exp(min(mean_loss, 50.0))
