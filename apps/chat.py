r"""Chat demo: talk with the lab's TinyWorld assistant, the mini-GPT after instruction tuning.

``labkit build --assistant`` (or ``--assistant-only``, added to a build) fine-tunes the build's
mini-GPT on TinyWorld chats and saves it as ``<build>/assistant`` (:func:`labkit.build.build_assistant`).
Its tokenizer carries the lab's chat template (:mod:`labkit.instruct`), so a chat becomes one text,

    [CLS]system : ... [SEP]user : Where was Emma Smith born? [SEP]assistant : ... [SEP]user : ... [SEP]assistant :

and the model writes the reply one word piece at a time until it writes ``[SEP]``. Every turn
of the conversation so far goes into that text, so the model reads the earlier turns; when
they no longer fit in its positions, the oldest exchanges are left out (and the page says so).

Decoding: temperature 0 is greedy (the most probable piece each step, as
:func:`labkit.instruct.answer`); above 0 it samples from softmax(logits / τ), seeded.

Two ways in: the page (a ``gr.Chatbot`` in the messages format, streaming) and the API
endpoint ``/chat`` (message, history as ``[{"role", "content"}, ...]``, system prompt, max new
word pieces, temperature, seed → the reply, streamed as it grows).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator, Mapping

import gradio as gr
import torch

from apps.common import (CONCURRENCY_LIMIT, ModelStore, check_float, check_int, check_length, clean_text,
                         device_markdown, run_alone)
from labkit.instruct import check_messages, with_chat_template
from labkit.sampling import SamplingConfig, stream
from labkit.translate import join_cjk

__all__ = ["TAB", "FOLDER", "MAX_TEMPERATURE", "MAX_MESSAGE_CHARS", "MAX_HISTORY_TURNS", "Request", "history_messages",
           "prepare", "reply_stream", "chat", "respond", "make_demo"]

TAB = "chat"
FOLDER = "assistant"  # the build's folder (labkit.build.ASSISTANT)
MAX_TEMPERATURE = 5.0
MAX_MESSAGE_CHARS = 1000  # one message, and the system prompt
MAX_HISTORY_TURNS = 100  # turns of history an API call may send
DEFAULT_NEW_TOKENS = 40
SYSTEM_EXAMPLE = "You are the TinyWorld assistant. Answer questions about TinyWorld."


@dataclass(frozen=True)
class Request:
    """A checked request: the chat the model reads, its prompt ids, how to decode, and what was left out."""

    messages: list[dict]  # [system], the earlier turns that fit, the new user turn
    prompt_ids: list[int]
    cfg: SamplingConfig
    seed: int
    dropped: int  # earliest turns of the history left out so that the chat fits in the model's positions


def _folder(store: ModelStore) -> Path | None:
    folders = store.folders(TAB)
    return next(iter(folders.values())) if folders else None


def _missing_message(store: ModelStore) -> str:
    scale = store.report().get("scale") or store.build_dir.name
    return (f"This build ({store.build_dir}) has no assistant: instruction tuning is an optional stage of "
            f"`labkit build`. Run `labkit build --scale {scale} --assistant-only --out {store.build_dir}` (about "
            f"4 minutes at cpu scale), then restart `labkit demo`. The other tabs work meanwhile.")


def _model(store: ModelStore):
    """The store's assistant; a gr.Error that says how to make it when the build has none."""
    if _folder(store) is None:
        raise gr.Error(_missing_message(store), print_exception=False)
    return store.get(TAB)


