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
# # Chapter 04 · Pretraining (预训练)
#
# A foundation model gets its knowledge of language before it ever sees a labelled example.
# It reads a large amount of raw text and plays a guessing game with itself: hide some words,
# predict them back. Nobody writes answers — the text is its own answer key. This is
# **self-supervised learning (自监督学习)**, and the version BERT plays is the
# **masked language model (掩码语言模型)**, MLM for short.
#
# **Learning objectives.** After this chapter you can
# 1. turn unlabelled text into training examples: pack it into blocks and corrupt them with
#    BERT's 80/10/10 rule, measure that the rule does what it says, and explain *why* a chosen
#    word is not always replaced by `[MASK]`;
# 2. write the masked-LM probability $P(w_i \mid x)$ as a softmax over the vocabulary and the
#    loss as the mean negative log-probability of the hidden words — and check both against
#    the model's own numbers;
# 3. pretrain the lab's mini-BERT and watch its loss fall from the level of pure guessing;
# 4. probe what pretraining taught with fill-mask queries, and say which words context can
#    give away and which it cannot;
# 5. explain BERT's second objective, next-sentence prediction, why it is what trains
#    `[CLS]`, and how it can be solved by a shortcut;
# 6. contrast the masked objective with next-token prediction (GPT's objective) and its
#    causal mask;
# 7. save the model in Hugging Face format and open it with `transformers.pipeline`.
#
# **Prerequisites.** Chapters 01–03 (self-attention, the mini-Transformer, the tokenizer).
#
# **Estimated time:** about 90 minutes to read and do (the exercises and the open experiment
# included); the code runs in about 80 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Source documents.** doc 000 §3.2 (step 3: pretraining predicts the next word or masked
# words); doc 002 §3.2 (designing the pretraining task: language modelling, masked language
# model), §4.1 (BERT = Transformer + masked language model), §4.2 ($P(w_i \mid x)$ as a
# softmax over the vocabulary); doc 003 §2.2.1 (self-supervised learning → pretraining),
# §3.1 and §4.1–4.2.1 (the self-supervised loss); doc 001 §4.2 (each layer refines the last,
# $h^{(l)} = \mathrm{Transformer}(h^{(l-1)})$).
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
import tempfile
from dataclasses import replace
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import transformers
from IPython.display import display

from labkit.attention import causal_mask
from labkit.build import SCALES, default_output_dir, ensure_pretrained
from labkit.data.pages import is_page
from labkit.data import load_task
from labkit.env import best_device
from labkit.folders import save_model
from labkit.masking import IGNORE_INDEX, mask_tokens
from labkit.nsp import make_pairs
from labkit.objectives import MaskedWords
from labkit.pretrain import PretrainConfig, evaluate_mlm, evaluate_nsp, mlm_loss, pack_blocks, pretrain_clm, pretrain_mlm
from labkit.training import seed_everything
from labkit.transformer import CausalLM, MaskedLM, PreTrainingModel
from labkit.viz import LivePlot, attention_explorer, bertviz_view, encoder_attentions

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # the model and training sizes `labkit build` uses at this scale
DEMO_STEPS = {"ci": 60, "cpu": 60, "gpu": 400}[LAB_SCALE]  # steps of the from-scratch demos in §4 and §8
BUILD = default_output_dir(LAB_SCALE)  # where `labkit build` saved its models and report.json
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# ## 1 · Text that labels itself
#
# The pretraining data is TinyWorld's unlabelled corpus (chapter 03): English and Chinese
# documents — biographies, news, reviews, short stories, everyday sentences. `ensure_pretrained` returns the
# lab's pretrained mini-BERT and its tokenizer, reusing the model `labkit build` saved (or
# pretraining one now if there is none yet).

# %%
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
mlm = mlm.to(device).eval()
REPORT = json.loads((BUILD / "report.json").read_text(encoding="utf-8"))  # what `labkit build` measured
V = len(tokenizer)
corpus = load_task("corpus", size=LAB_SCALE)
train_texts, val_texts = list(corpus["train"]["text"]), list(corpus["validation"]["text"])
print(f"{len(train_texts):,} training documents, {len(val_texts):,} validation documents, vocabulary |V| = {V:,}")
for text in train_texts[:2]:
    print("·", text[:160])

# %% [markdown]
# Documents have all sorts of lengths; the model wants equal-length rows. `pack_blocks`
# tokenises every document, joins them into one stream separated by `[SEP]`, and cuts the
# stream into blocks of `block_length` tokens, each framed as `[CLS] … [SEP]`. No token is
# wasted on padding. (`labkit build` lays its rows out the other way, `pack_documents`: one
# document per row, padded, so that a masked word only ever sees its own document. Chapter 05
# §4 shows why that matters for sentiment.)

# %%
val_documents = [t for t in val_texts if not is_page(t)]  # the corpus's pages of lists are for chapter 09's GPT
val_blocks = pack_blocks(tokenizer, val_documents, SCALE.pretrain.block_length)  # (N, T)
print("validation blocks:", tuple(val_blocks.shape), "= (N blocks, T tokens)")
print(" ".join(tokenizer.convert_ids_to_tokens(val_blocks[0, :40].tolist())), "…")

# %%
assert val_blocks.shape[1] == SCALE.pretrain.block_length
assert (val_blocks[:, 0] == tokenizer.cls_token_id).all() and (val_blocks[:, -1] == tokenizer.sep_token_id).all()
assert (val_blocks != tokenizer.pad_token_id).all()  # packing needs no padding

