"""The transfer experiment's bookkeeping: same recipe for both initialisations, a table, a plot."""
from dataclasses import replace

import datasets
import pytest
import torch

from labkit.tokenization import train_tokenizer
from labkit.transfer import TransferConfig, plot_transfer, run_transfer, transfer_markdown
from labkit.transformer import MaskedLM, TransformerConfig

WORDS = ["good", "bad", "great", "awful", "phone", "car", "emma", "paris", "today", "the", "is", "in"]


def _data():
    texts = [f"the {w} is {a}" for w in ("phone", "car") for a in ("good", "bad", "great", "awful")] * 4
    cls = datasets.Dataset.from_dict(
        {"text": texts, "label": [int(t.endswith(("good", "great"))) for t in texts]},
        features=datasets.Features({"text": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["negative", "positive"])}))
    tags = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                              "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "B-LOC"]))})
    ner = datasets.Dataset.from_dict({"tokens": [["emma", "is", "in", "paris"]] * 12,
                                      "ner_tags": [[1, 0, 0, 2]] * 12}, features=tags)
    return {"sentiment": datasets.DatasetDict(train=cls, validation=cls, test=cls),
            "ner": datasets.DatasetDict(train=ner, validation=ner, test=ner)}


def test_steps_grow_with_labels_within_bounds():
    cfg = TransferConfig(epochs=10, min_steps=20, steps_cap=100, batch_size=16)
    assert cfg.steps_for(8) == 20 and cfg.steps_for(64) == 40 and cfg.steps_for(10_000) == 100


def _tiny(**kw):
    tok = train_tokenizer([" ".join(WORDS)] * 5, vocab_size=100, min_frequency=1)
    torch.manual_seed(0)
    return tok, MaskedLM(TransformerConfig(**{"vocab_size": len(tok), "d_model": 16, "n_layers": 1, "n_heads": 2,
                                              "d_ff": 32, "max_position": 32, **kw}))


def test_run_transfer_gives_one_row_per_task_count_and_init(tmp_path):
    tok, mlm = _tiny()
    cfg = TransferConfig(tasks=("sentiment", "ner"), label_counts=(4, None), seeds=(0, 1), min_steps=2, steps_cap=3)
    rows = run_transfer(mlm, tok, _data(), cfg)
    assert len(rows) == 2 * 2 * 2
    assert {(r["task"], r["metric"]) for r in rows} == {("sentiment", "accuracy"), ("ner", "entity_f1")}
    assert {r["labels"] for r in rows if r["task"] == "sentiment"} == {4, 32}  # None = every example
    for r in rows:
        assert len(r["runs"]) == 2 and 0 <= r["score"] <= 1 and r["score"] == pytest.approx(sum(r["runs"]) / 2)
    table = transfer_markdown(rows)
    assert table.count("\n") == 1 + 4 and "| sentiment | accuracy | 4 |" in table
    plot_transfer(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 5000


@pytest.mark.parametrize("task", ["sentiment", "ner"])
def test_head_only_phase_changes_the_head_and_pooler_alone(task):
    from labkit.finetune import finetune
    from labkit.tasks import TASKS
    from labkit.training import TrainConfig
    from labkit.transfer import _train_head_only

    tok, mlm = _tiny()
    data = _data()[task]
    model = TASKS[task].make_model(mlm, data, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tc = TrainConfig(steps=5, batch_size=8, lr=1e-2, eval_every=10**9, progress=False, device="cpu")
    _train_head_only(model, lambda: finetune(TASKS[task], model, tok, data, tc, validate=False, test=False))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(("classifier.", "encoder.pooler.")) for k in changed)
    if task == "sentiment":
        assert any(k.startswith("encoder.pooler.") for k in changed)  # a classifier's pooler learns with its head
    assert all(p.requires_grad for p in model.parameters())  # the whole model trains afterwards
    finetune(TASKS[task], model, tok, data, tc, validate=False, test=False)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith("encoder.layers"))


def test_a_cell_scores_the_same_alone_or_after_other_cells():
    """Each run draws its head, subsample, batch order and dropout from its own seed."""
    tok, mlm = _tiny(dropout=0.1)
    data = _data()
    grid = TransferConfig(tasks=("sentiment", "ner"), label_counts=(4, 8), seeds=(0, 1), min_steps=3, steps_cap=3,
                          probe_steps=2)
    everything = run_transfer(mlm, tok, data, grid)
    alone = run_transfer(mlm, tok, data, replace(grid, tasks=("ner",), label_counts=(8,)))
    assert alone == [r for r in everything if r["task"] == "ner" and r["labels"] == 8]
    sentiment = run_transfer(mlm, tok, data, replace(grid, tasks=("sentiment",), label_counts=(8,)))
    assert sentiment == [r for r in everything if r["task"] == "sentiment" and r["labels"] == 8]


def test_pretrained_and_scratch_runs_get_the_same_recipe(monkeypatch):
    import labkit.transfer

    calls = []
    real = labkit.transfer.finetune

    def recording(task, model, tokenizer, data, cfg, **kw):
        calls.append((task.name, cfg, tuple(sorted(kw.items()))))
        return real(task, model, tokenizer, data, cfg, **kw)

    monkeypatch.setattr(labkit.transfer, "finetune", recording)
    tok, mlm = _tiny()
    cfg = TransferConfig(tasks=("sentiment",), label_counts=(4,), seeds=(0, 1), min_steps=3, steps_cap=3, probe_steps=2)
    run_transfer(mlm, tok, _data(), cfg)
    assert len(calls) == 2 * 2 * 2  # (pretrained, scratch) x 2 seeds x (head alone, then everything)
    assert calls[:4] == calls[4:]
    assert [c[1].steps for c in calls[:4]] == [2, 3, 2, 3] and [c[1].seed for c in calls[:4]] == [0, 0, 1, 1]


def test_unknown_tasks_are_refused():
    tok, mlm = _tiny()
    with pytest.raises(ValueError, match="unknown transfer tasks \\['nope'\\]"):
        run_transfer(mlm, tok, _data(), TransferConfig(tasks=("nope",)))


def test_an_explicit_zero_learning_rate_is_refused_not_replaced():
    """lr=0 and probe_lr=0 are mistakes to report, not 'use the config's rate'."""
    from labkit.transfer import finetune_lpft

    for kw in ({"lr": 0.0}, {"probe_lr": 0.0}):
        with pytest.raises(ValueError, match="need lr > 0"):
            finetune_lpft(None, None, None, None, TransferConfig(), n_train=32, seed=0, **kw)
