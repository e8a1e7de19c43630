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
# # Chapter 08 · Generative pretraining (生成式预训练)
#
# Chapter 04 pretrained the mini-BERT by hiding words and guessing them back. The documents
# name a second pretraining game, and it is the one behind GPT-2, GPT-3 and today's chat models:
# read a text from left to right and, at every position, guess the next word (doc 000 §3.2,
# doc 004 §3.2). A model trained this way can do something the mini-BERT cannot: write. This
# chapter trains a mini-GPT on TinyWorld, makes it write, and measures what it learned, what it
# copied, and what its design choices cost.
#
# **Learning objectives.** After this chapter you can
# 1. write the next-token loss as the cross-entropy of shifted targets, and check it by hand
#    against the model's own loss on a TinyWorld sentence;
# 2. pretrain a small GPT and watch its loss fall from the level of a uniform guess;
# 3. generate text by greedy decoding and by sampling with temperature, top-k and top-p, and
#    say what each one does to the next-token distribution;
# 4. explain why a key–value cache gives exactly the same text with less work, and count the work;
# 5. read perplexity as an effective number of choices, and compare the model with simple baselines;
# 6. compare masked and causal pretraining on the same corpus, with the same tokenizer, on a task
#    suited to each;
# 7. measure how much of the generated text is copied from the training corpus;
# 8. weigh the lab's WordPiece tokenizer against GPT-2's byte-level BPE, with measured token counts.
#
# **Prerequisites.** Chapters 01 (the causal mask), 03 (the tokenizer), 04 (pretraining; its §8
# first contrasts next-token prediction with masked LM) and 07 (greedy decoding).
#
# **Estimated time:** about 90 minutes to read and do (the exercises and the open experiment
# included); the code runs in about 50 s at cpu scale with a build present.
#
# **Map to the source documents.**
#
# | section | documents |
# |---|---|
# | 1 · the next-token game | doc 000 §3.2 (step 3: pretraining predicts the next word or masked words); doc 004 §3.2 (step 2: the target is usually the next word); doc 003 §4.2.1 (its self-supervised loss $-\sum_i \log p(\hat y_i \mid x_{<i})$ conditions on the words before $i$: that is next-token prediction) |
# | 2 · pretraining live | doc 002 §3.2 (designing the pretraining task: language modelling or masked LM); doc 000 §3.3 (training cost) |
# | 3–4 · writing, and how to choose each word | doc 000 §3.4 and §6 (text generation, content creation); doc 002 §3.4; doc 004 §2.2 (a deployed model serves predictions or generations) and §3.4 |
# | 5 · the key–value cache | doc 002 FAQ Q3 and doc 003 §2.2.5 (inference efficiency) |
# | 6 · perplexity | doc 002 §4.2 (a probability over the vocabulary); chapter 04 §3 |
# | 7 · masked vs causal | doc 002 §3.2 and §4.1 (BERT = Transformer + masked LM); doc 000 §2.1 (GPT-3 and BERT as large language models) |
# | 8 · memorisation | doc 004 §8.3 (privacy leaks from training data); doc 002 FAQ Q5 |
# | 9 · the tokenizer | doc 000 §3.2 and doc 004 §3.2 (step 1: tokenisation) |
# | key works | GPT-2, *Language Models are Unsupervised Multitask Learners* (doc 003 §7.3); GPT-3, *Language Models are Few-Shot Learners* (doc 000 §7.1, §7.3; doc 004 §7.1, §7.3) |
#
# *Stored outputs: `LAB_SCALE=cpu`, with a cpu build present.*

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
import json
import math
import os
from dataclasses import replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import transformers
from IPython.display import display
from tokenizers import ByteLevelBPETokenizer

from labkit.build import SCALES, ensure_build
from labkit.causal import (CorpusIndex, decoding_positions, masked_vs_causal, positions_processed, split_sentences,
                           time_decoding)
from labkit.data import load_task
from labkit.data.pages import is_page
from labkit.folders import load_model
from labkit.gpt import GPT
from labkit.pretrain import evaluate_clm, pack_blocks, pretrain_clm
from labkit.sampling import SamplingConfig, generate, next_token_distribution
from labkit.training import seeded
from labkit.translate import join_cjk
from labkit.viz import LivePlot  # importing labkit.viz also makes Chinese render in plots

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # the sizes `labkit build` uses at this scale
DEMO_STEPS = {"ci": 120, "cpu": 120, "gpu": 600}[LAB_SCALE]  # steps of the live pretraining run in §2
plt.rcParams["figure.dpi"] = 80
pd.set_option("display.max_colwidth", 80)
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
BUILD = ensure_build(LAB_SCALE, progress=False)  # adds the mini-GPT to an older build if it is missing
REPORT = json.loads((BUILD / "report.json").read_text(encoding="utf-8"))
print(f"LAB_SCALE = {LAB_SCALE!r}; the build's mini-GPT: {REPORT['models']['text-generation']['parameters']:,} "
      f"parameters, {REPORT['models']['text-generation']['steps']} pretraining steps")

# %% [markdown]
# ## 1 · The next-token game
#
# A **causal language model (因果语言模型)** gives a probability to every text by taking it one
# token at a time:
#
# $$P(x_1, \dots, x_T) = \prod_{t=1}^{T} P(x_t \mid x_{<t}).$$
#
# Writing with it is **autoregressive (自回归)**: each new token is drawn from $P(\cdot \mid
# \text{everything so far})$ and then becomes part of the input for the next one. Training it is
# **next-token prediction (下一词预测)**: at every position $t$ the model outputs logits over the
# vocabulary, and the loss is the cross-entropy against the token that actually comes next,
#
# $$\mathcal{L} = -\frac{1}{T-1} \sum_{t=1}^{T-1} \log P(x_{t+1} \mid x_{\le t}).$$
#
# So the targets are the inputs **shifted by one**: no labels are written by anyone. The model is
# the lab's mini-GPT (`labkit.gpt.GPT`), a **decoder-only model (仅解码器模型)** with GPT-2's
# architecture: the decoder of chapter 07 without an encoder and without cross-attention, its
# self-attention behind the causal mask of chapter 01. `labkit build` pretrained one on
# TinyWorld's unlabelled corpus and saved it as `text-generation`; `load_model` opens it.
#
# Here is one validation sentence, the way the model reads it: `[CLS]` marks the start of a text,
# and each row is one prediction.

