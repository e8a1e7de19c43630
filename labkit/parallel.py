"""Pretraining beyond one process: the build's first stage alone, run by one process or data-parallel by several.

    torchrun --nproc-per-node 2 -m labkit pretrain --scale ci            # two CPU processes (gloo)
    torchrun --nproc-per-node 8 -m labkit pretrain --scale gpu --model gpt  # eight GPUs (nccl), one each

``torchrun`` starts the processes and sets RANK, WORLD_SIZE and the rendezvous address; ``labkit pretrain``
joins them into a process group (:func:`init_from_environment`) and :func:`pretrain_scale` runs the usual
loop, which splits each global batch across the processes (:func:`labkit.training.fit`). The global batch
is the scale's ``batch_size``, so one process and N processes take the same optimiser steps on the same
data: only the wall-clock time should change.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from .data import load_task
from .folders import save_model
from .scales import resolve_scale
from .tokenization import load_tokenizer, train_tokenizer
from .training import distributed, seeded

__all__ = ["init_from_environment", "pretrain_scale", "MODELS"]

MODELS = ("mlm", "gpt")  # the build's masked LM (with next-sentence prediction) or its mini-GPT


def init_from_environment() -> tuple[int, int]:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on GPUs); (rank, world)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return distributed()


def pretrain_scale(scale: str = "ci", model: str = "mlm", out: str | Path | None = None, *, steps: int | None = None,
                   progress: bool = True) -> dict:
    """Pretrain the scale's masked LM (``mlm``) or mini-GPT (``gpt``) on the scale's corpus, in this process and
    the others of its process group, if any; the first process saves the model (and tokenizer) into ``out``.
    Returns the loss history (the global batch's, the same in every process), metrics and timing."""
    import torch.distributed as dist

    from .gpt import GPT
    from .pretrain import pretrain_clm, pretrain_mlm
    from .transformer import PreTrainingModel

    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    sc = resolve_scale(scale)
    rank, world = distributed()
    train_cfg = sc.pretrain.train if model == "mlm" else sc.gpt_pretrain
    train_cfg = replace(train_cfg, steps=steps or train_cfg.steps, eval_every=steps or train_cfg.eval_every,
                        progress=progress and rank == 0)
    if train_cfg.batch_size % world:
        raise ValueError(f"the global batch ({train_cfg.batch_size}) must divide evenly over {world} processes")
    out = Path(out) if out is not None else Path(os.environ.get("LABKIT_ARTIFACTS", "artifacts")) / f"{sc.name}-pretrain"
    corpus = load_task("corpus", size=sc.data)
    start = time.perf_counter()
    if rank == 0:  # one tokenizer for every process: the first trains it, the others read it
        tokenizer = train_tokenizer(list(corpus["train"]["text"]), vocab_size=sc.vocab_size,
                                    model_max_length=sc.model.max_position)
        tokenizer.save_pretrained(out / "tokenizer")
    if world > 1:
        dist.barrier()
    if rank > 0:
        tokenizer = load_tokenizer(out / "tokenizer")
    train, val = list(corpus["train"]["text"]), list(corpus["validation"]["text"])
    if model == "mlm":
        cfg = replace(sc.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        with seeded(train_cfg.seed):
            net = PreTrainingModel(cfg)
        result = pretrain_mlm(net, tokenizer, train, val, replace(sc.pretrain, train=train_cfg))
    else:
        cfg = replace(sc.gpt, vocab_size=len(tokenizer), bos_token_id=tokenizer.cls_token_id,
                      eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
        with seeded(train_cfg.seed):
            net = GPT(cfg)
        result = pretrain_clm(net, tokenizer, train, val, train_cfg, block_length=sc.gpt_block_length)
    folder = out / ("fill-mask" if model == "mlm" else "text-generation")
    if rank == 0:
        save_model(net.cpu().eval(), tokenizer, folder)
    if world > 1:
        dist.barrier()
    return {"scale": sc.name, "model": model, "processes": world, "rank": rank, "steps": train_cfg.steps,
            "global_batch": train_cfg.batch_size, "loss_history": result.history.loss,
            "final_loss": result.history.loss[-1], "metrics": result.metrics,
            "seconds": round(time.perf_counter() - start, 1), "out": str(folder)}