def _text(content, where: str) -> str:
    """A turn's text: a string, or the Chatbot's list of parts ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    parts = [content] if isinstance(content, Mapping) else content
    if isinstance(parts, (list, tuple)):
        texts = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str) and part.get("type", "text") == "text":
                texts.append(part["text"])
            else:
                raise gr.Error(f"{where} holds something other than text ({str(part)[:60]}); this chat reads text "
                               f"only.", print_exception=False)
        return " ".join(texts)
    raise gr.Error(f"{where} has content of type {type(content).__name__}; it must be a string.", print_exception=False)


def history_messages(history) -> list[dict]:
    """The conversation so far as [{"role": "user" | "assistant", "content": str}, ...].

    Accepts the Chatbot's value (messages format) and what an API client sends: a list of
    {"role", "content"} dicts (None or [] for a new chat). Turns with empty text (a reply that
    was only [SEP]) are skipped; anything else that is not a user or assistant text turn is a gr.Error."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)):
        raise gr.Error(f"The history must be a list of {{'role', 'content'}} turns, got {type(history).__name__}.",
                       print_exception=False)
    if len(history) > MAX_HISTORY_TURNS:
        raise gr.Error(f"The history has {len(history)} turns; the limit is {MAX_HISTORY_TURNS}. Please start a new "
                       f"chat.", print_exception=False)
    out = []
    for i, turn in enumerate(history):
        where = f"History turn {i + 1}"
        if not isinstance(turn, Mapping) or "role" not in turn or "content" not in turn:
            raise gr.Error(f"{where} must be a dict with keys 'role' and 'content', got {str(turn)[:60]}.",
                           print_exception=False)
        role = turn["role"]
        if role not in ("user", "assistant"):
            extra = "; put a system prompt in its own field" if role == "system" else ""
            raise gr.Error(f"{where} has role {str(role)[:20]!r}; the history holds 'user' and 'assistant' "
                           f"turns{extra}.", print_exception=False)
        text = _text(turn["content"], where)
        if text.strip():  # a reply that was only [SEP] shows as an empty turn: nothing to read
            out.append({"role": role, "content": clean_text(text, f"history turn {i + 1}",
                                                             max_chars=2 * MAX_MESSAGE_CHARS)})
    return out


def _encode(tokenizer, messages: list[dict]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def prepare(store: ModelStore, message, history=None, system_prompt="", max_new_tokens=DEFAULT_NEW_TOKENS,
            temperature=0.0, seed=0) -> Request:
    """Check every input (gr.Error with a sentence a user can act on) and write the prompt.

    The earliest exchanges of the history are left out, oldest first, until the prompt and
    ``max_new_tokens`` new word pieces fit in the model's positions."""
    message = clean_text(message, "message", max_chars=MAX_MESSAGE_CHARS)
    turns = history_messages(history)
    if system_prompt is None or (isinstance(system_prompt, str) and not system_prompt.strip()):
        system = None
    else:
        system = clean_text(system_prompt, "system prompt", max_chars=MAX_MESSAGE_CHARS)
    temperature = check_float(temperature, "temperature", 0, MAX_TEMPERATURE, low_inclusive=True)
    seed = check_int(seed, "seed", 0, 2**63 - 1)
    m = _model(store)
    tok = m.tokenizer  # this thread's copy
    if not getattr(tok, "chat_template", None):  # a GPT folder pointed at the tab without a template
        with_chat_template(tok)
    longest = m.max_position // 2
    max_new_tokens = check_int(max_new_tokens, "number of new word pieces", 1, longest)
    check_length(tok, message, None, "message")  # refuses a message of unknown characters only
    head = [{"role": "system", "content": system}] if system else []
    try:
        check_messages(head + turns + [{"role": "user", "content": message}], ends_with="user")
    except ValueError as err:
        raise gr.Error(f"This chat cannot be read: {err}.", print_exception=False) from None
    kept, dropped = list(turns), 0
    while True:
        messages = head + kept + [{"role": "user", "content": message}]
        ids = _encode(tok, messages)
        if len(ids) + max_new_tokens <= m.max_position or not kept:
            break
        kept.pop(0)  # the oldest turn, and an assistant turn left leading with it
        dropped += 1
        while kept and kept[0]["role"] == "assistant":
            kept.pop(0)
            dropped += 1
    if len(ids) + max_new_tokens > m.max_position:
        what = "The system prompt and the message are" if system else "The message is"
        raise gr.Error(f"{what} {len(ids)} word pieces long in the chat template; with {max_new_tokens} new word "
                       f"pieces that is more than the {m.max_position} this model reads. Please shorten it or ask "
                       f"for fewer new word pieces.", print_exception=False)
    do_sample = temperature > 0
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, do_sample=do_sample,
                         temperature=temperature if do_sample else 1.0, eos_token_id=tok.sep_token_id)
    return Request(messages, ids, cfg, seed, dropped)