# %%
gpt, tokenizer = load_model(BUILD / "text-generation")  # labkit GPT (eval mode, CPU) and the lab's WordPiece tokenizer
V = len(tokenizer)
corpus = load_task("corpus", size=LAB_SCALE)
train_texts, val_texts = list(corpus["train"]["text"]), list(corpus["validation"]["text"])


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


sentence = next(s for doc in val_texts for s in split_sentences(doc)[0]
                if not is_chinese(s) and 8 <= len(tokenizer.tokenize(s)) <= 11)
ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(sentence, add_special_tokens=False)["input_ids"]]])  # (1, T)
T = ids.shape[1]
with torch.no_grad():
    out = gpt(ids, labels=ids)  # the model shifts the labels itself
log_probs = out.logits[0, :-1].log_softmax(-1)  # (T-1, V): positions 0 .. T-2
targets = ids[0, 1:]  # (T-1,): the token after each of them
nll = -log_probs[torch.arange(T - 1), targets]  # (T-1,): -log P(next token)
tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
table = pd.DataFrame({"has read up to": tokens[:-1], "must predict": tokens[1:],
                      "P(next token)": nll.neg().exp().numpy(), "−log P": nll.numpy()})
display(table.round(3))
print(f"loss by hand (mean of the last column): {nll.mean():.4f}; the model's own loss: {out.loss:.4f}")
assert torch.allclose(nll.mean(), out.loss, atol=1e-5)
assert len(table) == T - 1  # a text of T tokens gives T - 1 predictions
assert table["P(next token)"].iloc[0] < 0.01 and table["P(next token)"].iloc[-1] > 0.9  # free choice vs template

# %% [markdown]
# Every position is a training example, so one text of $T$ tokens trains $T-1$ predictions at
# once; masked LM (chapter 04) scores only the ~15% of tokens it hid. The hard rows are where
# the text makes a free choice: the first word after `[CLS]`, a person's name, a year. Where the
# template decides (after the year comes the full stop), the model is nearly sure.
#
# ## 2 · Pretraining a mini-GPT, live
#
# `labkit.pretrain.pretrain_clm` packs the corpus into blocks of 64 tokens (`[CLS] text [SEP]
# text [SEP] …`, as chapter 04 did), feeds them as both input and labels, and minimises the
# model's own next-token loss. Below, a fresh GPT of 64 dimensions and 2 layers trains for a
# short while; the curve redraws at each validation. First, what does an untrained model score?

# %%
val_blocks = pack_blocks(tokenizer, val_texts, SCALE.gpt_block_length)[:512]  # the build's validation blocks
demo_config = replace(SCALE.gpt, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_position=SCALE.gpt_block_length,
                      vocab_size=V, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                      pad_token_id=tokenizer.pad_token_id)
with seeded(0):
    demo = GPT(demo_config)
before = evaluate_clm(demo, val_blocks)
print(f"untrained: validation loss {before['loss']:.3f} vs ln|V| = {math.log(V):.3f}; "
      f"perplexity {before['perplexity']:,.0f} vs |V| = {V:,}")
assert abs(before["loss"] - math.log(V)) < 0.05 * math.log(V)  # as unsure as a uniform guess

