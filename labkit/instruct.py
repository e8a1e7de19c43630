r"""Instruction tuning (supervised fine-tuning) of the mini-GPT into a small TinyWorld assistant.

A chat is a list of turns ``{"role": "system" | "user" | "assistant", "content": ...}``. The
**chat template** writes it as one text the pretrained GPT can read: role markers that are plain
word pieces the lab's WordPiece tokenizer already has, each turn closed by ``[SEP]`` (the GPT's
end of a document), the whole opened by ``[CLS]`` as in pretraining::

    [CLS]system : You are ... [SEP]user : Where was Emma Smith born? [SEP]assistant : Emma ... [SEP]

:func:`with_chat_template` stores it (Jinja) on a tokenizer, so
``tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)`` works, also
on a folder written by ``save_pretrained``. Asking for an answer, the text ends with
``assistant :`` and the model writes until it emits ``[SEP]``.

Fine-tuning uses the GPT's own next-token loss, but only on the assistant's tokens (its
replies and their closing ``[SEP]``): every other label is ``IGNORE_INDEX``, so the model
is not trained to write the user's questions or the system turn, only to answer them,

.. math::  \mathcal{L} = -\frac{1}{|A|} \sum_{t \in A} \log P(x_{t} \mid x_{<t}),
           \qquad A = \text{positions of assistant tokens}.

:func:`evaluate_assistant` scores replies on held-out chats: exact match and token F1 (SQuAD's
normalisation; Chinese scored per character), the share of replies that state the expected fact,
refusals on questions about entities that are not in the world, false refusals on answerable
ones, and hallucinations (a reply that is not a refusal and is wrong).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterator, Mapping, Sequence

import torch

from .data.instructions import KINDS, SERVICE_KINDS, is_refusal
from .masking import IGNORE_INDEX
from .metrics import normalize_answer, squad_exact_match, squad_f1
from .sampling import SamplingConfig, generate
from .training import History, TrainConfig, batches, evaluating, fit, seeded
from .translate import join_cjk

__all__ = ["ROLES", "with_chat_template", "chat_template", "check_messages", "ChatIds", "chat_ids",
           "InstructConfig", "InstructResult", "instruction_batches", "instruction_tune", "answer", "answers",
           "AssistantReport", "evaluate_assistant", "score_reply", "group_of"]

ROLES = ("system", "user", "assistant")
USER_MARKER, ASSISTANT_MARKER = "user :", "assistant :"


def chat_template(cls_token: str = "[CLS]", sep_token: str = "[SEP]") -> str:
    """The Jinja chat template: ``[CLS]``, then ``role : content [SEP]`` per turn, then (asked for a
    generation prompt) ``assistant :``. An unknown role raises an error while rendering."""
    return (
        "{{ '" + cls_token + "' }}"
        "{% for message in messages %}"
        "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
        "{{ raise_exception('unknown role ' + message['role'] + '; use system, user or assistant') }}"
        "{% endif %}"
        "{{ message['role'] + ' : ' + message['content'] + ' " + sep_token + "' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant :' }}{% endif %}"
    )


def with_chat_template(tokenizer):
    """Set the lab's chat template on ``tokenizer`` (in place) and return it."""
    if tokenizer.cls_token is None or tokenizer.sep_token is None:
        raise ValueError("the tokenizer needs a [CLS] and a [SEP] token (the lab's WordPiece tokenizer has both)")
    tokenizer.chat_template = chat_template(tokenizer.cls_token, tokenizer.sep_token)
    return tokenizer


def check_messages(messages, *, ends_with: str | None = None) -> list[dict]:
    """``messages`` as a list of {"role", "content"} dicts, or ValueError saying what is wrong.

    ``ends_with``: the role the last turn must have ("user" to ask for an answer, "assistant"
    for a training chat)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of {{'role', 'content'}} dicts, got {type(messages).__name__}")
    if len(messages) == 0:
        raise ValueError("messages is empty: a chat needs at least one user turn")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ValueError(f"messages[{i}] must be a dict with keys 'role' and 'content', got {message!r}")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise ValueError(f"messages[{i}] has unknown role {role!r}; use one of {ROLES}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"messages[{i}] ({role}) has empty or non-string content {content!r}")
        if role == "system" and i > 0:
            raise ValueError(f"messages[{i}] is a system turn; only the first turn may be one")
        out.append({"role": role, "content": content})
    if all(m["role"] == "system" for m in out):
        raise ValueError("messages has no user turn")
    if ends_with is not None and out[-1]["role"] != ends_with:
        what = "ask for an answer" if ends_with == "user" else "train on it"
        raise ValueError(f"the chat must end with a {ends_with} turn to {what}; its last turn is {out[-1]['role']!r}")
    return out


def _ensure_template(tokenizer):
    if not getattr(tokenizer, "chat_template", None):
        with_chat_template(tokenizer)
    return tokenizer


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class ChatIds:
    """A chat's token ids and, per token, 1 if the assistant wrote it (reply and closing [SEP])."""

    input_ids: list[int]
    assistant_mask: list[int]

    def labels(self) -> list[int]:
        """The ids where the assistant wrote them, IGNORE_INDEX elsewhere (the loss's targets)."""
        return [t if m else IGNORE_INDEX for t, m in zip(self.input_ids, self.assistant_mask)]


