"""Instruction tuning of the mini-GPT (labkit.instruct): chat template, assistant mask, training, scoring."""
from __future__ import annotations

import math

import jinja2
import pytest
import torch
from transformers import AutoTokenizer

from labkit.gpt import GPT, GPTConfig
from labkit.instruct import (AssistantReport, InstructConfig, answer, answers, chat_ids, check_messages,
                             evaluate_assistant, instruction_batches, instruction_tune, score_reply,
                             with_chat_template)
from labkit.masking import IGNORE_INDEX
from labkit.sampling import SamplingConfig
from labkit.training import TrainConfig

CHAT = [{"role": "system", "content": "You are the TinyWorld assistant."},
        {"role": "user", "content": "Where was Emma Smith born?"},
        {"role": "assistant", "content": "Emma Smith was born in Paris."},
        {"role": "user", "content": "王伟住在哪里？"},
        {"role": "assistant", "content": "王伟住在上海。"}]


@pytest.fixture
def tokenizer(ci_build):
    return with_chat_template(AutoTokenizer.from_pretrained(ci_build / "text-generation"))


def tiny_gpt(tokenizer, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=len(tokenizer), d_model=32, n_layers=1, n_heads=2, d_ff=64, max_position=64,
                         dropout=0.0, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id))


def test_the_template_writes_role_markers_and_survives_save_and_load(tokenizer, tmp_path):
    text = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert text == ("[CLS]system : You are the TinyWorld assistant. [SEP]user : Where was Emma Smith born? [SEP]"
                    "assistant :")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids.count(tokenizer.sep_token_id) == 2
    assert tokenizer.unk_token_id not in ids  # the markers are word pieces the tokenizer has
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.apply_chat_template(CHAT, tokenize=False) == tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert reloaded.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True) == text


def test_the_assistant_mask_covers_exactly_the_replies_and_their_sep(tokenizer):
    ids = chat_ids(tokenizer, CHAT)
    assert len(ids.input_ids) == len(ids.assistant_mask)
    full = tokenizer(tokenizer.apply_chat_template(CHAT, tokenize=False), add_special_tokens=False)["input_ids"]
    assert ids.input_ids == full
    said = [t for t, m in zip(ids.input_ids, ids.assistant_mask) if m]
    expected = []
    for reply in ("Emma Smith was born in Paris.", "王伟住在上海。"):
        expected += tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
    assert said == expected
    labels = ids.labels()
    assert all(l == IGNORE_INDEX for l, m in zip(labels, ids.assistant_mask) if not m)
    assert sum(l != IGNORE_INDEX for l in labels) == len(expected)