# %%
demo_train = replace(SCALE.gpt_pretrain, steps=DEMO_STEPS, eval_every=DEMO_STEPS // 3, progress=False)
run = pretrain_clm(demo, tokenizer, train_texts, val_texts, demo_train, block_length=SCALE.gpt_block_length,
                   on_eval=LivePlot("next_token_accuracy"))

# %%
first, last = run.history.loss[0], float(np.mean(run.history.loss[-10:]))
built = REPORT["models"]["text-generation"]
print(f"{DEMO_STEPS} steps in {run.history.seconds:.0f}s: training loss {first:.2f} → {last:.2f}; validation "
      f"perplexity {before['perplexity']:,.0f} → {run.metrics['perplexity']:.1f}")
print(f"the build's GPT ({gpt.config.d_model} wide, {gpt.config.n_layers} layers, {built['steps']} steps): "
      f"validation perplexity {built['metrics']['perplexity']:.2f}, next-token accuracy "
      f"{built['metrics']['next_token_accuracy']:.2f}")
assert last < first - 1.0 and run.metrics["loss"] < before["loss"] - 1.0
assert run.metrics["perplexity"] < 100  # from thousands of choices to a few dozen
assert built["metrics"]["perplexity"] < run.metrics["perplexity"]  # trained longer (and, at cpu scale, larger)

# %% [markdown]
# Half a minute of training takes the model from thousands of equally likely choices per token
# to a few dozen (perplexity, §6, makes this precise); the build's GPT, trained longer (and at
# cpu scale twice as wide and twice as deep), goes much further. From here on the chapter uses
# the build's model.
#
# ## 3 · The model writes
#
# To write, give the model a prompt, take the distribution at the last position, choose a token,
# append it, and repeat until it writes `[SEP]` (the end of a text in training) or reaches a
# length limit. `labkit.sampling.generate` does this; the simplest choice is **greedy decoding
# (贪心解码)**: always the single most probable token (chapter 07 used it for translation).

# %%
def write(prompt: str, cfg: SamplingConfig, seed: int = 0) -> str:
    """The model's continuation of ``prompt`` (Chinese shown without the tokenizer's spaces)."""
    prompt_ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
    cfg = replace(cfg, eos_token_id=tokenizer.sep_token_id)
    out = generate(gpt, prompt_ids, cfg=cfg, generator=torch.Generator().manual_seed(seed),
                   pad_token_id=tokenizer.pad_token_id)
    return join_cjk(tokenizer.decode(out[0], skip_special_tokens=True))


GREEDY = SamplingConfig(max_new_tokens=32)
PROMPTS = ["the weather in", "chen wei works at", "the new phone", "今天", "她住在"]
for prompt in PROMPTS:
    print(f"{prompt!r:>22} → {write(prompt, GREEDY)}")

# %% [markdown]
# The sentences are TinyWorld's: weather reports, biographies, product news, in both languages,
# with the punctuation of each. Nobody told the model what a sentence is; predicting the next
# token well required it. Facts are another matter (chen wei's employer above is whatever the
# model found likely, not a fact it looked up); §8 comes back to this.
#
# ## 4 · How to choose the next token
#
# Greedy decoding is deterministic and often repetitive. **Sampling (采样)** draws the next token
# at random from the model's distribution instead, and three knobs reshape that distribution
# first:
#
# * **temperature (温度)** $\tau$: sample from $\mathrm{softmax}(z / \tau)$. $\tau < 1$ sharpens
#   the distribution toward greedy, $\tau > 1$ flattens it toward uniform;
# * **top-k sampling**（top-k 采样）: keep only the $k$ most probable tokens;
# * **nucleus sampling (核采样)**, or top-p: keep the fewest most probable tokens whose
#   probabilities add up to at least $p$. Where the model is sure, that is one or two tokens;
#   where many continuations fit, it is many.
#
# The filtered tokens get probability 0 and the rest are renormalised
# (`labkit.sampling.next_token_distribution`). Here are the strategies side by side.

# %%
strategies = {
    "greedy": GREEDY,
    "τ = 0.5": SamplingConfig(max_new_tokens=32, do_sample=True, temperature=0.5),
    "τ = 1.0": SamplingConfig(max_new_tokens=32, do_sample=True, temperature=1.0),
    "τ = 1.5": SamplingConfig(max_new_tokens=32, do_sample=True, temperature=1.5),
    "top-k, k = 10": SamplingConfig(max_new_tokens=32, do_sample=True, top_k=10),
    "top-p, p = 0.9": SamplingConfig(max_new_tokens=32, do_sample=True, top_p=0.9),
}
samples = pd.DataFrame({prompt: {name: write(prompt, cfg) for name, cfg in strategies.items()}
                        for prompt in ("the weather in", "她住在")})
display(samples)

# %%
assert write("the weather in", GREEDY) == samples.loc["greedy", "the weather in"]  # greedy: always the same text
tau1 = strategies["τ = 1.0"]
assert write("the weather in", tau1, seed=7) == write("the weather in", tau1, seed=7)  # one seed, one sample
assert len({write("the weather in", tau1, seed=s) for s in range(5)}) > 1  # other seeds, other samples
print("greedy is deterministic; a sample is fixed by its seed; different seeds write different texts")

# %% [markdown]
# At $\tau = 0.5$ the samples look like greedy output; at $\tau = 1.5$ they drift into word
# salad, because the flattened distribution gives the many unlikely tokens together a real
# chance. Top-k and top-p cut that tail off while keeping variety. (Every sampled row uses seed 0,
# so all draw the same random numbers; where a filter removes only tokens that were unlikely
# anyway, it picks the same words as plain sampling at $\tau = 1$.)
#
# Look at one next-token distribution to see why. The prompt is `她住在` (*she lives in*): many
# cities fit, so the model spreads its probability over their first characters. The plot on the
# right measures the spread by the **entropy (熵)** $H = -\sum_v P(v)\log_2 P(v)$, in bits: 0
# when one token has all the probability, $\log_2 |V|$ when all are equally likely.

# %%
def next_logits(prompt: str) -> torch.Tensor:
    """The model's logits (V,) for the token after ``prompt``."""
    prompt_ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        return gpt(prompt_ids).logits[0, -1]


def entropy_bits(probs: torch.Tensor) -> float:
    p = probs[probs > 0]
    return float(-(p * p.log2()).sum())


logits = next_logits("她住在")
top = logits.topk(12).indices  # the 12 tokens most probable at τ = 1
labels = tokenizer.convert_ids_to_tokens(top.tolist())
taus = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
entropies = [entropy_bits(next_token_distribution(logits[None], SamplingConfig(do_sample=True, temperature=t))[0])
             for t in taus]
shown = {tau: next_token_distribution(logits[None], SamplingConfig(do_sample=True, temperature=tau))[0][top]
         for tau in (0.5, 1.0, 1.5)}  # the 12 tokens' probabilities at three temperatures
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.1]})
for ax, (tau, probs) in zip(axes, shown.items()):
    ax.bar(range(12), probs.numpy(), color="tab:blue")
    ax.set_xticks(range(12), labels)
    ax.set_ylim(0, 1.1 * float(shown[0.5].max()))
    ax.set_title(f"她住在 → ?   τ = {tau}")
axes[0].set_ylabel("probability")
axes[3].plot(taus, entropies, "o-")
axes[3].axhline(math.log2(V), ls="--", color="gray", label="uniform: log₂|V|")
axes[3].set_xlabel("temperature τ")
axes[3].set_ylabel("entropy (bits)")
axes[3].legend()
fig.tight_layout()
plt.show()
print("entropy in bits at τ =", dict(zip(taus, np.round(entropies, 2))))
assert all(a < b for a, b in zip(entropies, entropies[1:]))  # lower temperature, lower entropy

# %% [markdown]
# Now the filters. Top-k keeps exactly $k$ tokens; top-p keeps the smallest set of most probable
# tokens that reaches $p$, so its size depends on how sure the model is. Both are checked below
# on the same distribution.