# %% [markdown]
# ## 2 · Hiding words: the 80/10/10 rule
#
# BERT *chooses* 15% of the ordinary tokens (never `[CLS]`, `[SEP]` or padding) and asks the
# model to recover them. A chosen token is
#
# * replaced by `[MASK]` 80% of the time,
# * replaced by a random token 10% of the time,
# * left as it is 10% of the time.
#
# Why not always `[MASK]`? Because `[MASK]` never appears in real text: if only `[MASK]`
# positions mattered, the model could ignore every other token's representation. With 20% of
# the targets looking like ordinary (and sometimes wrong) words, it must build a good
# representation of *every* position. The labels hold the original id at chosen positions
# and `-100` (ignored by the loss) everywhere else.
#
# And why 15%? It is a trade-off. Every chosen token is one prediction to learn from, so a
# higher rate teaches more per block; but every chosen token is also a hole in the context
# the other predictions need, and a heavily masked block looks less like real text. BERT's
# authors settled on 15%; the open experiment at the end lets you measure the context side.
#
# `labkit.masking.mask_tokens` implements the rule. One sentence, corrupted:

# %%
SPECIAL_IDS = tuple(sorted(set(tokenizer.all_special_ids)))
sentence = "The screen is great, but the battery is awful. I would not recommend it."
ids = tokenizer(sentence, return_tensors="pt")["input_ids"]  # (1, T)
masked = mask_tokens(ids, mask_token_id=tokenizer.mask_token_id, vocab_size=V, special_token_ids=SPECIAL_IDS,
                     mlm_probability=0.3, generator=torch.Generator().manual_seed(3))
print(f"{'input':>12} {'model sees':>12} {'label':>10}")
for original, seen, label in zip(ids[0].tolist(), masked.input_ids[0].tolist(), masked.labels[0].tolist()):
    target = tokenizer.convert_ids_to_tokens(label) if label != IGNORE_INDEX else "-100"
    print(f"{tokenizer.convert_ids_to_tokens(original):>12} {tokenizer.convert_ids_to_tokens(seen):>12} {target:>10}")

# %% [markdown]
# One example says little about percentages. Measure them on a few hundred blocks:

# %%
def masking_fractions(blocks: torch.Tensor, mlm_probability: float = 0.15, seed: int = 0) -> dict[str, float]:
    """Corrupt `blocks` with labkit's rule and measure what happened to the tokens."""
    out = mask_tokens(blocks, mask_token_id=tokenizer.mask_token_id, vocab_size=V, special_token_ids=SPECIAL_IDS,
                      mlm_probability=mlm_probability, generator=torch.Generator().manual_seed(seed))
    chosen = out.labels != IGNORE_INDEX  # (N, T)
    eligible = ~torch.isin(blocks, torch.tensor(SPECIAL_IDS))  # (N, T)
    as_mask = chosen & (out.input_ids == tokenizer.mask_token_id)
    kept = chosen & (out.input_ids == blocks)
    n = chosen.sum().item()
    return {"chosen": n / eligible.sum().item(), "[MASK]": as_mask.sum().item() / n,
            "random": (n - as_mask.sum().item() - kept.sum().item()) / n, "unchanged": kept.sum().item() / n,
            "special chosen": (chosen & ~eligible).sum().item()}


fractions = masking_fractions(val_blocks[:256])
expected = {"chosen": 0.15, "[MASK]": 0.8, "random": 0.1, "unchanged": 0.1}
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(list(expected), [fractions[k] for k in expected], color=["tab:gray", "tab:red", "tab:orange", "tab:green"])
ax.scatter(list(expected), list(expected.values()), marker="_", s=900, color="black", label="BERT's rule", zorder=3)
for i, k in enumerate(expected):
    ax.text(i, fractions[k] + 0.02, f"{fractions[k]:.3f}", ha="center")
ax.set_ylim(0, 1)
ax.set_ylabel("fraction")
ax.set_title("chosen: of ordinary tokens · the rest: of chosen tokens")
ax.legend()
plt.show()

# %%
assert fractions["special chosen"] == 0  # [CLS] and [SEP] are never chosen
for key, value in expected.items():
    assert abs(fractions[key] - value) < (0.01 if key == "chosen" else 0.03), (key, fractions[key])
print("the measured fractions match 15% and 80/10/10")

# %% [markdown]
# (A random replacement happens to draw the original token with probability $1/|V|$, so
# "unchanged" is really $0.1 + 0.1/|V|$ — invisible at this vocabulary size.)
#
# **Try it.** Move the slider to choose more or fewer tokens; `[MASK]` is red, a random
# replacement orange, a chosen-but-kept token green.

# %%
def show_corruption(mlm_probability: float = 0.15, seed: int = 0):
    out = mask_tokens(ids, mask_token_id=tokenizer.mask_token_id, vocab_size=V, special_token_ids=SPECIAL_IDS,
                      mlm_probability=mlm_probability, generator=torch.Generator().manual_seed(seed))
    html = []
    for original, seen, label in zip(ids[0].tolist(), out.input_ids[0].tolist(), out.labels[0].tolist()):
        token = tokenizer.convert_ids_to_tokens(seen)
        colour = ("#f4cccc" if seen == tokenizer.mask_token_id else "#fff2cc" if seen != original else "#d9ead3") \
            if label != IGNORE_INDEX else "white"
        html.append(f"<span style='background:{colour};padding:2px;margin:1px'>{token}</span>")
    display(widgets.HTML(" ".join(html)))


widgets.interact(show_corruption, mlm_probability=widgets.FloatSlider(0.15, min=0.05, max=0.6, step=0.05),
                 seed=widgets.IntSlider(0, 0, 20));

