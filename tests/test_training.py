"""labkit.training: TrainConfig, the learning-rate schedule, index batches, padding, named batches
moved to the device in one place, fit, evaluating and seeded."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.training import (History, TrainConfig, batches, evaluating, fit, length_grouped_batches, lr_at, model_loss,
                             pad, perplexity, seed_everything, seeded, to_device)


class Line(nn.Module):
    """y = w x + b, with its own loss when labels are given (as every labkit model)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x, labels=None):
        y = self.linear(x)
        return SimpleNamespace(logits=y, loss=None if labels is None else F.mse_loss(y, labels))


def line_batches(seed=0, batch_size=16):
    g = torch.Generator().manual_seed(seed)
    while True:
        x = torch.randn(batch_size, 1, generator=g)
        yield {"x": x, "labels": 3 * x + 1}


def quick(**kw):
    return TrainConfig(**{"steps": 40, "batch_size": 16, "lr": 0.3, "progress": False, "device": "cpu", **kw})


def test_learning_rate_warms_up_then_decays_to_zero():
    c = TrainConfig(steps=100, lr=1e-3, warmup_ratio=0.1)
    lrs = [lr_at(s, c) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(1e-3 / 90)


def test_train_config_is_keyword_only_and_checked():
    with pytest.raises(TypeError):
        TrainConfig(100)  # noqa
    with pytest.raises(ValueError, match="steps, batch_size and eval_every must be positive"):
        TrainConfig(steps=0)
    for bad in ({"batch_size": 0}, {"eval_every": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            TrainConfig(**bad)
    for bad in ({"lr": 0.0}, {"warmup_ratio": 1.0}, {"warmup_ratio": -0.1}):
        with pytest.raises(ValueError, match="lr > 0 and warmup_ratio"):
            TrainConfig(**bad)


def test_index_batches_cover_every_example_each_epoch_and_follow_the_seed():
    it = batches(10, 4, seed=0)
    drawn = [next(it) for _ in range(9)]  # three epochs of 4 + 4 + 2 indices
    assert [len(b) for b in drawn] == [4, 4, 2] * 3
    epochs = [sum(drawn[i:i + 3], []) for i in (0, 3, 6)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    again, other = batches(10, 4, seed=0), batches(10, 4, seed=1)
    assert [next(again) for _ in range(9)] == drawn and [next(other) for _ in range(3)] != drawn[:3]
    assert next(batches(5, 3, seed=0, shuffle=False)) == [0, 1, 2]
    with pytest.raises(ValueError, match="empty"):
        next(batches(0, 4, seed=0))


def test_pad_right_pads_ids_and_builds_the_mask():
    ids, mask = pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long
    labels, _ = pad([[5], [6, 7]], value_for_pad=-100)
    assert labels.tolist() == [[5, -100], [6, 7]]


def test_to_device_moves_the_tensors_of_a_named_batch_and_refuses_anything_else():
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "note": "kept"}
    moved = to_device(batch, "cpu")
    assert set(moved) == {"input_ids", "note"} and moved["note"] == "kept"
    assert moved["input_ids"].device.type == "cpu" and torch.equal(moved["input_ids"], batch["input_ids"])
    with pytest.raises(TypeError, match="dict keyed by forward"):
        to_device((torch.ones(2, 3), torch.ones(2, 3)), "cpu")


def test_model_loss_is_the_models_own_loss():
    torch.manual_seed(0)
    model, batch = Line(), next(line_batches())
    assert torch.equal(model_loss(model, batch), model(**batch).loss)


def test_fit_trains_on_named_batches_with_the_models_own_loss():
    torch.manual_seed(0)
    model = Line()
    calls = []

    def evaluate(m):
        calls.append((m.training, torch.is_grad_enabled()))
        x = torch.linspace(-1, 1, 5).unsqueeze(1)
        return {"mse": F.mse_loss(m(x).logits, 3 * x + 1).item()}

    seen = []
    history = fit(model, line_batches(), cfg=quick(eval_every=15), evaluate=evaluate, on_eval=seen.append)
    assert len(history.loss) == len(history.lr) == 40 and history.steps == list(range(40))
    assert history.lr == [lr_at(s, quick(eval_every=15)) for s in range(40)]
    assert history.loss[-1] < 0.05 * history.loss[0]
    assert history.eval_steps == [15, 30, 40] and history.last_eval()["mse"] < 0.05
    assert calls == [(False, False)] * 3  # evaluation in eval mode, without gradients
    assert len(seen) == 3 and seen[-1] is history and history.device == "cpu" and history.seconds > 0
    assert History().last_eval() == {}


def test_fit_passes_a_custom_loss_each_batch_on_the_device():
    model, seen = Line(), []

    def loss_fn(m, batch):
        seen.append((sorted(batch), {v.device.type for v in batch.values()}))
        return m(batch["x"], labels=batch["labels"]).loss

    fit(model, line_batches(), loss_fn, quick(steps=3))
    assert seen == [(["labels", "x"], {"cpu"})] * 3


def test_fit_needs_a_config_and_named_batches():
    with pytest.raises(ValueError, match="TrainConfig"):
        fit(Line(), line_batches())
    tuples = ((b["x"], b["labels"]) for b in line_batches())
    with pytest.raises(TypeError, match="a batch is a dict keyed by forward\\(\\)'s argument names, got tuple"):
        fit(Line(), tuples, cfg=quick(steps=2))


@pytest.mark.parametrize("training", [True, False])
def test_fit_restores_the_mode_it_found(training):
    model = Line().train(training)
    fit(model, line_batches(), cfg=quick(steps=2), evaluate=lambda m: {})
    assert model.training is training


def test_fit_stops_on_a_non_finite_loss_and_still_restores_the_mode():
    model = Line().eval()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, line_batches(), lambda m, b: m(**b).loss * float("nan"), quick(steps=2))
    assert not model.training


def test_evaluating_is_eval_mode_without_gradients_and_restores_the_mode():
    model = Line().train()
    with evaluating(model) as m:
        assert m is model and not model.training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    model.eval()
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        model.train()  # whatever happens inside, the mode found comes back
        raise RuntimeError("boom")
    assert not model.training and torch.is_grad_enabled()


def test_seeded_draws_from_the_seed_alone_and_leaves_the_global_stream_untouched():
    torch.manual_seed(1)
    state = torch.get_rng_state()
    with seeded(7):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is where it was
    torch.manual_seed(2)
    with seeded(7):
        b = torch.rand(3)
    with seeded(8):
        c = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_seed_everything_and_perplexity():
    seed_everything(3)
    a = torch.rand(2)
    seed_everything(3)
    assert torch.equal(a, torch.rand(2))
    assert perplexity(0.0) == 1.0 and perplexity(1e9) == perplexity(50.0) < float("inf")


def test_length_grouped_batches_cover_every_row_once_per_epoch_in_batches_of_similar_length():
    import numpy as np

    lengths = np.random.default_rng(0).integers(1, 65, size=1000)
    it = length_grouped_batches(lengths, 16, seed=0, megabatch=4)
    epoch = [next(it) for _ in range(63)]  # 15 megabatches of 64 rows (4 batches each), then 40 rows (3)
    assert sorted(i for b in epoch for i in b) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in epoch if len(b) == 16])
    shuffled = np.mean([np.ptp(lengths[b]) for b, _ in zip(batches(1000, 16, seed=0), range(62))])
    assert spread < shuffled / 3, (spread, shuffled)  # similar lengths within a batch...
    firsts = [lengths[b[0]] for b in epoch]
    assert firsts != sorted(firsts, reverse=True)  # ...but the batches come in a shuffled order
    again, other = length_grouped_batches(lengths, 16, seed=0, megabatch=4), length_grouped_batches(lengths, 16, seed=1)
    assert [next(again) for _ in range(63)] == epoch and next(other) != epoch[0]
    with pytest.raises(ValueError, match="empty"):
        next(length_grouped_batches([], 4, seed=0))
    with pytest.raises(ValueError, match="megabatch"):
        next(length_grouped_batches([3, 4], 4, seed=0, megabatch=0))