# %%
k, p = 5, 0.9
topk_probs = next_token_distribution(logits[None], SamplingConfig(do_sample=True, top_k=k))[0]
topp_probs = next_token_distribution(logits[None], SamplingConfig(do_sample=True, top_p=p))[0]
assert int((topk_probs > 0).sum()) == k  # exactly k tokens can still be drawn
sorted_probs = logits.softmax(-1).sort(descending=True).values  # τ = 1, most probable first
m = int((topp_probs > 0).sum())
assert sorted_probs[:m].sum() >= p and (m == 1 or sorted_probs[:m - 1].sum() < p)  # the smallest set reaching p
nucleus = SamplingConfig(do_sample=True, top_p=p)
kept = {prompt: int((next_token_distribution(next_logits(prompt)[None], nucleus) > 0).sum())
        for prompt in ("where can i buy", "i really", "今天天气", "她住在", "the")}
for prompt, n in kept.items():
    print(f"top-p with p = {p} after {prompt!r}: {n} tokens kept")
assert kept["where can i buy"] < kept["the"]

# %% [markdown]
# After `where can i buy` the model is fairly sure the next word is *the* or *a*, and top-p keeps
# few tokens; after `the`, at the start of a text, many words fit, and it keeps many. That is
# top-p's advantage over a fixed $k$: it follows the model's own certainty.
#
# Try the knobs yourself: the sliders redraw the distribution (grey: the model's own, at $\tau =
# 1$; blue: what sampling draws from) and write one sample with the chosen settings.

# %%
def explore(prompt: str, temperature: float, top_k: int, top_p: float, seed: int) -> None:
    cfg = SamplingConfig(max_new_tokens=24, do_sample=True, temperature=temperature,
                         top_k=top_k or None, top_p=top_p if top_p < 1 else None)
    z = next_logits(prompt)
    raw, probs = z.softmax(-1), next_token_distribution(z[None], cfg)[0]
    shown = raw.topk(15).indices
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.bar(np.arange(15) - 0.2, raw[shown].numpy(), width=0.4, color="lightgray", label="model, τ = 1")
    ax.bar(np.arange(15) + 0.2, probs[shown].numpy(), width=0.4, color="tab:blue", label="sampled from")
    ax.set_xticks(range(15), tokenizer.convert_ids_to_tokens(shown.tolist()))
    ax.set_title(f"{prompt} → ?   ({int((probs > 0).sum())} tokens can be drawn; "
                 f"entropy {entropy_bits(probs):.2f} bits)")
    ax.legend()
    plt.show()
    print("sample:", write(prompt, cfg, seed))


controls = {"prompt": widgets.Text("她住在", description="prompt"),
            "temperature": widgets.FloatSlider(1.0, min=0.1, max=3.0, step=0.1, description="temperature"),
            "top_k": widgets.IntSlider(0, min=0, max=50, description="top-k (0: off)"),
            "top_p": widgets.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p (1: off)"),
            "seed": widgets.IntSlider(0, min=0, max=20, description="seed")}
display(widgets.VBox([widgets.HBox([controls["prompt"], controls["seed"]]),
                      widgets.HBox([controls["temperature"], controls["top_k"], controls["top_p"]]),
                      widgets.interactive_output(explore, controls)]))

# %% [markdown]
# ## 5 · Why a key–value cache gives the same text with less work
#
# Writing $n$ tokens runs the model $n$ times. Done naively, step $s$ runs it on the whole text so
# far, the prompt and the $s$ tokens written, although only the last position's output is
# used. Under the causal mask, though, position $i$ attends only to positions $\le i$, so its keys
# and values in every layer depend on tokens $\le i$ alone: writing more tokens never changes
# them. A **key-value cache (键值缓存)** keeps each layer's keys and values of the past
# positions; each new step runs the newest token only, and its query attends to the cached keys
# and values plus its own. (A bidirectional encoder has no such shortcut: chapter 04 §8 showed
# that changing one token changes every position of a BERT.)
#
# First the premise, checked: the cached keys and values of the first 20 positions are the same
# whether the model has read 20 tokens or the whole text.

# %%
doc_ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(val_texts[0], add_special_tokens=False)["input_ids"][:40]]])
with torch.no_grad():
    short = gpt(doc_ids[:, :20], use_cache=True).cache  # keys and values of 20 positions
    long = gpt(doc_ids, use_cache=True).cache  # of all of them
for layer in range(gpt.config.n_layers):
    assert torch.allclose(short.keys[layer], long.keys[layer][:, :, :20], atol=1e-5)
    assert torch.allclose(short.values[layer], long.values[layer][:, :, :20], atol=1e-5)
print(f"keys and values per layer: {tuple(long.keys[0].shape)} = (B, heads, positions, head size); "
      f"the first 20 positions' are unchanged by the {doc_ids.shape[1] - 20} tokens after them")

# %%
P0, N_NEW = 4, 8
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
for ax, cached in zip(axes, (False, True)):
    grid = np.zeros((N_NEW, P0 + N_NEW))
    for step in range(N_NEW):
        start = 0 if (not cached or step == 0) else P0 + step - 1
        grid[step, start:P0 + step] = 1  # positions run through the model at this step
        grid[step, :start] = 0.35  # read from the cache
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("position (the first 4: the prompt)")
    ax.set_title(("with the cache: dark = computed, light = read from the cache" if cached
                  else "without: every step recomputes the whole prefix"), fontsize=10)
axes[0].set_ylabel("generation step")
plt.show()

# %% [markdown]
# Now the real thing: a batch of 8 copies of a 33-token prompt, 32 new tokens each, greedy, with
# and without the cache. `labkit.causal.time_decoding` times both and returns what each wrote;
# `positions_processed` counts the token positions the model was run on, which
# `decoding_positions` predicts in closed form.