# %% [markdown]
# ## 3 · The objective: $P(w_i \mid x)$ is a softmax over the vocabulary
#
# Doc 002 §4.2 writes the masked-LM prediction for a hidden position $i$ as
#
# $$P(w_i \mid x) = \frac{\exp(z_{w_i})}{\sum_{j=1}^{|V|} \exp(z_j)},$$
#
# where $z \in \mathbb{R}^{|V|}$ are the **logits** at position $i$: one score per word of the
# vocabulary. In BERT they come from the last hidden state $h_i$ through a small head that
# ends in the *input* embedding table $E$ — **weight tying (权重绑定)**: the same matrix turns
# a word into a vector at the input and scores every word at the output:
# $z = \mathrm{LN}(\mathrm{GELU}(W h_i + b))\,E^\top + b'$.
#
# Let's take the numbers apart on one masked sentence.

# %%
probe = "The weather in London is [MASK] today."
enc = tokenizer(probe, return_tensors="pt").to(device)
i = enc["input_ids"][0].tolist().index(tokenizer.mask_token_id)  # position of [MASK]
with torch.no_grad():
    out = mlm(enc["input_ids"], output_hidden_states=True)
    z = out.logits[0, i]  # (V,) the logits at the masked position
    h = out.hidden_states[-1][0, i]  # (C,) h_i, the encoder's last layer
    head = mlm.head
    z_by_hand = head.norm(F.gelu(head.dense(h))) @ mlm.encoder.embeddings.token.weight.T + head.bias  # (C) @ (C, V)

p_by_hand = torch.exp(z) / torch.exp(z).sum()  # the formula, literally
p = torch.softmax(z, dim=-1)
assert head.embedding.weight is mlm.encoder.embeddings.token.weight  # the head reuses E: weight tying
assert torch.allclose(z_by_hand, z, atol=1e-5)
assert torch.allclose(p_by_hand, p, atol=1e-7) and abs(p.sum().item() - 1) < 1e-5
top = p.topk(10)
print(f"P(w | x) at position {i} of {probe!r}: a distribution over all {V:,} word pieces; the ten most likely:")
for token, q in zip(tokenizer.convert_ids_to_tokens(top.indices.tolist()), top.values.tolist()):
    print(f"{token:>10} {'█' * round(50 * q / top.values[0].item()):<50} {q:.4f}")

# %% [markdown]
# The training loss is the mean negative log-probability of the original tokens at the chosen
# positions $M$ (doc 003 §4.2.1 writes the same self-supervised loss as a sum over predictions):
#
# $$\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|}\sum_{i \in M} \log P(w_i \mid \tilde x),$$
#
# where $\tilde x$ is the corrupted input. Computed by hand, then by `labkit.pretrain.mlm_loss`
# (which runs the head only on the chosen positions) and by the model's own `labels=` path:

# %%
batch = mask_tokens(val_blocks[:16], mask_token_id=tokenizer.mask_token_id, vocab_size=V,
                    special_token_ids=SPECIAL_IDS, generator=torch.Generator().manual_seed(1))
x_tilde, labels = batch.input_ids.to(device), batch.labels.to(device)  # (B, T), (B, T)
with torch.no_grad():
    log_p = torch.log_softmax(mlm(x_tilde).logits, dim=-1)  # (B, T, V)
    chosen = labels != IGNORE_INDEX  # (B, T): the set M
    loss_by_hand = -log_p[chosen].gather(1, labels[chosen][:, None]).mean()  # (M, V) -> (M, 1) -> mean
    loss_labkit = mlm_loss(mlm, {"input_ids": x_tilde, "labels": labels})
    loss_model = mlm(x_tilde, labels=labels).loss
print(f"|M| = {chosen.sum().item()} predictions; loss by hand {loss_by_hand:.4f}, "
      f"mlm_loss {loss_labkit:.4f}, model(labels=) {loss_model:.4f}")
assert torch.allclose(loss_by_hand, loss_labkit, atol=1e-5) and torch.allclose(loss_by_hand, loss_model, atol=1e-5)

# %% [markdown]
# What loss means "knows nothing"? A model that spreads its probability evenly over the
# vocabulary has $-\log(1/|V|) = \ln |V|$ at every position, so its **perplexity (困惑度)**
# $e^{\mathcal{L}}$ is $|V|$: it is as unsure as a uniform guess among $|V|$ words. A freshly
# initialised BERT (small random weights) is almost exactly there:

# %%
model_config = replace(SCALE.model, vocab_size=V, pad_token_id=tokenizer.pad_token_id)  # as `labkit build` does
torch.manual_seed(0)
untrained = MaskedLM(model_config).to(device)
before = evaluate_mlm(untrained, tokenizer, val_blocks)
print(f"untrained: loss {before['loss']:.3f} vs ln|V| = {math.log(V):.3f}; perplexity {before['perplexity']:,.0f} vs |V| = {V:,}")
assert abs(before["loss"] - math.log(V)) < 0.05 * math.log(V)

# %% [markdown]
# ## 4 · Pretraining the mini-BERT, live
#
# `labkit.pretrain.pretrain_mlm` runs the whole recipe: pack the corpus into blocks, draw a
# fresh 80/10/10 corruption for every batch, minimise $\mathcal{L}_{\text{MLM}}$ with AdamW
# (a **learning-rate warm-up (学习率预热)**, then linear decay), and evaluate on the validation blocks every
# few steps. `LivePlot` redraws the curve after each evaluation. Here we train the untrained
# model above for a few dozen steps — the real one was trained for longer by `labkit build`.

