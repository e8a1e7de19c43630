# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 07 · Machine translation (机器翻译)
#
# Doc 002 closes its code section with a translation: *"What is the weather like today?"* →
# *"今天天气怎么样？"*. A BERT encoder cannot produce that by itself — it reads text, it does not
# write it. This chapter adds a **decoder** that writes the Chinese sentence one token at a
# time while looking back at the English through **cross-attention**, starts both halves from
# the pretrained mini-BERT, and evaluates the result with BLEU.
#
# **Learning objectives.** After this chapter you can
# 1. describe an encoder–decoder: what the encoder, the decoder's causal self-attention and
#    its cross-attention each compute — and check cross-attention's formula against the model;
# 2. train with teacher forcing, and warm-start the model from a pretrained encoder;
# 3. decode by greedy search and by beam search, and compare the probability of what each finds;
# 4. compute BLEU by hand — clipped n-gram precisions, brevity penalty — and check it against
#    `labkit.metrics.corpus_bleu_zh`;
# 5. read a cross-attention alignment between English and Chinese tokens.
#
# **Prerequisites.** Chapters 01 (attention and masks), 04 (pretraining) and 05 (fine-tuning).
# **Estimated time:** 60 minutes; the code runs in about a minute.
#
# **Source documents.** doc 002 §4.3 (transferring a foundation model to machine translation:
# pretrain, fine-tune, customise), §5.4 (the weather sentence), §6.1 (machine translation as
# an application); doc 004 §4.3 (attention relates each source word to each target word);
# doc 000 §3.2 (step 2: encoder, decoder and attention modules) and §4.3 (translation captures
# correspondences between the languages).

# %% tags=["nbval-skip"]
# Run this cell first on Colab (or in any fresh Python): it installs the lab when it is missing.
import importlib.util
import os
import subprocess
import sys