# %%
prompt_batch = doc_ids[:, :33].repeat(8, 1)  # (8, 33)
cfg = SamplingConfig(max_new_tokens=32)
timing = time_decoding(gpt, prompt_batch, cfg, repeats=2)
assert torch.equal(timing.cached_tokens, timing.uncached_tokens)  # exactly the same text
work = {use: positions_processed(gpt, prompt_batch, replace(cfg, use_cache=use)) for use in (True, False)}
for use in (True, False):
    assert work[use] == 8 * decoding_positions(33, 32, use_cache=use)
print(f"positions run through the model: {work[False]:,} without the cache, {work[True]:,} with it "
      f"({work[False] / work[True]:.0f}x fewer)")
print(f"time: {1000 * timing.uncached_seconds:.0f} ms without, {1000 * timing.cached_seconds:.0f} ms with the cache "
      f"(ratio {timing.ratio:.1f}x on this machine)")
assert timing.ratio < work[False] / work[True]  # time saved < positions saved

# %% [markdown]
# The token counts are exact: without the cache, step $s$ runs $33 + s$ positions, about $n^2/2$
# in all for long outputs; with it, the prompt once and then one position per step. The time
# saved is smaller than the count suggests, because attention still reads every cached key and
# value, and a small model on a CPU spends much of its time on overheads that do not depend on the
# length. The price of the cache is memory: for every layer, two tensors of (batch × heads ×
# positions × head size) numbers that grow with every token. For large models serving long
# texts, that memory, not arithmetic, is often what limits how many users one machine can serve.
#
# ## 6 · Perplexity: how many choices the model still has
#
# The **perplexity (困惑度)** of a model on a text is $e^{\mathcal{L}}$, $e$ to the mean next-token
# loss. If a model spread its probability evenly over $k$ tokens at every step, it would lose
# $\ln k$ each time and its perplexity would be exactly $k$. So perplexity reads as an effective
# number of equally likely choices per token: 1 for a model that is always sure and right, $|V|$
# for a uniform guess. Below, the build's GPT is measured on the validation blocks again, and set
# against two baselines: the uniform guess, and a model that knows only how often each token occurs
# (a unigram model, counted on the training blocks).

# %%
uniform = torch.zeros(1, 1, 7)  # logits that say nothing: uniform over 7 tokens
print(f"a uniform guess among 7 tokens: perplexity {math.exp(-uniform.log_softmax(-1)[0, 0, 0]):.4f}")
assert abs(math.exp(-uniform.log_softmax(-1)[0, 0, 0]) - 7) < 1e-4

measured = evaluate_clm(gpt, val_blocks)
train_blocks = pack_blocks(tokenizer, train_texts, SCALE.gpt_block_length)
counts = torch.bincount(train_blocks[:, 1:].flatten(), minlength=V).double() + 1  # +1: no zero probabilities
unigram_nll = -(counts / counts.sum()).log()[val_blocks[:, 1:].flatten()].mean().item()
ladder = {"uniform guess (|V|)": float(V), "unigram: token frequencies only": math.exp(unigram_nll),
          "the build's mini-GPT": measured["perplexity"]}
display(pd.Series(ladder, name="validation perplexity").round(2).to_frame())
print(f"the build's report: {built['metrics']['perplexity']:.4f}; measured again here: {measured['perplexity']:.4f}")
assert abs(measured["perplexity"] - built["metrics"]["perplexity"]) < 1e-3 * built["metrics"]["perplexity"]
assert ladder["the build's mini-GPT"] < ladder["unigram: token frequencies only"] / 5 < V / 5

# %% [markdown]
# Knowing word frequencies alone already cuts the choices from thousands to a few hundred; reading
# the context cuts them to a handful. Two cautions. Perplexities are comparable only on the same
# text with the same tokenizer: a tokenizer that cuts text into more, smaller pieces makes each
# prediction easier and the perplexity lower. And a low perplexity says the model predicts
# TinyWorld's text well, not that what it writes is true.
#
# ## 7 · Masked or causal: the same corpus, two objectives
#
# The mini-BERT of chapter 04 and this GPT read the same corpus with the same tokenizer (the
# mini-BERT without the corpus's pages of lists, which chapter 09 explains, so the texts below are
# documents only); they differ in the objective (and in size: the GPT is larger, the BERT trained
# longer). Which one is
# better depends on the question. `labkit.causal.masked_vs_causal` hides one word piece in the
# middle of each validation text and asks both models two questions about it:
#
# * **cloze**: the words on both sides are given, as in a fill-in-the-blank test. The masked LM
#   reads `left [MASK] right`; the GPT reads left to right, so it can only use the left part;
# * **next word**: only the words to the left are given, as when writing. The GPT does what it
#   was trained for; the masked LM reads `left [MASK] [SEP]`.
#
# (A GPT *can* use the right-hand side, by scoring the whole text once for every candidate word,
# $|V|$ forward passes per blank; the comparison below gives each model one forward pass.)

# %%
mlm, _ = load_model(BUILD / "fill-mask")  # the mini-BERT, same tokenizer
val_documents = [t for t in val_texts if not is_page(t)]  # the masked LM never trained on the corpus's pages
duel = masked_vs_causal(mlm, gpt, tokenizer, val_documents, n_items=300)
scores = pd.DataFrame(duel.accuracy).T
fig, ax = plt.subplots(figsize=(6, 3))
scores.plot.bar(ax=ax, rot=0, color=["tab:orange", "tab:blue"])
ax.set_ylabel("accuracy (top guess)")
ax.set_ylim(0, 1)
ax.set_title(f"one hidden word piece in {len(duel.items)} validation texts")
plt.show()
display(scores.round(3))
rows = [{"left (end)": join_cjk(" ".join(it.left[-6:])), "hidden": it.target,
         "right (start)": join_cjk(" ".join(it.right[:4])), "masked LM, both sides": it.masked_both_sides,
         "masked LM, left only": it.masked_left_only, "GPT": it.causal}
        for it in duel.items[:8]]