# %%
demo_train = replace(SCALE.pretrain.train, steps=DEMO_STEPS, eval_every=max(20, DEMO_STEPS // 4), progress=False)
demo_cfg = PretrainConfig(train=demo_train, objectives=(MaskedWords(),), block_length=SCALE.pretrain.block_length,
                          one_document_per_row=False, salient_probability=0.0)  # masked LM alone, on packed blocks
demo = pretrain_mlm(untrained, tokenizer, train_texts, val_texts, demo_cfg,
                    on_eval=LivePlot("masked_accuracy"))

# %%
first, last = demo.history.loss[0], sum(demo.history.loss[-10:]) / 10
print(f"{DEMO_STEPS} steps in {demo.history.seconds:.0f}s on {demo.history.device}: training loss {first:.2f} → {last:.2f}; "
      f"validation loss {before['loss']:.2f} → {demo.metrics['loss']:.2f}")
assert last < first - 0.5 and demo.metrics["loss"] < before["loss"] - 0.5

fig, ax = plt.subplots(figsize=(6, 2.2))
ax.plot(demo.history.steps, demo.history.lr)
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.set_title("warm-up, then linear decay")
plt.show()

# %% [markdown]
# How does the short run compare with the lab's pretrained model, and with the simplest
# baseline — always guessing the corpus's most frequent token? All three are scored on the
# same validation blocks with the same masks.

# %%
train_blocks = pack_blocks(tokenizer, train_texts, SCALE.pretrain.block_length)
counts = torch.bincount(train_blocks.flatten(), minlength=V)
counts[list(SPECIAL_IDS)] = 0
most_frequent = int(counts.argmax())
eligible = ~torch.isin(val_blocks, torch.tensor(SPECIAL_IDS))  # the tokens masking may choose, uniformly
unigram_accuracy = (val_blocks[eligible] == most_frequent).float().mean().item()  # its expected masked accuracy
after = evaluate_mlm(mlm, tokenizer, val_blocks)
rows = [("untrained", 0, before), ("short demo", DEMO_STEPS, demo.metrics), ("lab's pretrained model", SCALE.pretrain.train.steps, after)]
print(f"{'model':>24} {'steps':>6} {'loss':>6} {'perplexity':>11} {'masked acc.':>11}")
for name, steps, m in rows:
    print(f"{name:>24} {steps:>6} {m['loss']:>6.2f} {m['perplexity']:>11,.1f} {m['masked_accuracy']:>11.3f}")
print(f"{'always ' + repr(tokenizer.convert_ids_to_tokens(most_frequent)):>24} {'':>6} {'':>6} {'':>11} {unigram_accuracy:>11.3f}")

# %%
assert SCALE.pretrain.train.steps > DEMO_STEPS and after["loss"] < demo.metrics["loss"]  # longer pretraining, lower loss
seen = {name: sc.pretrain.train.steps * sc.pretrain.train.batch_size * sc.pretrain.block_length for name, sc in SCALES.items()}  # tokens
assert seen["ci"] < seen["cpu"] < seen["gpu"]  # each larger scale reads more text
assert after["masked_accuracy"] > unigram_accuracy  # context beats word frequency alone

# %% [markdown]
# The table scores every model on the same packed blocks. `labkit build` measured its model
# on its own validation rows (one document per row, as it trains), so its report gives
# somewhat different figures; they are read here from the build's `report.json`:

# %%
pretraining = REPORT["pretraining"]
print(f"labkit build, scale {REPORT['scale']!r}: {pretraining['steps']:,} steps, objectives {pretraining['objectives']}")
print(f"masked-token accuracy {pretraining['masked_accuracy']:.3f}, loss {pretraining['loss']:.2f}, "
      f"perplexity {pretraining['perplexity']:.1f} (a uniform guess: {V:,}), "
      f"next-sentence accuracy {pretraining['next_sentence_accuracy']:.3f}")
assert REPORT["scale"] == LAB_SCALE and pretraining["steps"] == SCALE.pretrain.train.steps
assert abs(pretraining["perplexity"] - math.exp(pretraining["loss"])) < 1e-3 * pretraining["perplexity"]  # perplexity = e^loss
assert pretraining["perplexity"] < V / 10  # far better than a uniform guess at every scale
if LAB_SCALE == "cpu":  # the figures the text below quotes, with their tolerance
    assert 0.55 < pretraining["masked_accuracy"] < 0.65 and pretraining["perplexity"] < 8

# %% [markdown]
# Read the perplexity as "how many words is the model hesitating between?". At the cpu scale
# the build's model guesses about three hidden tokens in five exactly right, and its
# perplexity is below 8: at a typical blank it is about as unsure as a choice among a handful
# of words, where a uniform guess would hesitate among all $|V|$ pieces of the vocabulary.
# (At `LAB_SCALE=ci`, the small scale the automated tests run, the model has read far less
# text and the figures are much weaker.)

# %% [markdown]
# ## 5 · What did it learn? Fill-mask probes
#
# A **fill-mask probe** asks the pretrained model to complete a sentence — a
# **cloze test (完形填空)**, the same exercise language teachers set. The helper below is
# §3 in a loop: softmax at each `[MASK]`, keep the top $k$. (In §9 we check it against
# transformers' `fill-mask` pipeline.)

# %%
@torch.no_grad()
def fill_mask(model: MaskedLM, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """For every [MASK] in `text`: the k most likely word pieces and their probabilities."""
    enc = tokenizer(text, return_tensors="pt").to(device)
    probs = torch.softmax(model(enc["input_ids"]).logits[0], dim=-1)  # (T, V)
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    return [[(tokenizer.convert_ids_to_tokens(int(j)), float(q)) for q, j in zip(*probs[i].topk(k))] for i in where]


probes = ["Mia Petrov was born and raised in [MASK].",
          "The screen is great and the battery is [MASK].",
          "I would [MASK] it to anyone.",
          "Shares of the company [MASK] after weak sales.",
          "今天天气怎么[MASK]？"]
for text in probes:
    fills = fill_mask(mlm, text)[0]
    print(f"{text:<50}", "  ".join(f"{w} {q:.2f}" for w, q in fills))
if LAB_SCALE == "cpu":  # the fills the text below quotes
    from labkit.data.sentiment import opinion_words

    positive = {w for heldout in (False, True) for w in opinion_words("positive", heldout)}
    assert {w for w, _ in fill_mask(mlm, probes[1])[0][:3]} <= positive  # praise after praise
    assert fill_mask(mlm, probes[4])[0][0][0] == "样" and fill_mask(mlm, probes[2])[0][0][0] != "recommend"

# %% [markdown]
# How sensible the fills look depends on how long the model was pretrained (the table in §4
# measured it). At the cpu scale the model's first three choices after "The screen is great and
# the battery is [MASK]." are all words of praise, and it completes 今天天气怎么[MASK]？ with 样;
# but "I would [MASK] it to anyone." gets a frequent verb, not *recommend*. Look at the other
# rows: does the model know what *kind* of word each blank needs, even when it cannot know which
# one? At the tiny `ci` scale many fills are just frequent tokens.

# %% [markdown]
# Which words of a sentence are easy to guess from their context? Hide each token in turn and
# record the probability the model gives to the true one (a **pseudo-likelihood (伪似然)** profile).
# Compare the bars: which tokens can the context give away, and which — names, numbers, facts
# about one particular person — can it not?

# %%
@torch.no_grad()
def token_probabilities(model: MaskedLM, text: str) -> tuple[list[str], list[float]]:
    """P(true token | the rest) for every token of `text`, hiding one token at a time."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    positions = list(range(1, len(ids) - 1))  # skip [CLS] and [SEP]
    batch = ids.repeat(len(positions), 1)  # one row per hidden position
    batch[range(len(positions)), positions] = tokenizer.mask_token_id
    probs = torch.softmax(model(batch.to(device)).logits, dim=-1)  # (P, T, V)
    return (tokenizer.convert_ids_to_tokens(ids[positions].tolist()),
            [probs[r, i, ids[i]].item() for r, i in enumerate(positions)])


def short_document(chinese: bool) -> str:
    """The first validation document in the language asked for with 15 to 40 tokens."""
    return next(t for t in val_texts if t.isascii() != chinese and 15 <= len(tokenizer(t)["input_ids"]) <= 40)


fig, axes = plt.subplots(2, 1, figsize=(11, 5.6))
for ax, chinese in zip(axes, (False, True)):
    tokens, probs = token_probabilities(mlm, short_document(chinese))
    ax.bar(range(len(tokens)), probs)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90 if not chinese else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(true token | rest)")
axes[0].set_title("how predictable is each token from its context?")
fig.tight_layout()
plt.show()
assert all(0 <= q <= 1 for q in probs) and len(tokens) == len(probs)

# %% [markdown]
# Read the bars as evidence of what pretraining can and cannot teach. You would expect
# grammar words and fixed phrases to be given away by the context, and a name, a number or
# an opinion word not to be: there the context says *what kind* of word goes in the blank,
# not *which one*. Check whether the bars agree. And is a word that already appeared earlier
# in the same text easier to guess the second time? No amount of masking can teach a fact
# the text does not contain; what the model does learn is which kinds of words fit where,
# and facts that recur across many documents.
#
# **Try it.** Write your own sentence with one or more `[MASK]`s (Chinese works too).

# %%
def show_fills(text: str = "Emma Sato works as a [MASK] at London Central Hospital."):
    if tokenizer.mask_token not in text:
        print("put [MASK] somewhere in the sentence")
        return
    for n, fills in enumerate(fill_mask(mlm, text, k=8)):
        print(f"[MASK] #{n + 1}:", "  ".join(f"{w} {q:.3f}" for w, q in fills))


widgets.interact(show_fills, text=widgets.Text(value="Emma Sato works as a [MASK] at London Central Hospital.",
                                               continuous_update=False, layout=widgets.Layout(width="80%")));

# %% [markdown]
# ## 6 · Where does `[MASK]` look?
#
# To fill a blank, the model must gather clues from the rest of the sentence: that is what
# its self-attention (chapter 01) does, layer by layer — each layer refines the one before,
# $h^{(l)} = \mathrm{Transformer}(h^{(l-1)})$ (doc 001 §4.2). bertviz's head view shows every
# head of every layer (hover over a token; bertviz draws with JavaScript from the web, so it
# needs an internet connection in the browser). The lab's own viewer below it draws with
# matplotlib and works offline.

# %%
attention_sentence = "The screen is great but the battery is [MASK]."
bertviz_view(mlm, tokenizer, attention_sentence)

# %%
attention_explorer(mlm, tokenizer, attention_sentence);

# %%
att_tokens, attentions = encoder_attentions(mlm, tokenizer, attention_sentence)
with torch.no_grad():  # h^(l) = Transformer(h^(l-1)): each block maps the previous layer's states to the next
    hidden = mlm.encoder(tokenizer(attention_sentence, return_tensors="pt")["input_ids"].to(device),
                         output_hidden_states=True).hidden_states  # L+1 of (1, T, C), embeddings first
    assert all(torch.allclose(block(hidden[l])[0], hidden[l + 1], atol=1e-5) for l, block in enumerate(mlm.encoder.layers))
assert len(attentions) == mlm.config.n_layers
assert attentions[0].shape == (1, mlm.config.n_heads, len(att_tokens), len(att_tokens))
assert all(torch.allclose(a.sum(-1), torch.ones(())) for a in attentions)  # each row is a distribution

# %% [markdown]
# ## 7 · BERT's second objective: next-sentence prediction (下一句预测)
#
# Masked LM puts its loss on the hidden words only. Nothing asks the `[CLS]` position to
# hold anything useful — yet `[CLS]` is exactly what a sentence classifier reads in chapter
# 05. BERT therefore pretrains with a second game. It shows the model two segments,
# `[CLS] A [SEP] B [SEP]`, with token type 0 on A and 1 on B. Half the time B is the text
# that really follows A in its document (label 0, *IsNext*); half the time it comes from
# another document (label 1, *NotNext*). The answer is read from `[CLS]` through the
# pooler:
#
# $$P(\text{IsNext} \mid A, B) = \mathrm{softmax}\big(W \tanh(W_p h_{[\mathrm{CLS}]} + b_p) + b\big)_0$$
#
# The lab's mini-BERT (`PreTrainingModel`, transformers' `BertForPreTraining`) was pretrained
# on both: batches of document rows (masked LM) alternate with batches of sentence pairs
# (masked LM + next sentence, losses added). `labkit.nsp.make_pairs` builds the pairs; its
# random B always comes from a document in the same language, so the task cannot be solved
# by spotting Chinese characters (exercise 4 measures how well that shortcut would work). The
# build goes one step further: its wrong B is the one of 8 random documents that shares the
# most words with A, a **hard negative (困难负例)**, so that B seldom gives itself away by its
# topic. (The build also trains a third, lab-specific objective, `cls_salient_words`, that
# chapter 05 explains; the report below lists all three.)

# %%
assert isinstance(mlm, PreTrainingModel) and isinstance(mlm, MaskedLM)  # the fill-mask model above, plus a [CLS] head
pairs = make_pairs(val_texts[:400], seed=0)
for pair in pairs[:4]:
    print(("IsNext  " if pair.label == 0 else "NotNext ") + f"A: {pair.first[:70]}\n{'':8}B: {pair.second[:70]}")
example = tokenizer(pairs[0].first, pairs[0].second, return_tensors="pt")
print(tokenizer.convert_ids_to_tokens(example["input_ids"][0])[:24])
print(example["token_type_ids"][0][:24].tolist())

# %%
# The formula by hand, against the model's own next-sentence logits.
batch = tokenizer([p.first for p in pairs[:8]], [p.second for p in pairs[:8]], padding=True, truncation=True,
                  max_length=SCALE.pretrain.block_length, return_tensors="pt").to(device)
with torch.no_grad():
    out = mlm(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    h_cls = mlm.encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state[:, 0]  # (B, C)
    by_hand = torch.softmax(mlm.next_sentence(torch.tanh(mlm.encoder.pooler(h_cls))), -1)[:, 0]  # (B,)
assert torch.allclose(by_hand, torch.softmax(out.next_sentence_logits, -1)[:, 0], atol=1e-6)
for p, q in zip(pairs[:8], by_hand.tolist()):
    print(f"P(IsNext) = {q:.2f}   truth: {'IsNext' if p.label == 0 else 'NotNext'}")
nsp_accuracy = evaluate_nsp(mlm, tokenizer, val_texts[:1000], max_length=SCALE.pretrain.block_length)["next_sentence_accuracy"]
print(f"next-sentence accuracy on validation pairs with random negatives: {nsp_accuracy:.3f} (chance: 0.5); "
      f"the build's report: {pretraining['next_sentence_accuracy']:.3f}")
assert nsp_accuracy > 0.6  # [CLS] learned something masked LM alone never asks of it
assert {"masked_lm", "next_sentence"} <= set(pretraining["objectives"])

# %% [markdown]
# ## 8 · For contrast: next-token prediction (GPT's objective)
#
# The other classic pretraining game (doc 000 §3.2), **next-token prediction (下一词预测)**,
# predicts each token from the ones before it, $P(x_t \mid x_{<t})$, with loss $\mathcal{L}_{\text{CLM}} = -\frac{1}{T-1}\sum_{t=1}^{T-1}
# \log P(x_{t+1} \mid x_{\le t})$. Nothing is hidden in the input: instead the attention is
# causal — a position may look only at itself and the past. A model trained this way is a
# **causal language model (因果语言模型)**. The two objectives see
# different things:
#
# | | masked LM (BERT) | next-token LM (GPT) |
# |---|---|---|
# | input | corrupted text | the text itself |
# | attention | every position sees every position | position $t$ sees $0 \dots t$ |
# | predictions per block | the ~15% chosen tokens | every position but the last |
# | good at | understanding (classification, tagging, QA) | generating text |

# %%
T_show = 8
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
for ax, (name, mask) in zip(axes, [("masked LM: bidirectional", torch.ones(T_show, T_show, dtype=torch.bool)),
                                   ("next-token LM: causal", causal_mask(T_show))]):
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(name)
    ax.set_xlabel("key position (may be seen)")
    ax.set_ylabel("query position")
fig.tight_layout()
plt.show()

# %% [markdown]
# A causal model's prediction at position $t$ cannot depend on later tokens. Check it: change
# one token in the middle of a block and see which positions' logits move.

# %%
clm_config = replace(model_config, n_decoder_layers=model_config.n_layers)  # same sizes, decoder-only
torch.manual_seed(0)
clm = CausalLM(clm_config).to(device).eval()
mlm_fresh = MaskedLM(model_config).to(device).eval()
block = val_blocks[:1].to(device)  # (1, T)
edited = block.clone()
t_edit = 10
edited[0, t_edit] = (edited[0, t_edit] + 1) % V
with torch.no_grad():
    clm_moved = (clm(block).logits - clm(edited).logits).abs().amax(-1)[0]  # (T,) largest change per position
    mlm_moved = (mlm_fresh(block).logits - mlm_fresh(edited).logits).abs().amax(-1)[0]
assert clm_moved[:t_edit].max() < 1e-5  # positions before the edit are untouched ...
assert clm_moved[t_edit:].min() > 0  # ... the edited one and later ones change
assert mlm_moved[:t_edit].min() > 0  # in BERT every position sees the edit
print(f"edit at position {t_edit}: causal LM logits changed from position {int((clm_moved > 1e-5).nonzero()[0])} on; "
      f"masked LM logits changed at all {int((mlm_moved > 0).sum())} positions")

# %% [markdown]
# The loss, by hand and by `labkit`: position $t$'s logits are scored against token $t+1$.

# %%
with torch.no_grad():
    logits = clm(block).logits  # (1, T, V)
    by_hand = -torch.log_softmax(logits[0, :-1], dim=-1).gather(1, block[0, 1:, None]).mean()  # predict t+1 from <= t
    assert torch.allclose(by_hand, clm(block, labels=block).loss, atol=1e-5)
n_mlm = int((mask_tokens(block, mask_token_id=tokenizer.mask_token_id, vocab_size=V, special_token_ids=SPECIAL_IDS,
                         generator=torch.Generator(device=device).manual_seed(0)).labels != IGNORE_INDEX).sum())
print(f"one block of T = {block.shape[1]}: next-token LM learns from {block.shape[1] - 1} predictions, "
      f"masked LM from {n_mlm}")
assert block.shape[1] - 1 > n_mlm

# %% [markdown]
# Train the causal model for as many steps as the masked one in §4 (`pretrain_clm` packs the
# same blocks; no masking is needed). Every position of every block is a training example for
# it — but no position can use the right-hand context that makes BERT good at understanding
# tasks. (The two losses measure different games, so the curves below show each one's
# progress, not which model is better.)

# %%
clm_run = pretrain_clm(clm, tokenizer, train_texts, val_texts, demo_train, block_length=SCALE.pretrain.block_length,
                       on_eval=LivePlot("next_token_accuracy"))

# %%
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(demo.history.steps, demo.history.loss, label="masked LM (BERT)")
ax.plot(clm_run.history.steps, clm_run.history.loss, label="next-token LM (GPT)")
ax.axhline(math.log(V), ls="--", color="gray", label="ln|V|: uniform guess")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.legend()
plt.show()
assert sum(clm_run.history.loss[-10:]) / 10 < clm_run.history.loss[0] - 0.5

# %% [markdown]
# ## 9 · Saving in Hugging Face format
#
# `labkit.folders.save_model` writes the model as its transformers twin (`BertForPreTraining`,
# both heads): `config.json`, `model.safetensors` (never a pickle) and the tokenizer files. Any
# tool that reads Hugging Face folders can open it — here, transformers' `fill-mask` pipeline,
# which loads the encoder and the masked-LM head as a `BertForMaskedLM` and leaves the
# next-sentence head aside.

# %%
folder = Path(tempfile.mkdtemp()) / "mini-bert"
save_model(mlm, tokenizer, folder)
print(sorted(p.name for p in folder.iterdir()))
fill = transformers.pipeline("fill-mask", model=str(folder), device=device)
print(type(fill.model).__name__)
theirs = fill(probe, top_k=5)
ours = fill_mask(mlm, probe, k=5)[0]
for t, (word, q) in zip(theirs, ours):
    print(f"pipeline {t['token_str']:>8} {t['score']:.5f}   labkit {word:>8} {q:.5f}")

# %%
assert [t["token"] for t in theirs] == tokenizer.convert_tokens_to_ids([w for w, _ in ours])
assert all(abs(t["score"] - q) < 1e-5 for t, (_, q) in zip(theirs, ours))  # the same softmax
print("the pipeline's scores equal labkit's softmax")

# %% [markdown]
# ## Summary
#
# - Pretraining is **self-supervised**: unlabelled text is packed into blocks and corrupted,
#   and the model learns to undo the corruption. BERT chooses 15% of the tokens and replaces
#   them 80/10/10 with `[MASK]`, a random token, or themselves — so any ordinary-looking
#   word might be a target, and the model must build a good vector for every position.
# - The prediction is a softmax over the vocabulary, $P(w_i \mid x) = \exp(z_{w_i}) / \sum_j
#   \exp(z_j)$, and the loss is the mean negative log-probability of the hidden tokens. An
#   untrained model sits at $\ln|V|$ (perplexity $|V|$); training pushes the loss down and the
#   masked-token accuracy above what word frequency alone gives. Context tells the model what
#   *kind* of word fits a blank; only facts the text repeats can be learned.
# - BERT adds next-sentence prediction, read from `[CLS]` through the pooler, so that
#   position is trained too; the lab's mini-BERT learned both objectives. Its wrong
#   continuations come from the same language (and are hard negatives), or the task could be
#   solved by a shortcut.
# - Next-token prediction uses a causal mask instead of corruption: more predictions per
#   block, but only left context.
# - The result is an ordinary Hugging Face model folder, which transformers' `pipeline` opens
#   and which gives the same probabilities.
#
# **Next:** chapter 05 puts a classification head on this encoder and fine-tunes it.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell; a wrong answer shows a hint, and each
# further try a stronger one. Every exercise cell runs on its own. Solutions:
# `notebooks/solutions/ch04.py`.
#
# **Exercise 1 (the formula).** `ch04.softmax_inputs()` gives the logits $z$ a model produced
# at a `[MASK]` over a tiny vocabulary, and that vocabulary. What probability $P(w \mid x)$
# does the model give to the word `"great"`?

# %% tags=["exercise"]
from labkit.exercises import ch04

z, vocabulary = ch04.softmax_inputs()
print(vocabulary)
answer = None  # your code: a float
ch04.check_softmax_probability(answer)

# %% [markdown]
# **Exercise 2 (the loss).** `ch04.mlm_loss_inputs()` gives logits of shape (B, T, V) and
# labels of shape (B, T) that hold `-100` except at the chosen positions. Compute
# $\mathcal{L}_{\text{MLM}}$.

# %% tags=["exercise"]
from labkit.exercises import ch04

logits, labels = ch04.mlm_loss_inputs()
answer = None  # your code: a float (or a 0-dimensional tensor)
ch04.check_mlm_loss(answer)

# %% [markdown]
# **Exercise 3 (main idea: why 80/10/10).** BERT chooses `ch04.MASK_RATE` of the tokens and
# treats a chosen token by `ch04.RULE` = (share replaced by `[MASK]`, share replaced by a
# random token, share kept). Put yourself in the model's place: it looks at a position that
# shows an ordinary word, not `[MASK]`. What is the probability that the loss scores its
# prediction there? (Ignore the tiny chance that a random replacement draws `[MASK]` or the
# original word.) Then think: what would the answer be with the rule (1, 0, 0), and what
# would the model then never need to learn?

# %% tags=["exercise"]
from labkit.exercises import ch04

print("choice rate:", ch04.MASK_RATE, "  rule ([MASK], random, kept):", ch04.RULE)
answer = None  # your code: a probability
ch04.check_ordinary_looking_targets(answer)

# %% [markdown]
# **Exercise 4 (main idea: what next-sentence prediction can be solved by).** Suppose the
# wrong B of a NotNext pair were drawn from *any* document of the bilingual corpus.
# `ch04.NSP_PAIRS` holds ten pairs `(A, B, label)` made that way (label 0 = IsNext,
# 1 = NotNext, as in `labkit.nsp`). A lazy model predicts IsNext exactly when A and B are in
# the same language. What accuracy does this shortcut reach? What does that tell you about
# how `make_pairs` must choose the wrong B?

# %% tags=["exercise"]
from labkit.exercises import ch04


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


for a, b, label in ch04.NSP_PAIRS:
    print(label, "|", a, "|", b)
answer = None  # your code: the shortcut's accuracy, a float
ch04.check_nsp_shortcut(answer)

# %% [markdown]
# **Exercise 5 (next-token prediction).** Turn the block `ch04.NEXT_TOKEN_BLOCK` (shape
# (1, T)) into the pair `(inputs, targets)` such that the model reading `inputs[:, t]` (and
# everything before it) must predict `targets[:, t]`.

# %% tags=["exercise"]
from labkit.exercises import ch04

block = ch04.NEXT_TOKEN_BLOCK
answer = None  # your code: a tuple (inputs, targets)
ch04.check_next_token_pairs(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** How much hidden context can the model cope with?
#
# - **Change:** the share of tokens hidden at evaluation, `mlm_probability`, from 0.05 to 0.6
#   (the model was trained at 0.15). For a harder version, also pretrain a fresh model for a
#   few dozen steps with `PretrainConfig(mask_probability=...)` at 0.05, 0.15 and 0.4, as §4
#   does, and compare them at the same number of steps.
# - **Measure:** `labkit.pretrain.evaluate_mlm(model, tokenizer, blocks,
#   mlm_probability=p)` — its `masked_accuracy` and `loss` — and the number of predictions per
#   block, $p \times$ (ordinary tokens per block). The starter cell below does the first part.
# - **A good answer** shows a table or plot of accuracy against $p$, explains the fall as
#   less visible context for each blank (and a bigger mismatch with the text the model was
#   trained on), sets it against the gain — more predictions, so more learning signal, per
#   block — and argues from these numbers why a rate near 15% is a reasonable compromise.

# %% tags=["experiment"]
import os

import torch

from labkit.build import SCALES, ensure_pretrained
from labkit.data import load_task
from labkit.pretrain import evaluate_mlm, pack_blocks

scale = os.environ.get("LAB_SCALE", "cpu")
model, tok = ensure_pretrained(scale, progress=False)
texts = list(load_task("corpus", size=scale)["validation"]["text"])
blocks = pack_blocks(tok, texts, SCALES[scale].pretrain.block_length)  # (N, T)
ordinary = (~torch.isin(blocks, torch.tensor(tok.all_special_ids))).sum(1).float().mean().item()  # per block
for p in (0.05, 0.15, 0.3, 0.6):
    m = evaluate_mlm(model, tok, blocks, mlm_probability=p)
    print(f"mlm_probability {p:.2f}: {p * ordinary:5.1f} predictions per block, "
          f"masked accuracy {m['masked_accuracy']:.3f}, loss {m['loss']:.2f}")

# %% [markdown] tags=["teacher"]
# **Notes for teachers.** Allow about 90 minutes: 45 for §1–§5 (the 80/10/10 measurement, the
# softmax and loss by hand, the live pretraining run), 20 for §6–§9, 25 for the exercises.
# Exercises 3 and 4 carry the chapter's main ideas; discuss them in class rather than only
# grading them.
#
# - *Misconception:* "the 10% kept tokens are wasted." Exercise 3 shows they are what makes
#   every ordinary-looking position a possible target, so the model must build a contextual
#   vector everywhere — the vectors fine-tuning reads.
# - *Misconception:* "a low masked-LM loss means the model knows facts." §5's profile shows it
#   learns which *kind* of word fits; a fact appears only when the text repeats it.
# - *Misconception:* "next-sentence accuracy measures understanding of discourse." Exercise 4
#   shows a shortcut reaching 80% on badly made pairs; RoBERTa (2019) dropped the objective,
#   ALBERT (2019) replaced it with sentence-order prediction.
# - The open experiment's starter runs in seconds. In class, give each group one
#   `mask_probability` for the harder version (a 60-step run takes well under a minute on a laptop)
#   and collect the curves on the board.