LAB_REPO = ""  # ← paste the git URL of your course's copy of this repository
LAB_REPO = LAB_REPO or os.environ.get("LAB_REPO", "")
if importlib.util.find_spec("labkit") is None:
    if not LAB_REPO:
        raise RuntimeError("labkit is not installed here. Set LAB_REPO in this cell to the git URL of your "
                           "course's copy of the Foundation Model Lab (ask your teacher), then run it again.")
    folder = "foundation-model-lab"
    if not os.path.isdir(folder):
        subprocess.run(["git", "clone", "--depth", "1", LAB_REPO, folder], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{folder}[lab]"], check=True)
    sys.path.insert(0, os.path.abspath(folder))  # let this running kernel import it at once
    importlib.invalidate_caches()
print("labkit is installed:", importlib.util.find_spec("labkit") is not None)

# %%
import html
import math
import os
from collections import Counter
from dataclasses import replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers
from bertviz import head_view
from IPython.display import HTML, display

from labkit import metrics as M
from labkit.build import SCALES, default_output_dir, ensure_pretrained
from labkit.data import load_task
from labkit.env import best_device
from labkit.folders import load_model
from labkit.generate import beam_search, greedy_decode
from labkit.training import seed_everything
from labkit.finetune import finetune_translation
from labkit.translate import join_cjk, translate, warm_start_seq2seq

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # model and training sizes of `labkit build` at this scale
BUILD = default_output_dir(LAB_SCALE)  # where `labkit build` saved its models
WARM_STEPS = {"ci": 40, "cpu": 40, "gpu": 200}[LAB_SCALE]  # steps of the warm-start comparison in §2
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# TinyWorld's translation task pairs English sentences with Chinese ones — everyday phrases
# (the weather, shopping, travel) and facts about its people and companies. The tokenizer is
# the bilingual one from chapter 03: English becomes word pieces, every Chinese character a
# token of its own, and both languages share one vocabulary.

# %%
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
pairs = load_task("translation", size=LAB_SCALE)
for p in pairs["train"].select(range(3))["translation"]:
    print(f"{p['en']:<55} {p['zh']}")
WEATHER_EN, WEATHER_ZH = "What is the weather like today?", "今天天气怎么样？"
print(tokenizer.tokenize(WEATHER_EN), tokenizer.tokenize(WEATHER_ZH))
assert tokenizer.tokenize(WEATHER_ZH) == list(WEATHER_ZH)  # one token per Chinese character

# %% [markdown]
# ## 1 · Encoder, decoder, cross-attention
#
# An encoder–decoder (a `labkit.transformer.Seq2Seq`, transformers' `EncoderDecoderModel`)
# has three kinds of attention:
#
# * the **encoder** (a BERT, chapter 02) reads the English with bidirectional self-attention
#   and produces one vector per source token — the *memory* $H \in \mathbb{R}^{S \times C}$;
# * the **decoder**'s self-attention is **causal** (chapter 04, §7): target position $t$ sees
#   only the tokens written so far;
# * its **cross-attention** takes queries from the decoder and keys and values from the
#   memory: $\mathrm{softmax}(Q_{\text{dec}} K_{\text{enc}}^\top / \sqrt{d_k})\,V_{\text{enc}}$, so
#   each Chinese position can look at any English token (doc 004 §4.3).
#
# The lab's trained translator comes from `labkit build` if it ran at this scale; otherwise a
# shorter run here stands in.

# %%
if (BUILD / "translation" / "model.safetensors").is_file():
    translator, _ = load_model(BUILD / "translation")
    print("loaded the translator of `labkit build`")
else:
    seed_everything(0)
    translator = warm_start_seq2seq(mlm, n_decoder_layers=SCALE.model.n_decoder_layers)
    finetune_translation(translator, tokenizer, pairs, replace(SCALE.finetune["translation"], steps=min(SCALE.finetune["translation"].steps, 300),
                                                               progress=False), num_beams=1)
    print("no build found: trained a translator here")
translator = translator.to(device).eval()
cfg = translator.config
print(f"encoder: {cfg.n_layers} layers, decoder: {cfg.n_decoder_layers} layer(s), width {cfg.d_model}, {cfg.n_heads} heads")

# %% [markdown]
# Check cross-attention's formula on the real model: catch the inputs of the first decoder
# block's cross-attention with a forward hook, recompute its weights by hand, and compare with
# the weights the model reports.

# %%
enc = tokenizer([WEATHER_EN], return_tensors="pt").to(device)
target = tokenizer([WEATHER_ZH], return_tensors="pt")["input_ids"].to(device)  # [CLS] 今 天 … ？ [SEP]
caught = {}
cross = translator.decoder.layers[0].cross
hook = cross.register_forward_hook(lambda mod, args, kwargs, out: caught.update(args=args, kwargs=kwargs, out=out),
                                   with_kwargs=True)
with torch.no_grad():
    out = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=target[:, :-1], output_attentions=True)