display(pd.DataFrame(rows))

# %%
acc = duel.accuracy
assert acc["next word (left only)"]["GPT"] > acc["next word (left only)"]["masked LM"] + 0.1  # writing: the GPT wins
assert acc["cloze (both sides)"]["masked LM"] > acc["next word (left only)"]["masked LM"] + 0.05  # the right side helps
if LAB_SCALE != "ci":  # the ci build's mini-BERT is too briefly trained to beat anything (masked accuracy about 0.2)
    assert acc["cloze (both sides)"]["masked LM"] > acc["cloze (both sides)"]["GPT"]  # filling in: the masked LM wins
print("masked LM's accuracy in pretraining (the build's report):",
      round(REPORT["models"]["fill-mask"]["metrics"]["masked_accuracy"], 3))

# %% [markdown]
# Each objective wins its own game. With the words on both sides, the masked LM finds the hidden
# piece more often than the GPT, which must guess from the left alone; asked for the next word,
# the masked LM falls apart: it never learned to predict a word with nothing after it, and a
# `[MASK]` just before `[SEP]` looks to it like the end of a text. This is why the two families
# went different ways (doc 002 §3.2, §4.1): BERT-style encoders for *understanding* tasks, where
# the whole input is given (classification, tagging, extractive QA: chapters 05 and 06), and
# GPT-style decoders for *generation*. GPT-3 then showed that a causal model large enough can also
# do many understanding tasks by writing the answer after a few examples in its prompt (its
# title: *Language Models are Few-Shot Learners*); chapter 09 measures how far a model the size
# of this one gets when its corpus is written for it.
#
# (At ci scale the test build's mini-BERT is trained too briefly to win even the cloze; the
# stored outputs come from the cpu build.)
#
# ## 8 · Memorisation or generalisation?
#
# A model that has seen a sentence often enough can write it back word for word:
# **memorisation (记忆)**. That is harmless for TinyWorld's weather reports and harmful for a
# phone number or an address that happens to be in the training data (doc 004 §8.3: privacy leaks).
# The opposite, writing sentences that were never in the data, is what we want from
# **generalisation (泛化能力)**, but a new sentence is not a true one.
#
# First, how much could this model have memorised? Count how many tokens it saw in pretraining
# against the size of the corpus.

# %%
seen = built["steps"] * SCALE.gpt_pretrain.batch_size * SCALE.gpt_block_length
print(f"training corpus: {train_blocks.numel():,} tokens; seen in pretraining: {seen:,} tokens "
      f"= {seen / train_blocks.numel():.1f} passes over the corpus")
assert seen / train_blocks.numel() < 3

# %% [markdown]
# Now measure. `labkit.causal.CorpusIndex` holds every sentence of the training corpus,
# normalised (lower case, no punctuation, single spaces); a generated sentence counts as
# **copied** if its normalised form is one of them. Only complete sentences (ending in `. ! ? ;`
# or `。！？；`) of at least 4 words or Chinese characters count: shorter ones ("she laughed.") are
# too easy to hit by chance, and the unfinished end of a text is not a sentence.
#
# TinyWorld is written from templates, so even *new* text repeats old sentences. The fair
# baseline is therefore the validation corpus: real TinyWorld text the model never saw. The model
# writes 48 texts from `[CLS]` alone, sampled at two temperatures.

# %%
index = CorpusIndex(train_texts)
baseline = index.copied_share(val_texts)
start = torch.full((48, 1), tokenizer.cls_token_id)  # 48 texts, each from [CLS] alone
written, copied = {}, {}
for tau in (0.3, 1.0):
    cfg = SamplingConfig(max_new_tokens=64, do_sample=True, temperature=tau, eos_token_id=tokenizer.sep_token_id)
    out = generate(gpt, start, cfg=cfg, generator=torch.Generator().manual_seed(0), pad_token_id=tokenizer.pad_token_id)
    written[tau] = [join_cjk(tokenizer.decode(row, skip_special_tokens=True)) for row in out]
    copied[tau] = index.copied_share(written[tau])
print(f"{len(index):,} distinct sentences in the training corpus")
print(f"validation texts (never trained on): {baseline:.0%} of their sentences occur in the training corpus")
for tau in copied:
    print(f"sampled at τ = {tau}: {copied[tau]:.0%} of {len(index.check(written[tau]))} sentences are copies")
assert copied[1.0] < baseline  # at τ = 1 the model copies less than TinyWorld itself repeats
if LAB_SCALE != "ci":  # the ci build's model copies almost nothing at any temperature
    assert copied[0.3] > 2 * copied[1.0]  # a colder temperature copies more

# %%
checks = index.check(written[0.3] + written[1.0])
example_copy = next((c.sentence for c in checks if c.copied), None)
novel = [c.sentence for c in checks if not c.copied]
print("copied:", example_copy or "(none)")
print("new:")
for s in novel[:6]:
    print("  ", s)
assert novel  # the model writes sentences that are in no training document