def chat_ids(tokenizer, messages) -> ChatIds:
    """Token ids of a whole chat (through the chat template) and the mask of assistant tokens.

    Each assistant turn's tokens are the ones the full chat adds after the prompt that asks for
    it (the chat so far with ``add_generation_prompt=True``)."""
    messages = check_messages(messages)
    _ensure_template(tokenizer)
    full = _ids(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False))
    mask = [0] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _ids(tokenizer, tokenizer.apply_chat_template(messages[:i], tokenize=False,
                                                               add_generation_prompt=True))
        upto = _ids(tokenizer, tokenizer.apply_chat_template(messages[:i + 1], tokenize=False))
        if full[:len(upto)] != upto or upto[:len(before)] != before:
            raise ValueError("the chat template does not tokenize a chat as its parts; use with_chat_template")
        for t in range(len(before), len(upto)):
            mask[t] = 1
    return ChatIds(full, mask)


# ---- instruction tuning ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InstructConfig:
    """How to instruction-tune: the training run (steps, batch, lr, seed) and the longest chat kept."""

    # the defaults: the cpu-scale measurement (600 steps of 16 chats, about 5 minutes on one CPU thread)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=16, lr=2e-3,
                                                                   eval_every=600, warmup_ratio=0.05))
    max_length: int = 160  # chats with more tokens are left out (the GPT's max_position is the hard limit)
    max_new_tokens: int = 40  # the longest reply answer() writes

    def __post_init__(self):
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train must be a labkit.training.TrainConfig, got {type(self.train).__name__}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {self.max_length}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")


@dataclass
class InstructResult:
    history: History
    n_chats: int  # chats trained on
    n_dropped: int  # chats longer than max_length, left out
    assistant_share: float  # share of the kept chats' tokens that enter the loss

    @property
    def seconds(self) -> float:
        return self.history.seconds


def _encode_rows(tokenizer, rows, max_length: int) -> tuple[list[ChatIds], int]:
    encoded, dropped = [], 0
    for row in rows:
        messages = row["messages"] if isinstance(row, Mapping) else row
        ids = chat_ids(tokenizer, check_messages(messages, ends_with="assistant"))
        if len(ids.input_ids) > max_length:
            dropped += 1
            continue
        encoded.append(ids)
    return encoded, dropped


def _collate(chats: Sequence[ChatIds], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(c.input_ids) for c in chats)
    ids = torch.full((len(chats), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(chats), T), dtype=torch.long)
    labels = torch.full((len(chats), T), IGNORE_INDEX, dtype=torch.long)
    for i, c in enumerate(chats):
        n = len(c.input_ids)
        ids[i, :n] = torch.tensor(c.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(c.labels())
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}  # (B, T) each, right-padded


def instruction_batches(tokenizer, rows, cfg: InstructConfig) -> Iterator[dict[str, torch.Tensor]]:
    """Endless right-padded batches {input_ids, attention_mask, labels} of the chats in ``rows``
    (dicts with "messages", or message lists), reshuffled every epoch from ``cfg.train.seed``."""
    encoded, _ = _encode_rows(tokenizer, rows, cfg.max_length)
    if not encoded:
        raise ValueError(f"no chat fits in max_length={cfg.max_length} tokens")
    for idx in batches(len(encoded), cfg.train.batch_size, seed=cfg.train.seed):
        yield _collate([encoded[i] for i in idx], tokenizer.pad_token_id)