hook.remove()
x_dec, memory, _ = caught["args"]  # (1, T, C) decoder states, (1, S, C) encoder output
split = lambda t: t.view(1, t.shape[1], cfg.n_heads, cfg.d_model // cfg.n_heads).transpose(1, 2)  # noqa: E731  (B, nh, L, hs)
q, k = split(cross.query(x_dec)), split(cross.key(memory))
by_hand = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(cfg.d_model // cfg.n_heads), dim=-1)  # (1, nh, T, S)
reported = out.decoder.cross_attentions[0]  # (1, nh, T, S)
v = split(cross.value(memory))  # (1, nh, S, hs)
mixed = (by_hand @ v).transpose(1, 2).reshape(1, -1, cfg.d_model)  # (1, nh, T, hs) -> (1, T, C): weighted sums of V
assert torch.allclose(memory, out.encoder.last_hidden_state)  # keys and values come from the encoder
assert torch.allclose(by_hand, reported, atol=1e-5)
assert torch.allclose(cross.output(mixed), caught["out"][0], atol=1e-5)  # ... then the output projection
print("cross-attention weights:", tuple(reported.shape), "= (batch, heads, target tokens, source tokens); formula checked")

# %% [markdown]
# ### Teacher forcing
#
# During training the decoder is fed the *true* target shifted right and must predict it
# shifted left: reading `[CLS] 今 天 …` it predicts `今 天 … [SEP]`. Every position is trained at
# once (the causal mask hides the future), rather than feeding the model its own guesses.

# %%
zh = tokenizer.convert_ids_to_tokens(target[0].tolist())
decoder_input, labels = zh[:-1], zh[1:]
print(f"{'decoder reads':>14}: {' '.join(decoder_input)}\n{'must predict':>14}: {' '.join(labels)}")
assert decoder_input[0] == tokenizer.cls_token and labels[-1] == tokenizer.sep_token
assert decoder_input[1:] == labels[:-1]  # the same sequence, offset by one
with torch.no_grad():
    loss = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=target[:, :-1], labels=target[:, 1:]).loss
print(f"loss on the weather sentence: {loss:.3f} (per target token); P(reference) = exp(-{loss:.3f} × {len(labels)}) "
      f"= {math.exp(-loss.item() * len(labels)):.2e}")

# %% [markdown]
# ## 2 · Warm-starting from the pretrained encoder
#
# `warm_start_seq2seq(mlm)` builds the encoder–decoder from the pretrained mini-BERT: the
# encoder is a copy; the decoder's embeddings, self-attention and feed-forward layers start
# from the encoder's too (the "BERT-to-BERT" warm start); only cross-attention starts from
# scratch — there is nothing pretrained to copy it from.

# %%
warm = warm_start_seq2seq(mlm, n_decoder_layers=SCALE.model.n_decoder_layers)
same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
assert same(warm.encoder, mlm.encoder)
assert same(warm.decoder.layers[0].attn, mlm.encoder.layers[0].attn)
assert same(warm.decoder.embeddings, mlm.encoder.embeddings)
fresh_cross = [n for n, _ in warm.named_parameters() if ".cross." in n or "cross_norm" in n]
n_cross = sum(p.numel() for n, p in warm.named_parameters() if n in fresh_cross)
n_all = sum(p.numel() for p in warm.parameters())
print(f"{n_cross:,} of {n_all:,} parameters ({n_cross / n_all:.0%}) — the cross-attention — start from scratch")

# %% [markdown]
# Does the warm start help? Train it and a randomly initialised twin for the same
# `WARM_STEPS` steps with the same data and seed, and compare the training losses.

# %%
short_cfg = replace(SCALE.finetune["translation"], steps=WARM_STEPS, eval_every=WARM_STEPS, progress=False)
runs = {}
for name, init in (("warm start", mlm), ("random init", None)):
    seed_everything(0)
    model = warm_start_seq2seq(init, replace(mlm.config, n_decoder_layers=SCALE.model.n_decoder_layers),
                               n_decoder_layers=SCALE.model.n_decoder_layers)
    runs[name] = finetune_translation(model, tokenizer, pairs, short_cfg, num_beams=1, n_validate=50)
fig, ax = plt.subplots(figsize=(7, 3))
for name, run in runs.items():
    ax.plot(run.history.steps, run.history.loss, label=f"{name} (test BLEU {run.metrics['bleu_greedy']:.1f})")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.legend()
ax.set_title(f"the first {WARM_STEPS} steps of translation training")
plt.show()
tail = {name: np.mean(run.history.loss[-10:]) for name, run in runs.items()}
print({k: round(v, 3) for k, v in tail.items()})
assert tail["warm start"] < tail["random init"]

# %% [markdown]
# ## 3 · Decoding: greedy search and beam search
#
# The decoder gives $P(y_t \mid y_{<t}, x)$; a translation is scored by
#
# $$\log P(y \mid x) = \sum_t \log P(y_t \mid y_{<t}, x).$$
#
# **Greedy search** takes the most likely token at every step — fast, but a good first token
# can lead into a dead end. **Beam search** keeps the `num_beams` best prefixes at every step and
# returns the best finished one, scored per token ($\log P / |y|$) so long sentences are not
# punished just for having more terms. Decode the same sentences both ways and score what each
# found with the model itself:

# %%
@torch.no_grad()
def sequence_logprob(source: str, output_ids: list[int]) -> tuple[float, int]:
    """log P(y | x) of a decoded sequence [CLS] y_1 … [SEP], by teacher forcing, and its length |y|."""
    enc = tokenizer([source], return_tensors="pt").to(device)
    y = torch.tensor([output_ids], device=device)
    logits = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=y[:, :-1]).logits  # (1, T, V)
    return torch.log_softmax(logits, -1)[0].gather(1, y[0, 1:, None]).sum().item(), len(output_ids) - 1


