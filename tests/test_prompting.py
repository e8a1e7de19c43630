"""Cloze prompting: the logits it reads, the [MASK] kept through truncation, few-label training, the grid, errors."""
import datasets
import pytest
import torch

from labkit.prompting import (PATTERNS, PROMPTS, VERBALIZERS, ClozeClassifier, ClozePrompt, PromptingConfig,
                              cloze_logits, majority_baseline, plot_prompting, prompt_grid, prompting_markdown,
                              run_prompting, sensitivity_markdown, train_cloze, zero_shot)
from labkit.training import TrainConfig
from labkit.transfer import TransferConfig
from labkit.transformer import MaskedLM, PreTrainingModel

import tiny

SENTIMENT = ClozePrompt("{text} it is [MASK] .", {"negative": "bad", "positive": "good"})


def _mlm(cls=MaskedLM, seed: int = 0):
    tok = tiny.tokenizer()
    torch.manual_seed(seed)
    return cls(tiny.config(tok)).eval(), tok


@pytest.mark.parametrize("cls", [MaskedLM, PreTrainingModel])
def test_cloze_logits_are_the_mlm_logits_of_the_verbalizer_words_at_the_mask(cls):
    mlm, tok = _mlm(cls)
    texts = list(tiny.sentiment_data()["test"]["text"][:5]) + ["a much longer text about the red phone , " * 3]
    got = cloze_logits(mlm, tok, SENTIMENT, texts, batch_size=4)  # (N, K), batches of uneven padding
    assert got.shape == (len(texts), 2)
    word_ids = [tok.convert_tokens_to_ids(w) for w in ("bad", "good")]
    for i, text in enumerate(texts):  # one text at a time, the whole string through the tokenizer, no padding
        ids = tok(SENTIMENT.pattern.replace("{text}", text), return_tensors="pt")["input_ids"]  # (1, T)
        at = int((ids[0] == tok.mask_token_id).nonzero())
        with torch.no_grad():
            full = mlm(ids).logits[0, at]  # (V,)
        torch.testing.assert_close(got[i], full[word_ids], rtol=1e-4, atol=1e-4)


def test_the_mask_survives_truncation_and_the_text_loses_its_end():
    tok = tiny.tokenizer()
    long = "the red phone is good today . " * 40
    for pattern in ("{text} it is [MASK] .", "[MASK] {text}", "news : [MASK] . {text} the end ."):
        prompt = ClozePrompt(pattern, {"negative": "bad", "positive": "good"})
        enc = prompt.encode(tok, [long, "the car is bad ."], max_length=20)
        assert enc["input_ids"].shape[1] == 20  # the long text filled it exactly
        for row, at in zip(enc["input_ids"], enc["mask_positions"]):
            assert row[at] == tok.mask_token_id and (row == tok.mask_token_id).sum() == 1
        row = enc["input_ids"][0].tolist()
        before, after = (tok(part, add_special_tokens=False)["input_ids"] for part in pattern.split("{text}"))
        text = tok(long, add_special_tokens=False)["input_ids"]
        # [CLS], the pattern's words before the text, the text's start (its end dropped), the words after, [SEP]
        assert row == [tok.cls_token_id, *before, *text[:20 - 2 - len(before) - len(after)], *after, tok.sep_token_id]
    # short texts are not cut: the ids are the whole pattern's tokenization
    short = "the car is bad ."
    enc = SENTIMENT.encode(tok, [short], max_length=128)
    assert enc["input_ids"][0].tolist() == tok(SENTIMENT.pattern.replace("{text}", short))["input_ids"]


def test_a_mask_written_in_the_text_is_not_taken_for_the_patterns():
    tok = tiny.tokenizer()
    enc = SENTIMENT.encode(tok, ["the [MASK] is good ."], max_length=64)
    ids = enc["input_ids"][0].tolist()
    assert ids.count(tok.mask_token_id) == 2
    assert int(enc["mask_positions"][0]) == len(ids) - 3  # "... it is [MASK] . [SEP]"


def test_bad_arguments_name_what_was_wrong():
    mlm, tok = _mlm()
    for pattern, words in [("{text} it is good .", "[MASK]"), ("[MASK] {text} [MASK]", "[MASK]"),
                           ("it is [MASK] .", "{text}"), ("{text} {text} [MASK]", "{text}")]:
        with pytest.raises(ValueError, match=f"exactly one {words}".replace("[", r"\[").replace("{", r"\{")):
            ClozePrompt(pattern, {"a": "bad", "b": "good"})
    with pytest.raises(ValueError, match="at least two"):
        ClozePrompt("{text} [MASK]", {"a": "bad"})
    with pytest.raises(ValueError, match="share a verbalizer word"):
        ClozePrompt("{text} [MASK]", {"a": "good", "b": "Good"})
    with pytest.raises(ValueError, match="one non-empty word"):
        ClozePrompt("{text} [MASK]", {"a": "very good", "b": "bad"})
    split_word = ClozePrompt("{text} it is [MASK] .", {"negative": "bad", "positive": "goodnessxyz"})
    with pytest.raises(ValueError, match="'goodnessxyz'.*not a single word piece"):
        split_word.label_word_ids(tok)
    with pytest.raises(ValueError, match="not a single word piece"):
        cloze_logits(mlm, tok, split_word, ["the car is bad ."])
    topic = tiny.topic_data()["test"]  # labels business/sports/health: no verbalizer word
    with pytest.raises(ValueError, match=r"\['business', 'health', 'sports'\] have no verbalizer word"):
        zero_shot(mlm, tok, SENTIMENT, topic)
    for texts in ([], "one string"):
        with pytest.raises(ValueError, match="texts"):
            SENTIMENT.encode(tok, texts)
    with pytest.raises(ValueError, match="no room for the text"):
        SENTIMENT.encode(tok, ["the car"], max_length=6)
    with pytest.raises(ValueError, match="MaskedLM"):
        ClozeClassifier(torch.nn.Linear(2, 2), [5, 6])
    with pytest.raises(ValueError, match="classification tasks"):
        PromptingConfig(tasks=("ner",))
    with pytest.raises(ValueError, match="label counts"):
        PromptingConfig(label_counts=(0, -32))