@pytest.mark.parametrize("messages, match", [
    ([], "empty"),
    ("hello", "list"),
    ([{"role": "bot", "content": "hi"}], "unknown role"),
    ([{"role": "user", "content": "  "}], "empty or non-string"),
    ([{"role": "user"}], "keys"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only the first"),
    ([{"role": "system", "content": "b"}], "no user turn"),
])
def test_bad_chats_are_refused_with_the_reason(messages, match):
    with pytest.raises(ValueError, match=match):
        check_messages(messages)


def test_answering_needs_a_chat_that_ends_with_a_user_turn(tokenizer):
    model = tiny_gpt(tokenizer)
    with pytest.raises(ValueError, match="end with a user turn"):
        answer(model, tokenizer, CHAT)
    with pytest.raises(ValueError, match="SamplingConfig"):
        answer(model, tokenizer, CHAT[:2], cfg="greedy")
    with pytest.raises(jinja2.TemplateError, match="unknown role"):  # the template itself refuses an unknown role
        tokenizer.apply_chat_template([{"role": "robot", "content": "hi"}], tokenize=False)


def test_batches_put_the_loss_on_assistant_tokens_only(tokenizer):
    cfg = InstructConfig(train=TrainConfig(steps=1, batch_size=2, progress=False), max_length=160)
    batch = next(instruction_batches(tokenizer, [{"messages": CHAT}, {"messages": CHAT[:3]}], cfg))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    trained = batch["labels"] != IGNORE_INDEX
    assert (batch["input_ids"][trained] == batch["labels"][trained]).all()
    assert not (trained & (batch["attention_mask"] == 0)).any()  # never on padding
    per_row = trained.sum(1).tolist()
    assert sorted(per_row) == sorted(sum(chat_ids(tokenizer, c).assistant_mask) for c in (CHAT, CHAT[:3]))


def test_instruction_tuning_teaches_a_tiny_gpt_to_answer_and_is_seeded(tokenizer):
    rows = [{"messages": [{"role": "user", "content": f"Where was {name} born?"},
                          {"role": "assistant", "content": f"{name} was born in {city}."}]}
            for name, city in (("Emma Smith", "Paris"), ("Wang Wei", "Shanghai"), ("Omar Khan", "Rome"))]
    cfg = InstructConfig(train=TrainConfig(steps=120, batch_size=3, lr=1e-2, warmup_ratio=0.05, progress=False,
                                           eval_every=120), max_length=64, max_new_tokens=12)
    model = tiny_gpt(tokenizer)
    result = instruction_tune(model, tokenizer, rows, cfg)
    assert result.n_chats == 3 and result.n_dropped == 0 and 0 < result.assistant_share < 1
    assert result.history.loss[-1] < 0.2 * result.history.loss[0]
    assert answer(model, tokenizer, rows[1]["messages"][:1], cfg) == "wang wei was born in shanghai."
    twin = tiny_gpt(tokenizer)
    instruction_tune(twin, tokenizer, rows, cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    report = evaluate_assistant(model, tokenizer, [{**r, "kind": "born_in", "lang": "en", "answerable": True,
                                                    "value": r["messages"][1]["content"].split()[-1][:-1]}
                                                   for r in rows])
    assert report.overall["exact_match"] == 1.0 and report.overall["hallucination_rate"] == 0.0
    batched = answers(model, tokenizer, [r["messages"][:1] for r in rows], SamplingConfig(max_new_tokens=12))
    assert batched == report.replies  # left-padded batches answer as one chat at a time


def test_long_chats_are_left_out_and_bad_configs_refused(tokenizer):
    with pytest.raises(ValueError, match="max_length"):
        InstructConfig(max_length=4)
    model = tiny_gpt(tokenizer)
    cfg = InstructConfig(train=TrainConfig(steps=1, batch_size=2, progress=False), max_length=128)
    with pytest.raises(ValueError, match="max_position"):
        instruction_tune(model, tokenizer, [{"messages": CHAT}], cfg)
    cfg = InstructConfig(train=TrainConfig(steps=1, batch_size=2, progress=False), max_length=12)
    with pytest.raises(ValueError, match="no chat fits"):
        instruction_tune(model, tokenizer, [{"messages": CHAT}], cfg)
    with pytest.raises(ValueError, match="empty"):
        instruction_tune(model, tokenizer, [], cfg)


def test_scores_tell_right_wrong_refused_and_hallucinated(tokenizer):
    fact = {"messages": CHAT[1:3], "answerable": True, "value": "Paris", "kind": "born_in", "lang": "en"}
    unknown = {"messages": [CHAT[1], {"role": "assistant", "content": "I don't know Emma Smith: they are not in TinyWorld."}],
               "answerable": False, "value": "", "kind": "born_in", "lang": "en"}
    right = score_reply(tokenizer, "emma smith was born in paris .", fact)
    assert right == {"em": 1.0, "f1": 1.0, "correct": 1.0, "refusal": 0.0, "hallucination": 0.0}
    wrong = score_reply(tokenizer, "emma smith was born in rome.", fact)
    assert wrong["em"] == 0.0 and 0.5 < wrong["f1"] < 1.0 and wrong["correct"] == 0.0 and wrong["hallucination"] == 1.0
    refused = score_reply(tokenizer, "i don't know emma smith: they are not in tinyworld.", fact)
    assert refused["refusal"] == 1.0 and refused["hallucination"] == 0.0 and refused["correct"] == 0.0
    assert score_reply(tokenizer, "emma smith was born in paris.", unknown)["hallucination"] == 1.0
    assert score_reply(tokenizer, "i don ' t know emma smith : they are not in tinyworld .", unknown)["correct"] == 1.0
    zh = {"messages": CHAT[3:5], "answerable": True, "value": "上海", "kind": "lives_in", "lang": "zh"}
    half = score_reply(tokenizer, "王伟住在北京。", zh)  # Chinese is scored character by character
    assert half["em"] == 0.0 and 0.6 < half["f1"] < 0.9 and half["correct"] == 0.0


def test_the_report_aggregates_per_group_kind_and_language(tokenizer):
    model = tiny_gpt(tokenizer)
    rows = [{"messages": CHAT[1:3], "answerable": True, "value": "Paris", "kind": "born_in", "lang": "en"},
            {"messages": CHAT[3:5], "answerable": True, "value": "上海", "kind": "lives_in", "lang": "zh"},
            {"messages": [CHAT[1], {"role": "assistant", "content": "I don't know X: they are not in TinyWorld."}],
             "answerable": False, "value": "", "kind": "born_in", "lang": "en"}]
    report = evaluate_assistant(model, tokenizer, rows, InstructConfig(max_new_tokens=6))
    assert isinstance(report, AssistantReport) and len(report.replies) == 3
    assert report.overall["n"] == 3 and report.overall["n_unanswerable"] == 1
    assert set(report.by_lang) == {"en", "zh"} and set(report.by_group) == {"fact", "unknown"}
    assert list(report.by_kind) == ["born_in", "lives_in"]
    assert math.isnan(report.by_group["fact"]["refusal_rate"])
    assert report.overall["hallucination_rate"] == 1.0  # an untrained model is wrong everywhere
    assert "| all | 3 |" in report.table() and "| lives_in | 1 |" in report.table("kind")
    with pytest.raises(ValueError, match="lacks"):
        evaluate_assistant(model, tokenizer, [{"messages": CHAT}])