def decode_ids(source: str, num_beams: int) -> list[int]:
    enc = tokenizer([source], return_tensors="pt").to(device)
    kw = dict(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
              pad_token_id=tokenizer.pad_token_id, max_new_tokens=48)
    ids = (greedy_decode(translator, enc["input_ids"], enc["attention_mask"], **kw) if num_beams == 1 else
           beam_search(translator, enc["input_ids"], enc["attention_mask"], num_beams=num_beams, **kw))[0].tolist()
    return ids[:ids.index(tokenizer.sep_token_id) + 1] if tokenizer.sep_token_id in ids else ids


test_pairs = list(pairs["test"]["translation"])
sources = [WEATHER_EN] + [p["en"] for p in test_pairs[:7]]
print(f"{'source':<48} {'greedy':<22} {'log P/|y|':>9}   {'beam (4)':<22} {'log P/|y|':>9}")
per_token = []
for src in sources:
    row = []
    for beams in (1, 4):
        ids = decode_ids(src, beams)
        lp, n = sequence_logprob(src, ids)
        row.append((join_cjk(tokenizer.decode(ids, skip_special_tokens=True)), lp / n))
    per_token.append((row[0][1], row[1][1]))
    print(f"{src[:47]:<48} {row[0][0][:21]:<22} {row[0][1]:>9.3f}   {row[1][0][:21]:<22} {row[1][1]:>9.3f}")

# %% [markdown]
# Two checks. Greedy's output is, by construction, the argmax at every step — teacher-forcing
# its own output must reproduce it. And beam search, which explores more prefixes, finds
# translations with at least as high a per-token log-probability *on average* — not
# necessarily for every sentence: it stops once it has `num_beams` finished candidates, so it
# can miss a better one.

# %%
ids = decode_ids(WEATHER_EN, 1)
enc = tokenizer([WEATHER_EN], return_tensors="pt").to(device)
with torch.no_grad():
    logits = translator(enc["input_ids"], enc["attention_mask"],
                        decoder_input_ids=torch.tensor([ids[:-1]], device=device)).logits  # (1, T, V)
assert logits[0].argmax(-1).tolist() == ids[1:]  # every greedy token is the argmax given its prefix
greedy_mean, beam_mean = np.mean([g for g, _ in per_token]), np.mean([b for _, b in per_token])
print(f"mean log P/|y|: greedy {greedy_mean:.3f}, beam {beam_mean:.3f}; "
      f"beam at least as good on {sum(b >= g - 1e-6 for g, b in per_token)} of {len(per_token)} sentences")
assert beam_mean >= greedy_mean - 1e-6  # (a tie when both find the same translations)
assert translate(translator, tokenizer, [WEATHER_EN], num_beams=1) == [join_cjk(tokenizer.decode(ids, skip_special_tokens=True))]

# %% [markdown]
# **Try it.** Translate your own sentence and change the beam width. (TinyWorld's vocabulary
# is small: sentences like its training data work best — try the weather, a person's job or a
# city.)

# %%
def show_translation(text: str = "It is sunny in Shanghai today.", num_beams: int = 4):
    ids = decode_ids(text, num_beams)
    lp, n = sequence_logprob(text, ids)
    print(f"{join_cjk(tokenizer.decode(ids, skip_special_tokens=True))}   (log P/|y| = {lp / n:.3f})")


widgets.interact(show_translation,
                 text=widgets.Text(value="It is sunny in Shanghai today.", continuous_update=False,
                                   layout=widgets.Layout(width="70%")),
                 num_beams=widgets.IntSlider(4, 1, 8, description="num_beams"));

# %% [markdown]
# ## 4 · BLEU, by hand
#
# BLEU compares a translation with a reference by counting shared n-grams. For Chinese, each
# character is a token (`labkit.metrics.tokenize_zh`, as sacrebleu's `zh` tokenizer). For
# $n = 1 \dots 4$ the **clipped precision** $p_n$ counts each hypothesis n-gram at most as often
# as it occurs in the reference (so repeating a correct word earns nothing), divided by the
# number of hypothesis n-grams. A **brevity penalty** stops very short outputs from scoring
# high:
#
# $$\mathrm{BLEU} = 100 \cdot \mathrm{BP} \cdot \exp\Big(\tfrac14 \sum_{n=1}^{4} \log p_n\Big),
# \qquad \mathrm{BP} = \min\big(1, e^{\,1 - r/c}\big),$$
#
# with $c$ and $r$ the hypothesis and reference lengths. One sentence by hand:

