"""Data-parallel pretraining (labkit.training.fit under torchrun, labkit.parallel): two CPU processes (gloo)
take the same optimiser steps as one process with the same global batch."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from labkit.parallel import pretrain_scale
from labkit.training import distributed, shard


def test_shard_gives_each_process_its_contiguous_rows():
    batch = {"input_ids": torch.arange(12).reshape(6, 2), "labels": torch.arange(6), "name": "kept"}
    parts = [shard(batch, r, 3) for r in range(3)]
    assert [p["labels"].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), batch["input_ids"])
    assert parts[1]["name"] == "kept" and shard(batch, 0, 1) is batch
    with pytest.raises(ValueError, match="divisible by 4"):
        shard(batch, 0, 4)
    assert distributed() == (0, 1)  # no process group in the test process


def _pretrain(out, processes: int) -> dict:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)] if processes > 1 \
        else [sys.executable]
    cmd = [*launcher, "-m", "labkit", "pretrain", "--scale", "ci", "--model", "gpt", "--steps", "5", "--out", str(out),
           "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_processes_take_the_same_steps_as_one(tmp_path):
    one, two = _pretrain(tmp_path / "one", 1), _pretrain(tmp_path / "two", 2)
    assert one["processes"] == 1 and two["processes"] == 2 and one["global_batch"] == two["global_batch"] == 32
    # every token counts once in the next-token loss, so the shards' mean gradients average to the global batch's
    torch.testing.assert_close(torch.tensor(two["loss_history"]), torch.tensor(one["loss_history"]), rtol=1e-4, atol=1e-4)
    assert one["loss_history"][-1] < one["loss_history"][0]  # it learns
    assert (tmp_path / "two" / "text-generation" / "model.safetensors").is_file()


def test_bad_arguments_say_what_was_wrong():
    with pytest.raises(ValueError, match="model must be"):
        pretrain_scale("ci", "rnn")
    with pytest.raises(ValueError, match="steps"):
        pretrain_scale("ci", "gpt", steps=0)