# %% [markdown]
# Three things to take from this. First, most of what the model writes is *new*: it recombines
# the templates and names it learned rather than replaying documents, and at $\tau = 1$ it
# copies less than TinyWorld's own validation text repeats. It has seen each training text only
# a few times at most (the passes printed above), too few to learn it by heart. Second, a
# colder temperature copies more, because the most probable path through the
# model is the most frequent sentence; greedy decoding is memorisation's best friend. Third, new
# is not right: read the new sentences above. Many are fluent TinyWorld and some are nonsense;
# facts about people and companies get mixed up. Large models do the same with more confidence,
# which is called **hallucination (幻觉)**. And they do memorise: larger models, data seen more
# often and documents repeated in the corpus all raise the chance of verbatim copies, which is why
# duplicates and personal data are removed from pretraining corpora.
#
# ## 9 · The tokenizer: WordPiece here, byte-level BPE in GPT-2
#
# This mini-GPT uses the lab's WordPiece tokenizer, the mini-BERT's, on purpose: with the same
# vocabulary and the same targets, §7's comparison differs only in the objective. GPT-2 made a
# different choice, **byte-pair encoding (字节对编码)** over bytes, byte-level BPE（字节级 BPE）:
# start from the 256 possible bytes of UTF-8 and merge the most frequent adjacent pairs into new
# tokens, as WordPiece merges characters. Since every string is a sequence of bytes, nothing is
# ever unknown. But a Chinese character is 3 bytes in UTF-8, so a character that did not become a
# token of its own costs 2 or 3 tokens.
#
# To measure the difference on the same data, train a byte-level BPE with the `tokenizers`
# library on TinyWorld's training corpus, with the same vocabulary size as the lab's tokenizer.

# %%
bpe = ByteLevelBPETokenizer()
bpe.train_from_iterator(train_texts, vocab_size=V, min_frequency=2, show_progress=False)
print(f"byte-level BPE vocabulary: {bpe.get_vocab_size():,} (WordPiece: {V:,}); '今' in UTF-8: {'今'.encode()}")
cost = {}
by_language = {"Chinese": [d for d in val_texts if is_chinese(d)],
               "English": [d for d in val_texts if not is_chinese(d)]}
for language, docs in by_language.items():
    cost[language] = {"characters": np.mean([len(d) for d in docs]),
                      "UTF-8 bytes": np.mean([len(d.encode()) for d in docs]),
                      "WordPiece tokens": np.mean([len(tokenizer.tokenize(d)) for d in docs]),
                      "byte-level BPE tokens": np.mean([len(bpe.encode(d).ids) for d in docs])}
display(pd.DataFrame(cost).T.round(1))
wordpiece_unk = np.mean([t == tokenizer.unk_token for d in val_texts for t in tokenizer.tokenize(d)])
print(f"[UNK] share of WordPiece tokens on TinyWorld's validation text: {wordpiece_unk:.4f}")
assert cost["Chinese"]["byte-level BPE tokens"] < cost["Chinese"]["WordPiece tokens"]
assert wordpiece_unk < 0.001

# %% [markdown]
# Inside TinyWorld, byte-level BPE is *cheaper* for Chinese: WordPiece splits Chinese into single
# characters before it merges anything, while BPE merges frequent strings of several characters
# (TinyWorld repeats its phrases a lot) into single tokens. Fewer tokens per text means a longer
# text fits in the same context and generation takes fewer steps. Now step outside TinyWorld:
# everyday Chinese with characters the corpus never used, and an emoji.

# %%
outside = ["我想吃一碗热腾腾的牛肉面。", "猫咪在窗台上晒太阳。", "naïve café 😀"]
seen_chars = set("".join(train_texts))
for text in outside:
    print(text)
    print("   WordPiece:     ", tokenizer.tokenize(text))
    print("   byte-level BPE:", [bpe.decode([i]) for i in bpe.encode(text).ids])
unseen = sorted({c for text in outside for c in text if is_chinese(c) and c not in seen_chars})
per_char = {c: len(bpe.encode(c).ids) for c in unseen}
print(f"{len(unseen)} Chinese characters TinyWorld never uses; BPE tokens for each:", per_char)
assert all(tokenizer.tokenize(c) == [tokenizer.unk_token] for c in unseen)  # WordPiece: unknown
assert all(n >= 2 for n in per_char.values())  # byte-level BPE: spelled from 2-3 byte tokens
assert all(bpe.decode(bpe.encode(text).ids) == text for text in outside)  # nothing is lost
assert any(tokenizer.unk_token in tokenizer.tokenize(text) for text in outside)  # WordPiece loses characters

# %% [markdown]
# WordPiece turns every unseen character into `[UNK]`: the model cannot see which character
# was there, and can never write it. Byte-level BPE keeps everything (decoding gives the text
# back exactly) but spells an unseen character from 2 or 3 byte tokens; a single such token is
# not even a whole character (the `�` above). GPT-2's own BPE was learned mostly from English web
# pages, so many Chinese characters get the same treatment there.
#
# So the choice is a trade-off. For a model of the open world, byte-level BPE's guarantee that
# every input can be read and every output written is worth the extra tokens; that is why GPT-2
# and most later GPTs use it. For this lab, inside a closed world where `[UNK]` almost never
# occurs, sharing one tokenizer between the mini-BERT and the mini-GPT is worth more: it makes the
# masked-vs-causal comparison fair, gives one Chinese character per token (as in the cloze table
# of §7 and the plots of §4), and lets perplexities be compared across the two models' pieces.
#
# ## Summary
#
# - Generative pretraining is next-token prediction: the loss is the cross-entropy of every
#   position's logits against the token after it, so the labels are the text shifted by one, and
#   every position trains. A causal mask keeps each position from seeing the future.
# - A fresh model starts at the uniform guess (perplexity $|V|$); pretraining takes it to a
#   handful of effective choices per token, far below what token frequencies alone give.
# - Writing is a loop: distribution, choice, append. Greedy is deterministic; temperature
#   sharpens or flattens the distribution (lower temperature, lower entropy); top-k keeps $k$
#   tokens, top-p the smallest set reaching $p$.
# - Past keys and values never change under the causal mask, so a key–value cache writes exactly
#   the same tokens while running one position per step instead of the whole prefix.
# - Masked LM wins the cloze, the GPT wins the next word: understanding vs generation.
# - The mini-GPT mostly writes new sentences, copying less than TinyWorld repeats itself; a
#   colder temperature copies more. New sentences can be false.
# - Tokenizers trade coverage against length: WordPiece gives unseen characters up as `[UNK]`,
#   byte-level BPE never does but spends several tokens on each of them.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell; a wrong answer shows a hint, and each
# further try a stronger one. Every exercise cell runs on its own. Solutions:
# `notebooks/solutions/ch08.py`.
#
# **Exercise 1 (main idea: the next-token loss).** `ch08.loss_inputs()` gives the logits of shape
# (1, T, V) a model produced for the sequence `ids` of shape (1, T). Compute the model's
# next-token loss on it, as §1 defines it, from these two tensors alone.