@torch.no_grad()
def reply_stream(store: ModelStore, req: Request) -> Iterator[tuple[str, int]]:
    """Write the reply to a prepared request; yield (reply so far, word pieces written) after every new
    piece. The [SEP] that ends the reply is not part of it (a reply that stops before
    ``req.cfg.max_new_tokens`` pieces ended with [SEP]); if [SEP] comes first, ("", 0) is yielded once."""
    m = store.get(TAB)
    model = m.model
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(req.seed)
    new: list[int] = []
    for token, _ in stream(model, torch.tensor([req.prompt_ids]), cfg=req.cfg, generator=generator,
                           pad_token_id=m.tokenizer.pad_token_id or 0):
        tok = m.tokenizer  # this thread's copy: gradio may resume a generator on another thread
        chosen = int(token[0])
        if chosen == req.cfg.eos_token_id:
            if not new:
                yield "", 0
            return
        new.append(chosen)
        yield join_cjk(tok.decode(new, skip_special_tokens=True)), len(new)


def chat(store: ModelStore, message, history=None, system_prompt="", max_new_tokens=DEFAULT_NEW_TOKENS,
         temperature=0.0, seed=0) -> Iterator[str]:
    """The API's handler: the assistant's reply to ``message`` after ``history``, yielded as it grows
    (the last yield is the whole reply)."""
    req = prepare(store, message, history, system_prompt, max_new_tokens, temperature, seed)
    for text, _ in reply_stream(store, req):
        yield text


def _status(req: Request, n: int, done: bool) -> str:
    how = "greedy" if not req.cfg.do_sample else f"sampling, temperature {req.cfg.temperature:g}, seed {req.seed}"
    pieces = f"{n} word piece{'' if n == 1 else 's'}"
    left = (f" · the {req.dropped} earliest turns were left out: with them the chat is longer than the model "
            f"reads" if req.dropped else "")
    if not done:
        return f"Writing… {pieces} · {how}{left}"
    end = "then [SEP]: the assistant ended its reply" if n < req.cfg.max_new_tokens else "the most you asked for"
    return f"**{pieces}**, {end} · {how}{left}"


def respond(store: ModelStore, message, chatbot=None, system_prompt="", max_new_tokens=DEFAULT_NEW_TOKENS,
            temperature=0.0, seed=0) -> Iterator[tuple]:
    """The page's handler: yields (the chat shown, with the reply growing; the message box, emptied; a status line)."""
    req = prepare(store, message, chatbot, system_prompt, max_new_tokens, temperature, seed)
    shown = history_messages(chatbot) + [{"role": "user", "content": req.messages[-1]["content"]}]
    text, n = "", 0
    for text, n in reply_stream(store, req):
        if n < req.cfg.max_new_tokens:
            yield shown + [{"role": "assistant", "content": text}], "", _status(req, n, done=False)
    yield shown + [{"role": "assistant", "content": text}], "", _status(req, n, done=True)