# %%
hypothesis, reference = "今天的天气怎么样？", WEATHER_ZH
hyp_tokens, ref_tokens = M.tokenize_zh(hypothesis), M.tokenize_zh(reference)
precisions = []
for n in range(1, 5):
    hyp_grams = Counter(tuple(hyp_tokens[i:i + n]) for i in range(len(hyp_tokens) - n + 1))
    ref_grams = Counter(tuple(ref_tokens[i:i + n]) for i in range(len(ref_tokens) - n + 1))
    clipped = sum(min(count, ref_grams[g]) for g, count in hyp_grams.items())
    precisions.append(clipped / sum(hyp_grams.values()))
    print(f"p{n} = {clipped}/{sum(hyp_grams.values())} = {precisions[-1]:.3f}")
c, r = len(hyp_tokens), len(ref_tokens)
bp = min(1.0, math.exp(1 - r / c))
bleu_by_hand = 100 * bp * math.exp(sum(math.log(p) for p in precisions) / 4)
print(f"c = {c}, r = {r}, BP = {bp:.3f}; BLEU by hand {bleu_by_hand:.2f}, corpus_bleu_zh {M.corpus_bleu_zh([hypothesis], [reference]):.2f}")
assert hyp_tokens == list(hypothesis)  # every Chinese character and "？" is a token
assert abs(bleu_by_hand - M.corpus_bleu_zh([hypothesis], [reference])) < 1e-9

# %% [markdown]
# Corpus BLEU pools the counts of all sentences before dividing (so it is *not* the mean of
# sentence BLEUs). On the test split — sentences about people and companies the training pairs
# never mentioned — greedy against beam search, with the four precisions:

# %%
test_en, test_zh = [p["en"] for p in test_pairs], [p["zh"] for p in test_pairs]
outputs = {"greedy": translate(translator, tokenizer, test_en, num_beams=1),
           "beam (4)": translate(translator, tokenizer, test_en, num_beams=4)}


def corpus_precisions(hyps: list[str], refs: list[str]) -> list[float]:
    correct, total = [0] * 4, [0] * 4
    for h, r_ in zip(hyps, refs):
        ht, rt = M.tokenize_zh(h), M.tokenize_zh(r_)
        for n in range(1, 5):
            hg = Counter(tuple(ht[i:i + n]) for i in range(len(ht) - n + 1))
            rg = Counter(tuple(rt[i:i + n]) for i in range(len(rt) - n + 1))
            correct[n - 1] += sum(min(k, rg[g]) for g, k in hg.items())
            total[n - 1] += sum(hg.values())
    return [a / b for a, b in zip(correct, total)]


fig, ax = plt.subplots(figsize=(6, 3))
for j, (name, hyps) in enumerate(outputs.items()):
    ps, bleu = corpus_precisions(hyps, test_zh), M.corpus_bleu_zh(hyps, test_zh)
    ax.bar(np.arange(4) + 0.4 * j, ps, width=0.4, label=f"{name}: BLEU {bleu:.1f}")
    if min(ps) > 0:  # without smoothing, the formula above is exactly corpus BLEU
        hl, rl = sum(len(M.tokenize_zh(h)) for h in hyps), sum(len(M.tokenize_zh(t)) for t in test_zh)
        assert abs(100 * min(1, math.exp(1 - rl / hl)) * math.exp(np.mean(np.log(ps))) - bleu) < 1e-6
ax.set_xticks(np.arange(4) + 0.2, [f"p{n}" for n in range(1, 5)])
ax.set_ylabel("clipped precision")
ax.set_ylim(0, 1)
ax.legend()
ax.set_title(f"test split ({len(test_en)} sentences)")
plt.show()
for en, g, b, ref in list(zip(test_en, outputs["greedy"], outputs["beam (4)"], test_zh))[:4]:
    print(f"{en}\n   greedy {g}\n   beam   {b}\n   ref    {ref}")