def instruction_tune(model, tokenizer, rows, cfg: InstructConfig | None = None, *, evaluate=None,
                     on_eval=None) -> InstructResult:
    """Fine-tune a causal LM (the lab's GPT: it computes the shifted loss from ``labels``) on the
    chats of ``rows``, with the loss on assistant tokens only. Seeded: one seed, one model."""
    cfg = cfg if cfg is not None else InstructConfig()
    if not isinstance(cfg, InstructConfig):
        raise ValueError(f"cfg must be an InstructConfig, got {type(cfg).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: nothing to instruction-tune on")
    limit = getattr(getattr(model, "config", None), "max_position", None)
    if limit is not None and cfg.max_length > limit:
        raise ValueError(f"max_length={cfg.max_length} exceeds the model's max_position={limit}")
    _ensure_template(tokenizer)
    encoded, dropped = _encode_rows(tokenizer, rows, cfg.max_length)
    if not encoded:
        raise ValueError(f"no chat fits in max_length={cfg.max_length} tokens")
    share = sum(sum(c.assistant_mask) for c in encoded) / sum(len(c.input_ids) for c in encoded)

    def stream():
        for idx in batches(len(encoded), cfg.train.batch_size, seed=cfg.train.seed):
            yield _collate([encoded[i] for i in idx], tokenizer.pad_token_id)

    with seeded(cfg.train.seed):
        history = fit(model, stream(), cfg=cfg.train, evaluate=evaluate, on_eval=on_eval,
                      desc="instruction tuning")
    return InstructResult(history, len(encoded), dropped, share)


# ---- answering ------------------------------------------------------------------------------


def _reply_config(tokenizer, cfg) -> SamplingConfig:
    if cfg is None:
        cfg = SamplingConfig(max_new_tokens=InstructConfig().max_new_tokens)
    elif isinstance(cfg, InstructConfig):
        cfg = SamplingConfig(max_new_tokens=cfg.max_new_tokens)
    elif not isinstance(cfg, SamplingConfig):
        raise ValueError(f"cfg must be a SamplingConfig, an InstructConfig or None, got {type(cfg).__name__}")
    return replace(cfg, eos_token_id=tokenizer.sep_token_id)


