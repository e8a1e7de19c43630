"""Soft prompts: the same logits as peft's prompt tuning, a frozen masked LM, P × C trainable numbers,
a loss that falls, and the training subsets of the cloze and head runs."""
import dataclasses
import warnings

import pytest
import torch

import labkit.finetune
import labkit.prompt_tuning
import labkit.prompting
from labkit.hf import to_hf
from labkit.prompt_tuning import (PromptedEncoder, SoftPromptConfig, SoftPromptMLM, SoftPromptModel, add_trainable_counts,
                                  count_trainable, frozen, run_prompt_tuning, train_soft_prompt, training_subset,
                                  tuning_markdown)
from labkit.prompting import ClozePrompt, PromptingConfig, run_prompting
from labkit.transfer import TransferConfig
from labkit.transformer import MaskedLM, PreTrainingModel

import tiny

SENTIMENT = ClozePrompt("{text} it is [MASK] .", {"negative": "bad", "positive": "good"})


def _mlm(cls=MaskedLM, seed: int = 0, **config):
    tok = tiny.tokenizer()
    torch.manual_seed(seed)
    return cls(dataclasses.replace(tiny.config(tok), **config)).eval(), tok


def _peft(mlm, n_tokens: int):
    """peft's prompt tuning around transformers' twin of ``mlm``. TOKEN_CLS is the task type whose
    forward prepends the virtual tokens' embeddings to the input's and passes every position's
    output through (a BERT masked LM has no peft class of its own)."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(to_hf(mlm).eval(), PromptTuningConfig(task_type=TaskType.TOKEN_CLS,
                                                                     num_virtual_tokens=n_tokens))
    return model.eval()


@pytest.mark.parametrize("cls", [MaskedLM, PreTrainingModel])
def test_the_logits_at_the_real_positions_equal_peft_prompt_tunings(cls):
    mlm, tok = _mlm(cls)
    P = 5
    torch.manual_seed(1)
    ours = SoftPromptMLM(mlm, P, init="random").eval()
    theirs = _peft(mlm, P)
    with torch.no_grad():
        theirs.prompt_encoder["default"].embedding.weight.copy_(ours.prompt)  # (P, C): our vectors in peft's table
    texts = ["the red car is good today .", "the car .", "the blue phone is awful today ."]
    batch = tok(texts, padding=True, return_tensors="pt")  # rows of uneven length: a padded batch
    assert (batch["attention_mask"] == 0).any()
    real = batch["attention_mask"].bool()  # (B, T)
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"]).logits  # (B, T, V)
        want = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        want = (want.logits if cls is MaskedLM else want.prediction_logits)[:, P:]  # (B, P+T, V) -> (B, T, V)
    assert got.shape == want.shape == (*batch["input_ids"].shape, mlm.config.vocab_size)
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # segment ids: peft gives the prompt segment 0, and so do we
        types = torch.ones_like(batch["input_ids"])
        got = ours(batch["input_ids"], batch["attention_mask"], types).logits
        want = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=types)
        want = (want.logits if cls is MaskedLM else want.prediction_logits)[:, P:]
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


def test_the_classifier_reads_peft_logits_at_the_mask_and_owns_the_cloze_loss():
    mlm, tok = _mlm()
    word_ids = SENTIMENT.label_word_ids(tok)
    torch.manual_seed(2)
    model = SoftPromptModel(mlm, word_ids, 4).eval()
    theirs = _peft(mlm, 4)
    with torch.no_grad():
        theirs.prompt_encoder["default"].embedding.weight.copy_(model.prompt)
    batch = SENTIMENT.encode(tok, ["the red car is good today .", "the car is bad ."])  # the cloze input, padded
    labels = torch.tensor([1, 0])
    with torch.no_grad():
        out = model(**batch, labels=labels)
        full = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, P+T, V)
    want = full[torch.arange(2), 4 + batch["mask_positions"]][:, word_ids]  # (B, K): the [MASK], P places on
    torch.testing.assert_close(out.logits, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(want, labels), atol=1e-5, rtol=1e-5)


def test_bad_config_values_name_the_field():
    for field, value in [("n_tokens", 0), ("n_tokens", 2.0), ("steps", -1), ("batch_size", True), ("max_length", 0),
                         ("lr", 0.0), ("lr", "0.1"), ("lr", float("nan")), ("weight_decay", -0.1), ("init", "words")]:
        with pytest.raises(ValueError, match=f"^{field} must"):
            SoftPromptConfig(**{field: value})
    with pytest.raises(TypeError):
        SoftPromptConfig(20)  # keyword-only
    mlm, tok = _mlm()
    with pytest.raises(ValueError, match="n_tokens"):
        SoftPromptMLM(mlm, 0)
    with pytest.raises(ValueError, match="MaskedLM"):
        SoftPromptMLM(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="MaskedLM"):
        SoftPromptMLM(SoftPromptMLM(mlm, 2))
    with pytest.raises(ValueError, match=r"prompt must be \(P, 32\)"):
        PromptedEncoder(mlm.encoder, torch.zeros(3, 16))
    with pytest.raises(ValueError, match="exceed max_position=128"):
        SoftPromptMLM(mlm, 100)(torch.ones(1, 40, dtype=torch.long))


def test_the_prompt_is_the_only_trainable_tensor_and_starts_from_word_pieces():
    mlm, tok = _mlm()
    torch.manual_seed(0)
    model = SoftPromptModel(mlm, SENTIMENT.label_word_ids(tok), 20, exclude=tok.all_special_ids)
    assert count_trainable(model) == 20 * 32 == model.prompt.numel()
    assert [p is model.prompt for p in model.trainable_parameters()] == [True]
    assert model.mlm.encoder.encoder is mlm.encoder and model.mlm.head is mlm.head  # shared, not copied
    table = mlm.encoder.embeddings.token.weight  # (V, C)
    rows = [int(torch.nonzero((table == v).all(-1))[0]) for v in model.prompt.detach()]  # each vector is a row
    assert len(set(rows)) == 20 and not set(rows) & set(tok.all_special_ids)
    torch.manual_seed(0)
    again = SoftPromptModel(mlm, SENTIMENT.label_word_ids(tok), 20, exclude=tok.all_special_ids)
    assert torch.equal(again.prompt, model.prompt)  # one seed, one draw
    torch.manual_seed(0)
    noise = SoftPromptMLM(mlm, 20, init="random").prompt.detach()
    assert noise.std().item() == pytest.approx(table.std().item(), rel=0.3)  # the table's scale
    assert count_trainable(mlm) == sum(p.numel() for p in mlm.parameters())


def test_training_moves_the_prompt_lowers_the_loss_and_leaves_the_masked_lm_frozen():
    # weights ten times BERT's 0.02: at 0.02 a random model's [MASK] barely attends to anything, and
    # no prompt could change its answer (a pretrained model's attention is sharp)
    mlm, tok = _mlm(initializer_range=0.2)
    mlm.encoder.layers[0].ff.up.weight.requires_grad_(False)  # a mixed state, to be given back as it was
    grads = [p.requires_grad for p in mlm.parameters()]
    mlm.head.train()  # a mixed mode too
    modes = [m.training for m in mlm.modules()]
    before = {k: v.clone() for k, v in mlm.state_dict().items()}
    data = tiny.sentiment_data()
    cfg = SoftPromptConfig(n_tokens=4, lr=0.3, steps=60, batch_size=8)
    run = train_soft_prompt(mlm, tok, SENTIMENT, data, cfg, n_train=16, seed=0)
    first, last = sum(run.history.loss[:5]) / 5, sum(run.history.loss[-5:]) / 5
    assert last < 0.5 * first  # the K-way cloze loss falls with the prompt alone learning (measured 0.72 -> 0.14)
    assert run.test.accuracy >= 0.75  # tiny data: test = train (measured 1.0)
    assert all(torch.equal(v, mlm.state_dict()[k]) for k, v in before.items())  # not one weight moved
    assert [p.requires_grad for p in mlm.parameters()] == grads
    assert [m.training for m in mlm.modules()] == modes
    torch.manual_seed(0)
    start = SoftPromptMLM(mlm, 4, exclude=tok.all_special_ids).prompt  # the draw the run started from
    assert not torch.allclose(run.model.prompt, start)
    again = train_soft_prompt(mlm, tok, SENTIMENT, data, cfg, n_train=16, seed=0)
    assert again.history.loss == run.history.loss  # one seed, one run
    with frozen(mlm):
        assert not any(p.requires_grad for p in mlm.parameters())


def test_runs_train_on_the_examples_the_cloze_and_head_runs_of_run_prompting_see(monkeypatch):
    seen: dict[str, set] = {"cloze": set(), "head": set(), "soft prompt": set()}

    def recorder(method, module):
        original = module.subsample

        def record(split, n, seed, label_column=None):
            out = original(split, n, seed, label_column)
            seen[method].add((n, seed, tuple(out["text"])))
            return out
        monkeypatch.setattr(module, "subsample", record)

    recorder("cloze", labkit.prompting)
    recorder("head", labkit.finetune)
    recorder("soft prompt", labkit.prompt_tuning)
    mlm, tok = _mlm()
    data = {"sentiment": tiny.sentiment_data()}
    grid = PromptingConfig(tasks=("sentiment",), label_counts=(0, 6, 10), seeds=(0, 1),
                           recipe=TransferConfig(min_steps=1, steps_cap=1, probe_steps=1, batch_size=4))
    prompting_rows = run_prompting(mlm, tok, data, grid, prompts={"sentiment": SENTIMENT})
    rows = run_prompt_tuning(mlm, tok, data, SoftPromptConfig(n_tokens=2, steps=2, batch_size=4), grid,
                             prompts={"sentiment": SENTIMENT})
    assert seen["soft prompt"] == seen["cloze"] == seen["head"]
    assert {(n, s) for n, s, _ in seen["cloze"]} == {(n, s) for n in (6, 10) for s in (0, 1)}
    assert len({texts for _, _, texts in seen["cloze"]}) == 4  # each seed its own draw
    split = data["sentiment"]["train"]
    assert {(6, 1, tuple(training_subset(split, 6, 1)["text"]))} <= seen["cloze"]
    # rows that merge with run_prompting's
    assert [(r["labels"], r["seed"]) for r in rows] == [(n, s) for n in (6, 10) for s in (0, 1)]
    assert all(set(r) == set(prompting_rows[0]) | {"trainable"} and r["method"] == "soft prompt"
               and r["trainable"] == 2 * 32 for r in rows)
    merged = add_trainable_counts(prompting_rows + rows, mlm, data)
    table = tuning_markdown(merged)
    assert table.count("\n") == 1 + 2 + 3 * 2  # 0 labels: cloze and majority; 6 and 10: all three methods
    n_mlm = sum(p.numel() for n, p in mlm.named_parameters())
    assert f"| sentiment | 0 | cloze prompt, zero-shot | " in table and "| 0 |" in table
    assert f"| {n_mlm:,} |" in table and "| soft prompt, model frozen |" in table and "| 64 |" in table
    with pytest.raises(ValueError, match="add_trainable_counts"):
        tuning_markdown(prompting_rows + rows)