# %% tags=["exercise"]
import torch

from labkit.exercises import ch08

logits, ids = ch08.loss_inputs()  # (1, 6, 5) and (1, 6)
print(ids)
answer = None  # your code: a float (or a 0-dimensional tensor)
ch08.check_next_token_loss(answer)

# %% [markdown]
# **Exercise 2 (main idea: what nucleus sampling keeps).** `ch08.NEXT_WORDS` is a model's
# distribution over six candidate next words. Which words can top-p sampling with
# $p$ = `ch08.TOP_P` still draw? Then think: with the same $p$, would a flatter distribution keep
# more words or fewer, and why is that an advantage over top-k?

# %% tags=["exercise"]
from labkit.exercises import ch08

print(ch08.NEXT_WORDS, "p =", ch08.TOP_P)
answer = None  # your code: a set of words
ch08.check_top_p_keep(answer)

# %% [markdown]
# **Exercise 3 (perplexity).** `ch08.nll_inputs()` holds the negative log-probabilities (in nats)
# a model gave to the 8 tokens of a sentence. What is its perplexity on the sentence? Read your
# answer as §6 does: among how many equally likely tokens was the model choosing, on average?

# %% tags=["exercise"]
from labkit.exercises import ch08

nll = ch08.nll_inputs()
print(nll)
answer = None  # your code: a float
ch08.check_perplexity(answer)

# %% [markdown]
# **Exercise 4 (the key–value cache).** A prompt of `ch08.PROMPT_LENGTH` tokens is continued by
# `ch08.NEW_TOKENS` new tokens, one row, no early stop. How many token positions does the model
# run on without a cache, and how many with one? (`labkit.causal.positions_processed` measures it,
# if you want to check your reasoning on a real model afterwards.)

# %% tags=["exercise"]
from labkit.exercises import ch08

print("prompt:", ch08.PROMPT_LENGTH, "tokens; new tokens:", ch08.NEW_TOKENS)
answer = None  # your code: (positions without the cache, positions with the cache)
ch08.check_cache_positions(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** How does the temperature trade copying against variety and sense?
#
# - **Change:** the sampling temperature, from 0.3 to 2.0 (at least five values); optionally add
#   top-p = 0.9 at each temperature.
# - **Measure:** for each setting, 48 texts written from `[CLS]` (the starter cell below), their
#   copied share with `labkit.causal.CorpusIndex(...).copied_share`, the share of distinct
#   sentences among the ones it counts (`index.check`), and the share of sentences you judge
#   to be well-formed TinyWorld on a sample of 10.
# - **A good answer** shows a table or plot of the three numbers against the temperature, finds
#   the temperature at which copying falls below the validation baseline of §8, explains the
#   trend at both ends (cold: the most probable path is a frequent training sentence, repeated;
#   hot: the flattened tail gives word salad), and recommends a setting for a TinyWorld story
#   writer with a reason.

# %% tags=["experiment"]
import os

import torch

from labkit.build import ensure_build
from labkit.causal import CorpusIndex
from labkit.data import load_task
from labkit.folders import load_model
from labkit.sampling import SamplingConfig, generate
from labkit.translate import join_cjk

scale = os.environ.get("LAB_SCALE", "cpu")
model, tok = load_model(ensure_build(scale, progress=False) / "text-generation")
index = CorpusIndex(load_task("corpus", size=scale)["train"]["text"])
for tau in (0.5, 1.0, 1.5):  # your temperatures
    cfg = SamplingConfig(max_new_tokens=64, do_sample=True, temperature=tau, eos_token_id=tok.sep_token_id)
    out = generate(model, torch.full((48, 1), tok.cls_token_id), cfg=cfg, generator=torch.Generator().manual_seed(0),
                   pad_token_id=tok.pad_token_id)
    texts = [join_cjk(tok.decode(row, skip_special_tokens=True)) for row in out]
    sentences = [c.sentence for c in index.check(texts)]
    print(f"τ = {tau}: copied {index.copied_share(texts):.0%}, distinct {len(set(sentences)) / len(sentences):.0%} "
          f"of {len(sentences)} sentences; e.g. {sentences[0]!r}")

# %% [markdown] tags=["teacher"]
# **Notes for teachers.** Allow about 90 minutes: 35 for §1–§4 (the loss table, the live run,
# the decoding knobs: let students play with the sliders and predict the bar chart before moving
# one), 25 for §5–§7, 15 for §8–§9, and the rest for the exercises. Exercises 1 and 2 carry the
# chapter's main ideas.
#
# - *Misconception:* "the GPT is told where sentences end." §1's table shows the only signal is
#   the next token; punctuation and `[SEP]` are learned like any other token.
# - *Misconception:* "the cache is an approximation." §5 checks the premise (past keys and values
#   do not change) and the result (identical tokens); it is exact because of the causal mask, and
#   impossible for a bidirectional encoder.
# - *Misconception:* "low perplexity means the model tells the truth." §8's new sentences are
#   fluent and often false.
# - *Misconception:* "masked LMs are just worse GPTs." §7 is the counterexample: each wins its own
#   task. A good class question: which one would you pick for chapter 06's QA, and why?
# - For the open experiment, give each group two temperatures and pool the results in one table
#   on the board; the copied share usually falls steeply between 0.5 and 1.0.