def answers(model, tokenizer, conversations, cfg: SamplingConfig | InstructConfig | None = None, *,
            batch_size: int = 32, seed: int = 0) -> list[str]:
    """The assistant's reply to each chat (each must end with a user turn); greedy by default.

    Prompts are left-padded in batches of similar length; a reply stops at ``[SEP]`` or after
    ``max_new_tokens`` (fewer if the prompt leaves less room in the model's positions)."""
    _ensure_template(tokenizer)
    cfg = _reply_config(tokenizer, cfg)
    prompts = []
    for messages in conversations:
        messages = check_messages(messages, ends_with="user")
        prompts.append(_ids(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False,
                                                                     add_generation_prompt=True)))
    limit = getattr(getattr(model, "config", None), "max_position", None) or 10 ** 9
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(prompts[i]) for i in chunk)
        room = min(cfg.max_new_tokens, limit - T)
        if room <= 0:
            raise ValueError(f"a prompt of {T} tokens leaves no room to answer within max_position={limit}")
        ids = torch.full((len(chunk), T), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding: real tokens flush right
            ids[row, T - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[row, T - len(prompts[i]):] = 1
        new = generate(model, ids, mask, replace(cfg, max_new_tokens=room), generator=generator,
                       pad_token_id=tokenizer.pad_token_id)[:, T:]
        for row, i in enumerate(chunk):
            tokens = new[row].tolist()
            if tokenizer.sep_token_id in tokens:
                tokens = tokens[:tokens.index(tokenizer.sep_token_id)]
            out[i] = join_cjk(tokenizer.decode(tokens, skip_special_tokens=True))
    return out


def answer(model, tokenizer, messages, cfg: SamplingConfig | InstructConfig | None = None) -> str:
    """The assistant's reply to one chat ending with a user turn (greedy by default, stops at [SEP])."""
    return answers(model, tokenizer, [messages], cfg)[0]


# ---- evaluation -----------------------------------------------------------------------------


def group_of(kind: str, answerable: bool) -> str:
    """"fact", "service" or "unknown" (a question about an entity not in the world)."""
    if not answerable:
        return "unknown"
    return "service" if kind in SERVICE_KINDS else "fact"


def _as_read(tokenizer, text: str) -> str:
    """``text`` as the tokenizer gives it back (lowercased, spaced around punctuation and Chinese)."""
    return tokenizer.decode(_ids(tokenizer, text), skip_special_tokens=True)


def score_reply(tokenizer, reply: str, row: Mapping) -> dict[str, float]:
    """One reply against its row: em, f1, correct (states the row's value / refuses when it must),
    refusal (1 if the reply is a refusal) and hallucination (not a refusal, and wrong)."""
    gold = row["messages"][-1]["content"]
    said, truth = _as_read(tokenizer, reply), _as_read(tokenizer, gold)  # both spaced the same way
    refused = is_refusal(reply)
    em = squad_exact_match(said, [truth])
    f1 = squad_f1(said, [truth])  # Chinese characters are spaced here, so they count one by one
    if row["answerable"]:
        value = normalize_answer(_as_read(tokenizer, row["value"]))
        correct = float(em == 1.0 or (bool(value) and f" {value} " in f" {normalize_answer(said)} "))
    else:
        correct = float(refused)
    return {"em": em, "f1": f1, "correct": correct, "refusal": float(refused),
            "hallucination": float(not refused and not correct)}


def _summary(scores: list[dict], rows: list[Mapping]) -> dict[str, float]:
    answerable = [s for s, r in zip(scores, rows) if r["answerable"]]
    unanswerable = [s for s, r in zip(scores, rows) if not r["answerable"]]

    def mean(items, key):
        return sum(s[key] for s in items) / len(items) if items else math.nan

    return {"n": len(scores), "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
            "exact_match": mean(answerable, "em"), "f1": mean(answerable, "f1"),
            "correct": mean(answerable, "correct"), "false_refusal_rate": mean(answerable, "refusal"),
            "refusal_rate": mean(unanswerable, "refusal"), "hallucination_rate": mean(scores, "hallucination")}


@dataclass
class AssistantReport:
    """Scores of an assistant on a set of chats: overall, per language, per group and per kind."""

    overall: dict[str, float]
    by_lang: dict[str, dict[str, float]]
    by_group: dict[str, dict[str, float]]
    by_kind: dict[str, dict[str, float]]
    replies: list[str]

    COLUMNS = ("n", "exact_match", "f1", "correct", "false_refusal_rate", "refusal_rate", "hallucination_rate")

    def table(self, which: str = "summary") -> str:
        """A markdown table: "summary" (overall, languages, groups) or "kind"."""
        if which == "summary":
            lines = [("all", self.overall)] + [(f"lang {k}", v) for k, v in self.by_lang.items()] + \
                    [(f"group {k}", v) for k, v in self.by_group.items()]
        elif which == "kind":
            lines = list(self.by_kind.items())
        else:
            raise ValueError(f"which must be 'summary' or 'kind', got {which!r}")
        head = "| rows | " + " | ".join(self.COLUMNS) + " |"
        out = [head, "|" + "---|" * (len(self.COLUMNS) + 1)]
        for name, m in lines:
            cells = [str(m["n"])] + ["–" if math.isnan(m[c]) else f"{m[c]:.2f}" for c in self.COLUMNS[1:]]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(out)


def evaluate_assistant(model, tokenizer, rows, cfg: SamplingConfig | InstructConfig | None = None, *,
                       batch_size: int = 32) -> AssistantReport:
    """Answer every row's last user turn (the row's messages without the final reply) and score it.

    exact match and F1 (SQuAD normalisation, Chinese per character) and ``correct`` (the reply
    states the row's value) are over answerable rows; ``false_refusal_rate`` too;
    ``refusal_rate`` is over rows about entities not in the world; ``hallucination_rate`` over
    all rows: a reply that is not a refusal and is wrong (on an unanswerable row, any non-refusal)."""
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("rows is empty: nothing to evaluate")
    for i, r in enumerate(rows):
        missing = {"messages", "answerable", "kind", "lang", "value"} - set(r)
        if missing:
            raise ValueError(f"rows[{i}] lacks {sorted(missing)}; use load_task('instructions') rows")
        check_messages(r["messages"], ends_with="assistant")
    replies = answers(model, tokenizer, [r["messages"][:-1] for r in rows], cfg, batch_size=batch_size)
    scores = [score_reply(tokenizer, reply, r) for reply, r in zip(replies, rows)]

    def by(key) -> dict[str, dict[str, float]]:
        parts: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            parts[key(r)].append(i)
        return {k: _summary([scores[i] for i in idx], [rows[i] for i in idx]) for k, idx in parts.items()}

    by_kind = by(lambda r: r["kind"])
    by_kind = {k: by_kind[k] for k in KINDS if k in by_kind}
    by_group = by(lambda r: group_of(r["kind"], r["answerable"]))
    by_group = {k: by_group[k] for k in ("fact", "service", "unknown") if k in by_group}
    by_lang = by(lambda r: r["lang"])
    by_lang = {k: by_lang[k] for k in ("en", "zh") if k in by_lang}
    return AssistantReport(_summary(scores, rows), by_lang, by_group, by_kind, replies)