def test_zero_shot_scores_and_calibrates():
    mlm, tok = _mlm()
    test = tiny.sentiment_data()["test"]
    score = zero_shot(mlm, tok, SENTIMENT, test)
    gold = [test.features["label"].names[y] for y in test["label"]]
    assert score.logits.shape == (len(test), 2) and len(score.predictions) == len(test)
    assert score.accuracy == pytest.approx(sum(p == g for p, g in zip(score.predictions, gold)) / len(gold))
    calibrated = zero_shot(mlm, tok, SENTIMENT, test, calibrate=True)
    torch.testing.assert_close(calibrated.logits.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(calibrated.logits, score.logits - score.logits.mean(0))
    assert majority_baseline(test) == 0.5


def test_train_cloze_learns_a_copy_and_leaves_the_pretrained_model_alone():
    mlm, tok = _mlm()
    before = {k: v.clone() for k, v in mlm.state_dict().items()}
    data = tiny.sentiment_data()
    cfg = TrainConfig(steps=40, batch_size=8, lr=3e-3, seed=0, progress=False, eval_every=10**9)
    run = train_cloze(mlm, tok, SENTIMENT, data, cfg, n_train=8)
    assert run.history.loss[-1] < 0.5 * run.history.loss[0]  # the prompt's K-way loss falls
    assert run.test.accuracy == 1.0  # tiny data: test = train
    assert all(torch.equal(v, mlm.state_dict()[k]) for k, v in before.items())
    assert run.model.mlm is not mlm
    again = train_cloze(mlm, tok, SENTIMENT, data, cfg, n_train=8)  # one seed, one run
    assert again.history.loss == run.history.loss


def test_run_prompting_gives_one_row_per_task_count_method_and_seed(tmp_path):
    mlm, tok = _mlm()
    data = {"sentiment": tiny.sentiment_data()}
    cfg = PromptingConfig(tasks=("sentiment",), label_counts=(0, 8), seeds=(0, 1),
                          recipe=TransferConfig(min_steps=3, steps_cap=3, probe_steps=2, batch_size=4))
    rows = run_prompting(mlm, tok, data, cfg, prompts={"sentiment": SENTIMENT})
    assert len(rows) == 2 * 2 * 2
    assert {(r["labels"], r["method"]) for r in rows} == {(n, m) for n in (0, 8) for m in ("cloze", "head")}
    zero = zero_shot(mlm, tok, SENTIMENT, data["sentiment"]["test"]).accuracy
    for r in rows:
        if r["labels"] == 0:
            assert r["accuracy"] == (zero if r["method"] == "cloze" else 0.5)
        assert 0 <= r["accuracy"] <= 1
    table = prompting_markdown(rows)
    assert table.count("\n") == 1 + 2 and "| sentiment | 0 |" in table and "| sentiment | 8 |" in table
    assert f"| sentiment | 0 | {zero:.3f} ± 0.000 | 0.500 ± 0.000 | {100 * (zero - 0.5):+.1f} |" in table
    plot_prompting(rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 5000
    with pytest.raises(ValueError, match="no data or no prompt"):
        run_prompting(mlm, tok, {}, cfg)


def test_on_the_ci_build_prompts_read_sentiment_and_32_labels_improve_on_zero_shot(ci_build):
    from labkit.data import load_task
    from labkit.folders import load_model
    from labkit.scales import SCALES

    mlm, tok = load_model(ci_build / "fill-mask")
    for task in PATTERNS:  # every prompt of the sensitivity table is made of whole word pieces
        for verbalizer in VERBALIZERS[task]:
            assert len(ClozePrompt(PATTERNS[task][0], verbalizer).label_word_ids(tok)) == len(verbalizer)
    data = load_task("sentiment", size="ci")
    raw = zero_shot(mlm, tok, PROMPTS["sentiment"], data["test"]).accuracy
    zero = zero_shot(mlm, tok, PROMPTS["sentiment"], data["test"], calibrate=True).accuracy
    assert zero > majority_baseline(data["test"]) + 0.08 and zero > raw  # measured 0.62 (raw 0.535) vs 0.5
    cfg = PromptingConfig(recipe=SCALES["ci"].transfer)
    trained = [train_cloze(mlm, tok, PROMPTS["sentiment"], data, cfg.cloze_train_config(32, seed), n_train=32).test
               for seed in cfg.seeds]
    assert sum(s.accuracy for s in trained) / len(trained) > zero + 0.05  # measured 0.715 vs 0.62
    rows = prompt_grid(mlm, tok, data["validation"], PATTERNS["sentiment"][:1], VERBALIZERS["sentiment"][:2])
    assert len(rows) == 2 and "| `{text} It was [MASK].` |" in sensitivity_markdown(rows)


def test_scoring_leaves_the_masked_lm_in_the_mode_it_was_in():
    mlm, tok = _mlm()
    for mode in (False, True):
        mlm.train(mode)
        cloze_logits(mlm, tok, SENTIMENT, ["the red phone"])
        assert mlm.training is mode and all(m.training is mode for m in mlm.modules())