# %% [markdown]
# ## 5 · Which English word does each Chinese character look at?
#
# Cross-attention weights form a (target × source) matrix for every head and layer. Averaged
# over the heads of the last decoder layer, they show where each Chinese position looked in the
# English. If training has taught the decoder where to look, the rows line up like a word
# alignment — 天气 with *weather*, 今天 with *today*; the line under the table lists, for each
# Chinese token, the English token it attends to most. The weights are for the model's own beam
# translation of the weather sentence. (The heatmap is an HTML table rather than a matplotlib
# figure: matplotlib needs a font with Chinese characters, which many systems lack, while your
# browser always has one.)

# %%
@torch.no_grad()
def cross_attention(source: str, output_ids: list[int]):
    """Source tokens, target tokens and the model's attentions for one translation (teacher-forced)."""
    enc = tokenizer([source], return_tensors="pt").to(device)
    y = torch.tensor([output_ids[:-1]], device=device)  # the decoder reads [CLS] y_1 … y_n
    out = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=y, output_attentions=True)
    src_tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    tgt_tokens = tokenizer.convert_ids_to_tokens(output_ids[1:])  # the token predicted at each position
    return src_tokens, tgt_tokens, out


def heatmap_html(weights: torch.Tensor, row_tokens: list[str], column_tokens: list[str]) -> HTML:
    """A (rows × columns) weight matrix as an HTML table: the darker the cell, the larger the weight."""
    w = weights.detach().float().cpu()
    scale = max(w.max().item(), 1e-9)
    cell = "width:30px;height:22px;text-align:center;font-size:9px;border:1px solid #eee"
    head = "".join(f"<th style='font-weight:normal;padding:2px'>{html.escape(t)}</th>" for t in column_tokens)
    body = "".join(
        f"<tr><th style='font-weight:normal;padding:2px'>{html.escape(t)}</th>" + "".join(
            f"<td style='{cell};background:rgba(31,119,180,{v / scale:.2f});color:{'white' if v > scale / 2 else 'black'}'>"
            f"{v:.2f}</td>" for v in row.tolist()) + "</tr>"
        for t, row in zip(row_tokens, w))
    return HTML(f"<table style='border-collapse:collapse'><tr><th>target ↓ / source →</th>{head}</tr>{body}</table>")


weather_ids = decode_ids(WEATHER_EN, 4)
src_tokens, tgt_tokens, weather_out = cross_attention(WEATHER_EN, weather_ids)
alignment = weather_out.decoder.cross_attentions[-1][0].mean(0).cpu()  # (nh, T, S) -> (T, S)
display(heatmap_html(alignment, tgt_tokens, src_tokens))
print("most attended:", "  ".join(f"{t}→{src_tokens[j]}" for t, j in zip(tgt_tokens, alignment.argmax(-1).tolist())))
assert alignment.shape == (len(tgt_tokens), len(src_tokens))
assert torch.allclose(alignment.sum(-1), torch.ones(len(tgt_tokens)), atol=1e-5)  # each row: a distribution

# %% [markdown]
# Padding never receives attention: translate two sentences of different lengths in one batch
# and look at the shorter one's padded source positions.

# %%
batch = tokenizer([WEATHER_EN, "Hello."], return_tensors="pt", padding=True).to(device)
with torch.no_grad():
    out = translator(batch["input_ids"], batch["attention_mask"],
                     decoder_input_ids=torch.full((2, 3), tokenizer.cls_token_id, device=device), output_attentions=True)
padded = batch["attention_mask"][1] == 0
assert padded.any() and all(w[1][:, :, padded].abs().max() == 0 for w in out.decoder.cross_attentions)
print(f"the second sentence has {int(padded.sum())} padded source positions; their attention weight is 0")

# %% [markdown]
# bertviz shows the decoder's two kinds of attention — causal self-attention and
# cross-attention; pick one in its drop-down menu (the encoder's self-attention looks like
# chapter 04's). It loads its JavaScript from the web, so it needs an internet connection in the
# browser. The explorer below it draws any layer and head of the cross-attention offline.