def _about(store: ModelStore) -> str:
    entry = store.report(TAB).get("models", {}).get(FOLDER, {})
    m = entry.get("metrics", {})
    size = f" ({entry['parameters']:,} parameters)" if "parameters" in entry else ""
    scores = ""
    if {"f1", "hallucination_rate", "refusal_rate"} <= set(m):
        scores = (f" On held-out TinyWorld questions its token F1 is {m['f1']:.2f}; it refused "
                  f"{m['refusal_rate']:.0%} of the questions about entities that do not exist, and "
                  f"{m['hallucination_rate']:.0%} of its replies were confident and wrong.")
    return (f"⚠️ **It only knows TinyWorld, and it makes things up.** The lab's mini-GPT{size}, instruction-tuned "
            f"on a few thousand TinyWorld chats: questions about the world's invented people, companies and "
            f"products, customer-service requests (put the company's service card in the system prompt), and "
            f"questions about people who do not exist, which it should refuse.{scores} It lowercases what you "
            f"type, and knows nothing of the real world.")


def make_demo(store: ModelStore) -> gr.Blocks:
    """The chat app on ``store``'s assistant (reads its config.json; the weights load on the first message)."""
    folder = _folder(store)
    n_positions = store.config(TAB).get("n_positions", 256) if folder is not None else 256
    longest = max(2, n_positions // 2)
    with gr.Blocks(title="Assistant chat · Foundation Model Lab", analytics_enabled=False) as demo:
        gr.Markdown("## Chat with the TinyWorld assistant\nInstruction tuning taught the mini-GPT to answer in "
                    "turns: every earlier turn goes into the chat template it reads, and it writes its reply one "
                    "word piece at a time until it writes [SEP].")
        if folder is None:
            gr.Markdown(f"⚠️ {_missing_message(store)}")
        else:
            gr.Markdown(_about(store))
            gr.Markdown(device_markdown(store, TAB))
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="TinyWorld assistant (it only knows TinyWorld, and makes things up)",
                                     height=420, elem_id="chat-history", feedback_options=None)
                message = gr.Textbox(label="Your message", lines=1, elem_id="chat-message",
                                     placeholder="Ask about TinyWorld: Where was Emma Smith born?")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="chat-send")
                    clear = gr.ClearButton(value="New chat")
                status = gr.Markdown(elem_id="chat-status")
            with gr.Column(scale=2):
                system = gr.Textbox(label="System prompt (optional)", lines=3, elem_id="chat-system",
                                    placeholder=SYSTEM_EXAMPLE)
                max_new = gr.Slider(1, longest, value=min(DEFAULT_NEW_TOKENS, longest), step=1,
                                    label="Max new word pieces")
                temperature = gr.Slider(0, MAX_TEMPERATURE, value=0, step=0.05,
                                        label="Temperature (0 = greedy; above 0 samples)")
                seed = gr.Number(value=0, precision=0, label="Seed (sampling: same seed, same reply)")
        clear.add([chatbot, message, status])
        gr.Examples([["Where was Emma Smith born?", SYSTEM_EXAMPLE],
                     ["王伟住在哪里？", ""],
                     ["What are your opening hours?", "You are the assistant of Horizon Software. Open every day "
                      "from 10:00 to 19:00. Returns within 30 days. Tavi X6: 236 dollars. Order 2403: delivered."],
                     ["Who founded Horizon Software?", ""]],
                    inputs=[message, system], label="Examples")
        gr.on([send.click, message.submit], partial(respond, store),
              [message, chatbot, system, max_new, temperature, seed], [chatbot, message, status],
              api_name="chat_turn", api_visibility="private", concurrency_id="model", preprocess=False)
        # the page's event takes the Chatbot's own format and is not for clients (gradio checks that format
        # before any handler runs); clients call /chat, which takes plain {"role", "content"} turns

        def api_chat(message: str, history: list[dict] | None = None, system_prompt: str = "",
                     max_new_tokens: int = DEFAULT_NEW_TOKENS, temperature: float = 0.0, seed: int = 0) -> Iterator[str]:
            """The assistant's reply to `message` after `history` ([{"role": "user" | "assistant", "content": str}]),
            streamed as it grows; temperature 0 is greedy."""
            yield from chat(store, message, history, system_prompt, max_new_tokens, temperature, seed)

        gr.api(api_chat, api_name="chat", concurrency_id="model")
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)


if __name__ == "__main__":
    run_alone(make_demo)