# %%
head_view(decoder_attention=[a.cpu() for a in weather_out.decoder.attentions],
          cross_attention=[a.cpu() for a in weather_out.decoder.cross_attentions],
          encoder_tokens=src_tokens, decoder_tokens=tokenizer.convert_ids_to_tokens(weather_ids[:-1]))

# %%
def show_cross(sentence: str = WEATHER_EN, layer: int = cfg.n_decoder_layers - 1, head: int = 0, average: bool = True):
    src, tgt, out = cross_attention(sentence, decode_ids(sentence, 4))
    w = out.decoder.cross_attentions[layer][0]  # (nh, T, S)
    print(f"layer {layer}, " + ("mean of heads" if average else f"head {head}"))
    display(heatmap_html(w.mean(0) if average else w[head], tgt, src))


widgets.interact(show_cross, sentence=widgets.Dropdown(options=[WEATHER_EN] + test_en[:5], description="sentence"),
                 layer=widgets.IntSlider(cfg.n_decoder_layers - 1, 0, cfg.n_decoder_layers - 1, description="layer"),
                 head=widgets.IntSlider(0, 0, cfg.n_heads - 1, description="head"),
                 average=widgets.Checkbox(True, description="average the heads"));

# %% [markdown]
# ## 6 · The documents' example
#
# Doc 002 §5.4 shows *"What is the weather like today?"* → *"今天天气怎么样？"*. Here is what
# the lab's translator writes, with each decoding method, and the sentence BLEU of each. (The
# sentence is one of TinyWorld's everyday templates, so it also occurs among the training
# pairs: this tests memory more than generalisation — the test split above measured that.)

# %%
in_training = sum(p["en"] == WEATHER_EN for p in pairs["train"]["translation"])
for beams in (1, 4):
    out_text = translate(translator, tokenizer, [WEATHER_EN], num_beams=beams)[0]
    print(f"num_beams={beams}: {WEATHER_EN} → {out_text}   (BLEU {M.corpus_bleu_zh([out_text], [WEATHER_ZH]):.1f})")
print(f"reference:   {WEATHER_ZH}; the pair occurs {in_training} time(s) in the training split")

# %% [markdown]
# ## Summary
#
# - An encoder–decoder reads the source with a bidirectional encoder and writes the target
#   with a causal decoder whose cross-attention, $\mathrm{softmax}(Q_{\text{dec}}K_{\text{enc}}^\top/
#   \sqrt{d_k})V_{\text{enc}}$, looks at the source; padding gets no weight.
# - Training is teacher forcing (read the target shifted right, predict it shifted left). A
#   warm start copies the pretrained encoder into both halves; only cross-attention is new, and
#   after the same number of steps the training loss is lower than from random weights.
# - Greedy search takes the best token at each step; beam search keeps several prefixes and on
#   average finds translations the model itself rates at least as high.
# - BLEU = brevity penalty × geometric mean of clipped 1- to 4-gram precisions, pooled over the
#   corpus; for Chinese, characters are the tokens.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell. Solutions: `notebooks/solutions/ch07.py`.
#
# **Exercise 1.** For the hypothesis and reference in `ch07.BLEU_PAIR`, compute the clipped
# **bigram** precision $p_2$ (Chinese characters are the tokens).

# %%
from labkit.exercises import ch07

print(ch07.BLEU_PAIR)
answer = None  # your code: a float
ch07.check_clipped_precision(answer)

# %% [markdown]
# **Exercise 2.** A system outputs `ch07.SHORT_PAIR[0]` for the reference `ch07.SHORT_PAIR[1]`.
# What is the brevity penalty?

# %%
print(ch07.SHORT_PAIR)
answer = None  # your code: a float
ch07.check_brevity_penalty(answer)

# %% [markdown]
# **Exercise 3.** One step of beam search with `num_beams = 2`: `ch07.beam_step_inputs()` gives
# the two beams' scores so far, $\log P(\text{prefix})$ (shape (2,)), and each beam's
# next-token log-probabilities (shape (2, V)). Which two (beam, token) extensions survive?
# Give them best first, as a list of tuples.

# %%
beam_scores, next_log_probs = ch07.beam_step_inputs()
answer = None  # your code: [(beam, token), (beam, token)]
ch07.check_beam_step(answer)
