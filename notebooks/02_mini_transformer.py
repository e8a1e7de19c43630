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
# # Chapter 02 · The mini-Transformer
#
# Chapter 01 built attention. A Transformer wraps it in a **block** — attention, a small
# feed-forward network, residual connections and layer normalisation — and stacks blocks, each
# refining the previous one's output. The lab's **encoder (编码器)** has exactly BERT's
# architecture, only smaller; here you take it apart, see what each part of a block does, count
# its parameters and check it, number for number, against PyTorch's and 🤗 transformers'
# implementations.
#
# **Learning objectives.** After this chapter you can
# 1. write one post-LN Transformer block as BERT computes it, and verify it against the lab's;
# 2. say what each part of a block does: attention mixes information *across* positions, the
#    feed-forward network transforms each position on its own, the residual connection carries
#    the input through and layer normalisation keeps every token vector at the same scale;
# 3. follow the hidden states layer by layer, $h^{(l)} = \mathrm{Transformer}(h^{(l-1)})$;
# 4. count a BERT's parameters by formula and by code (bert-base: 109,482,240) and say where
#    they sit;
# 5. configure `nn.TransformerEncoderLayer` to compute the lab's block, and move the lab's
#    encoder into transformers' `BertModel` and back with identical outputs, and run a real
#    pretrained BERT (all-MiniLM-L6-v2) in the lab's own `Encoder`;
# 6. look inside with an offline attention explorer and with bertviz.
#
# **Prerequisites.** Chapter 01. Chapter 03 explains how text becomes token ids; this chapter
# uses its tokenizer as a black box (see the note before section 1).
#
# **Estimated time:** about 50 minutes to read and do; the code runs in about 20 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Map to the source documents.**
#
# | section | documents |
# |---|---|
# | 1 · one block | doc 000 §3.1–3.2 (the Transformer as the model-building step), §5.3 (a layer holds multi-head self-attention and a feed-forward network) |
# | 2 · stacking blocks | doc 001 §4.1–4.2 (input layer, stacked hidden layers $h^{(l)}$, output layer) |
# | 3 · counting parameters | doc 000 §5.3 (the embedding layer, Transformer layers and output layer of its model); doc 003 §3.3 (a drawback: huge parameter counts demand compute and memory) |
# | 4 · `nn.TransformerEncoderLayer` | doc 000 §5.2–5.3 (an encoder built from `nn.TransformerEncoderLayer` — ours configures it to match BERT); doc 004 §5.2–5.3 |
# | 5 · 🤗 transformers' BERT | doc 002 §4.1 (BERT = Transformer + masked language model); real pretrained weights in the same code: doc 001 §1.1 (large-scale pretraining) |
# | 6 · attention views | doc 004 §3.1 (multi-head attention) |
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
import math
import os
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from labkit.attention import padding_mask
from labkit.build import SCALES
from labkit.data import load_task
from labkit.env import best_device
from labkit.tokenization import train_tokenizer
from labkit.training import seed_everything
from labkit.transformer import Encoder, MaskedLM, TransformerConfig, count_parameters

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # the sizes every chapter uses at this scale
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# **A forward reference: text → token ids.** The model reads integers, not text. Chapter 03
# explains how text becomes these ids; for now, treat the tokenizer as a black box. The cell
# below trains the lab's tokenizer on TinyWorld's corpus (a few seconds) and encodes a batch of
# two sentences of different lengths. All you need from it here:
#
# - each sentence becomes a row of ids, one per word piece, opened by `[CLS]` and closed by
#   `[SEP]` (two special tokens chapter 03 introduces);
# - the shorter row is filled up with `[PAD]` (id 0) so the batch is a rectangle, and
#   `attention_mask` is 1 at real tokens and 0 at padding — chapter 01's padding mask;
# - `len(tokenizer)` is the vocabulary size $V$: how many different ids exist.
#
# Nothing in this chapter depends on *which* ids the sentences get: the open experiment at the
# end feeds the encoder random ids instead.

# %%
corpus = load_task("corpus", size=SCALE.data)
tokenizer = train_tokenizer(list(corpus["train"]["text"]), vocab_size=SCALE.vocab_size)
texts = ["Emma Smith founded Blue River Bank in Paris.", "The battery is not bad at all."]
batch = tokenizer(texts, padding=True, return_tensors="pt").to(device)
for row in batch["input_ids"]:
    print(tokenizer.convert_ids_to_tokens(row.tolist()))

real = batch["attention_mask"].bool()  # (B, S): True at real tokens, False at [PAD]
# The tokenizer may stop below the requested size (chapter 03); size the embeddings to what it has,
# as `labkit build` does.
cfg = replace(SCALE.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
encoder = Encoder(cfg).to(device).eval()  # eval(): no dropout, so outputs are deterministic
print(cfg)

# %% [markdown]
# ## 1 · One block, as BERT computes it
#
# A block has two sublayers: multi-head self-attention (chapter 01) and a **feed-forward network
# (前馈神经网络)**. Each sublayer adds its result to its own input — a **residual connection
# (残差连接)**, the "$h +$" below — and then normalises the sum with **layer normalisation
# (层归一化)**, "LN". Normalising after the sum is called **post-LN (后置层归一化)**, as in BERT
# and the original Transformer:
#
# $$a = \mathrm{LN}\big(h + \mathrm{MHA}(h)\big), \qquad h' = \mathrm{LN}\big(a + \mathrm{FFN}(a)\big),$$
#
# The feed-forward network is two linear layers with an **activation function (激活函数)** between
# them, BERT's exact GELU. It is *position-wise*: the same small network is applied to each
# token's vector on its own, so it never looks at the other positions — only attention moves
# information between tokens. (Exercise 1 makes you check this.)
#
# $$\mathrm{FFN}(x) = W_2\,\mathrm{GELU}(W_1x + b_1) + b_2, \qquad
# \mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{1}{2}x\left(1 + \mathrm{erf}(x/\sqrt{2})\right),$$
#
# Layer normalisation works over the $C$ features of each token, again position by position: it
# rescales every token vector to mean 0 and variance 1, whatever the sublayers added, so the
# numbers keep the same size however many blocks are stacked:
#
# $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
# \qquad \mu = \tfrac{1}{C}\textstyle\sum_c x_c,\ \ \sigma^2 = \tfrac{1}{C}\sum_c (x_c - \mu)^2 .$$
#
# The teaching snippet writes these three formulas out and runs them on the lab's first block;
# the asserts compare each with PyTorch and with `Block.forward`.

# %%
def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))  # x Φ(x)


def layer_norm(x, ln: nn.LayerNorm):
    mu = x.mean(-1, keepdim=True)  # (B, T, 1)
    var = x.var(-1, keepdim=True, unbiased=False)  # (B, T, 1): divide by C, not C − 1
    return ln.weight * (x - mu) / torch.sqrt(var + ln.eps) + ln.bias  # (B, T, C)


def block_forward(block, h, mask=None):
    """a = LN(h + MHA(h)); h' = LN(a + FFN(a)) — with the block's own weights."""
    attended, _ = block.attn(h, h, h, mask=mask)  # (B, T, C)
    a = layer_norm(h + attended, block.attn_norm)
    ffn = block.ff.down(gelu(block.ff.up(a)))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)
    return layer_norm(a + ffn, block.ff_norm)


block = encoder.layers[0]
mask = padding_mask(batch["attention_mask"])  # (B, 1, 1, S)
with torch.no_grad():
    h0 = encoder.embeddings(batch["input_ids"])  # (B, S, C): the block's input
    z = torch.randn(3, 7, cfg.d_model, device=device)
    assert torch.allclose(gelu(z), F.gelu(z), atol=1e-6)  # the GELU formula
    assert torch.allclose(layer_norm(z, block.attn_norm), block.attn_norm(z), atol=1e-5)  # the LN formula
    ours = block_forward(block, h0, mask)
    lab, _, _ = block(h0, mask=mask)
assert ours.shape == h0.shape == (2, batch["input_ids"].shape[1], cfg.d_model)
assert torch.allclose(ours, lab, atol=1e-5)
print(block)

# %% [markdown]
# After every block, each token's vector has mean 0 and variance 1 across its features (times
# γ, plus β — which start at 1 and 0):

# %%
assert torch.allclose(lab.mean(-1), torch.zeros_like(lab.mean(-1)), atol=1e-5)
assert torch.allclose(lab.var(-1, unbiased=False), torch.ones_like(lab.mean(-1)), atol=1e-3)
print("per-token mean ≈ 0 and variance ≈ 1 after the block")

# %% [markdown]
# ## 2 · Stacking blocks: $h^{(l)} = \mathrm{Transformer}(h^{(l-1)})$
#
# The encoder first turns each id into a vector: $h^{(0)}$ is the sum of a **token embedding
# (词嵌入)** (one learned row per vocabulary entry), a **position embedding (位置嵌入)** (one
# learned row per position, since attention itself ignores order) and a segment embedding,
# normalised. Then it applies its $L$ blocks one after the other — **stacking (堆叠)** — and the
# output of block $l$ is the **hidden layer (隐藏层)** $h^{(l)}$ (doc 001 §4.2). Every block has
# the same shape in and out, (B, S, C), so blocks stack as deep as you like.
# `output_hidden_states=True` returns all $L+1$ of them; the loop checks the recurrence.

# %%
with torch.no_grad():
    out = encoder(batch["input_ids"], batch["attention_mask"], output_hidden_states=True)
hidden = out.hidden_states
assert len(hidden) == cfg.n_layers + 1 and torch.equal(hidden[-1], out.last_hidden_state)
assert torch.allclose(hidden[0], h0)
with torch.no_grad():
    for l, blk in enumerate(encoder.layers, start=1):
        h_l, _, _ = blk(hidden[l - 1], mask=mask)
        assert torch.allclose(h_l, hidden[l], atol=1e-6), l  # h^(l) = Block_l(h^(l-1))
print(f"{len(hidden)} hidden states of shape {tuple(hidden[0].shape)} (B, S, C)")

# %% [markdown]
# What the layers do to the first sentence: each panel shows the tokens (rows) by the first 32
# features (columns) of $h^{(l)}$; the right-hand plot measures how much each block changes the
# vectors, $\lVert h^{(l)} - h^{(l-1)}\rVert / \lVert h^{(l-1)}\rVert$. Untrained, the blocks change
# little: their weights start small ($\sigma = 0.02$), so each sublayer adds almost nothing and
# the residual path carries $h$ through almost unchanged — every block starts close to the
# identity, which is one reason a deep stack can be trained at all (exercise 2). Pretraining
# (chapter 04) teaches the blocks to transform it.

# %%
n_real = int(batch["attention_mask"][0].sum())
tokens0 = tokenizer.convert_ids_to_tokens(batch["input_ids"][0, :n_real].tolist())
fig, axes = plt.subplots(1, len(hidden) + 1, figsize=(3.2 * (len(hidden) + 1), 3.6))
for l, (ax, h) in enumerate(zip(axes, hidden)):
    ax.imshow(h[0, :n_real, :32].cpu(), cmap="RdBu_r", vmin=-3, vmax=3, aspect="auto")  # (T, 32)
    ax.set_title(f"$h^{{({l})}}$" + (" (embeddings)" if l == 0 else ""))
    ax.set_yticks(range(n_real), tokens0 if l == 0 else [""] * n_real)
    ax.set_xlabel("feature")
change = [((hidden[l] - hidden[l - 1])[real].norm() / hidden[l - 1][real].norm()).item()
          for l in range(1, len(hidden))]
axes[-1].bar(range(1, len(hidden)), change)
axes[-1].set_xlabel("block l")
axes[-1].set_title("relative change\n$|h^{(l)} - h^{(l-1)}| / |h^{(l-1)}|$")
axes[-1].set_xticks(range(1, len(hidden)))
fig.tight_layout()
plt.show()
assert all(c < 0.3 for c in change)  # untrained blocks barely move the vectors
print("relative change per block:", [round(c, 3) for c in change])

# %% [markdown]
# Padding does not leak through the stack: the second sentence encoded alone gives the same
# hidden states, at every layer, as inside the padded batch.

# %%
alone = tokenizer(texts[1], return_tensors="pt").to(device)
n2 = alone["input_ids"].shape[1]
with torch.no_grad():
    solo = encoder(alone["input_ids"], alone["attention_mask"], output_hidden_states=True).hidden_states
for l in range(len(hidden)):
    assert torch.allclose(hidden[l][1, :n2], solo[l][0], atol=1e-5), l
print(f"sentence 2: {n2} real tokens, identical alone and padded, at all {len(hidden)} layers")

# %% [markdown]
# ## 3 · Counting parameters
#
# A model's **parameter count (参数量)** is how many learned numbers it holds: it sets the
# memory the model needs and, roughly, the compute per token. Where are the weights? With vocabulary $V$, position table $P$, $2$ segment types, width $C$,
# feed-forward width $d_{ff}$ and $L$ layers:
#
# | part | parameters |
# |---|---|
# | embeddings | $(V + P + 2)\,C + 2C$ (three tables, one LayerNorm) |
# | attention, per layer | $4\,(C^2 + C)$ (query, key, value, output, with biases) |
# | feed-forward, per layer | $(C\,d_{ff} + d_{ff}) + (d_{ff}\,C + C)$ |
# | LayerNorms, per layer | $2 \cdot 2C$ |
# | pooler | $C^2 + C$ |
#
# With the usual $d_{ff} = 4C$ a layer has $4C^2 + 4C + 8C^2 + 5C + 4C = 12C^2 + 13C$ parameters.
#
# The formula in code, compared with `count_parameters` on the lab's model — and on
# bert-base, built on PyTorch's `meta` device, which records shapes but allocates no memory, so
# 110 million parameters cost nothing.

# %%
def bert_parameters(c: TransformerConfig, pooler: bool = True) -> dict[str, int]:
    C, F_, L = c.d_model, c.d_ff, c.n_layers
    return {
        "embeddings": (c.vocab_size + c.max_position + c.type_vocab_size) * C + 2 * C,
        "attention": L * 4 * (C * C + C),
        "feed-forward": L * ((C * F_ + F_) + (F_ * C + C)),
        "layer norms": L * 2 * 2 * C,
        "pooler": C * C + C if pooler else 0,
    }


bert_base = TransformerConfig.bert_base()
with torch.device("meta"):
    base_encoder = Encoder(bert_base)
assert sum(bert_parameters(cfg).values()) == count_parameters(encoder)
assert sum(bert_parameters(bert_base).values()) == count_parameters(base_encoder) == 109_482_240
C_ = bert_base.d_model  # with d_ff = 4C, one layer has 12C² + 13C parameters
assert bert_parameters(bert_base)["attention"] + bert_parameters(bert_base)["feed-forward"] \
    + bert_parameters(bert_base)["layer norms"] == bert_base.n_layers * (12 * C_**2 + 13 * C_)

from transformers import BertConfig, BertModel

with torch.device("meta"):
    hf_base = BertModel(BertConfig())  # transformers' defaults are bert-base-uncased's sizes
assert sum(p.numel() for p in hf_base.parameters()) == 109_482_240
print(f"lab encoder ({LAB_SCALE}): {count_parameters(encoder):,}   bert-base: {count_parameters(base_encoder):,} "
      "(labkit, formula and transformers agree)")

# %% [markdown]
# The shares tell a story: in the lab's ci and cpu models most weights are the embedding tables
# (a 64-wide model with thousands of vocabulary entries); in bert-base the layers dominate. The
# layers grow with $C^2$, the embeddings only with $C$.

# %%
configs = {f"lab {name}": s.model for name, s in SCALES.items()} | {"bert-base": bert_base}
parts = list(bert_parameters(bert_base))
fig, ax = plt.subplots(figsize=(8, 3))
left = [0.0] * len(configs)
for part in parts:
    shares = [bert_parameters(c)[part] / sum(bert_parameters(c).values()) for c in configs.values()]
    ax.barh(list(configs), shares, left=left, label=part)
    left = [a + b for a, b in zip(left, shares)]
ax.set_xlabel("share of the parameters")
ax.legend(ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8)
ax.set_xlim(0, 1)
plt.show()

embedding_share = {name: bert_parameters(c)["embeddings"] / sum(bert_parameters(c).values()) for name, c in configs.items()}
assert embedding_share["lab ci"] > 0.5 and embedding_share["lab cpu"] > 0.5  # tiny models: mostly embeddings
assert embedding_share["bert-base"] < 0.25  # bert-base: mostly layers
print({name: f"{share:.0%}" for name, share in embedding_share.items()}, "of the parameters are embeddings")

# %% [markdown]
# ## 4 · Beside `nn.TransformerEncoderLayer`
#
# doc 000 §5.2 builds its encoder from `nn.TransformerEncoderLayer(d_model, nhead)`. That is a
# Transformer block too, but its defaults are not BERT's:
#
# | setting | `nn.TransformerEncoderLayer` default | BERT / labkit |
# |---|---|---|
# | `activation` | `relu` | `gelu` (exact) |
# | `layer_norm_eps` | `1e-5` | `1e-12` |
# | `batch_first` | `False`: tensors are (T, B, C) | batch first: (B, T, C) |
# | `norm_first` | `False` (post-LN) | post-LN |
# | `dim_feedforward` | 2048 | `d_ff` |
# | padding | `src_key_padding_mask`, `True` = ignore | `attention_mask`, 1 = real token |
#
# Configured to match and given the lab's weights (its three input projections stacked into
# one `in_proj_weight`), it computes the same block:

# %%
def torch_layer_from(block, c: TransformerConfig, **overrides) -> nn.TransformerEncoderLayer:
    """An nn.TransformerEncoderLayer holding a labkit Block's weights."""
    kwargs = dict(d_model=c.d_model, nhead=c.n_heads, dim_feedforward=c.d_ff, dropout=c.dropout,
                  activation="gelu", layer_norm_eps=c.layer_norm_eps, batch_first=True, norm_first=False)
    layer = nn.TransformerEncoderLayer(**(kwargs | overrides)).to(device).eval()
    a = block.attn
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([a.query.weight, a.key.weight, a.value.weight]))  # (3C, C)
        layer.self_attn.in_proj_bias.copy_(torch.cat([a.query.bias, a.key.bias, a.value.bias]))  # (3C,)
        layer.self_attn.out_proj.load_state_dict(a.output.state_dict())
        layer.linear1.load_state_dict(block.ff.up.state_dict())  # C -> d_ff
        layer.linear2.load_state_dict(block.ff.down.state_dict())  # d_ff -> C
        layer.norm1.load_state_dict(block.attn_norm.state_dict())
        layer.norm2.load_state_dict(block.ff_norm.state_dict())
    return layer


ignore = batch["attention_mask"] == 0  # torch's convention: True = ignore
with torch.no_grad():
    matched = torch_layer_from(block, cfg)(h0, src_key_padding_mask=ignore)
    diff = (matched - lab)[real].abs().max().item()
    variants = {name: (torch_layer_from(block, cfg, **kw)(h0, src_key_padding_mask=ignore) - lab)[real].abs().max().item()
                for name, kw in {"relu (nn's default)": dict(activation="relu"),
                                 "norm_first=True (pre-LN)": dict(norm_first=True)}.items()}
assert diff < 1e-5
assert all(d > 1e-3 for d in variants.values())  # clearly not the same block
print(f"configured like BERT: max |difference| = {diff:.1e}")
for name, d in variants.items():
    print(f"{name:>26}: max |difference| = {d:.2f}")

# %% [markdown]
# **Pre-LN (前置层归一化).** `norm_first=True` normalises the *input* of each sublayer instead,
# $h + \mathrm{MHA}(\mathrm{LN}(h))$, leaving the residual path untouched. GPT-2 and most recent
# large models use it because deep stacks train more stably; BERT, and this lab, keep post-LN.
# (Exercise 4 asks you to write it.)
#
# ## 5 · Beside 🤗 transformers' BERT
#
# `labkit.hf.to_hf` builds the `BertModel` with the same sizes and copies every tensor under its
# BERT name; `from_hf` goes back. If the architectures are truly the same, the outputs must be
# identical — embeddings, every layer's hidden states, the attention weights (transformers
# returns them with `attn_implementation="eager"`) and the [CLS] pooler.

# %%
from labkit.hf import from_hf, to_hf, transformers_name

hf_model = to_hf(encoder, attn_implementation="eager").eval()
assert type(hf_model).__name__ == "BertModel"
for key in ("embeddings.token.weight", "layers.0.attn.query.weight", "layers.0.ff.up.weight", "layers.0.ff_norm.bias"):
    print(f"{key:<28} → {transformers_name(encoder, key)}")

with torch.no_grad():
    ours = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                   output_hidden_states=True, output_attentions=True)
    theirs = hf_model(**batch, output_hidden_states=True, output_attentions=True)
    back = from_hf(hf_model).to(device).eval()(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])

hf_diff = {
    "last hidden state": (ours.last_hidden_state - theirs.last_hidden_state)[real].abs().max().item(),
    "pooler": (ours.pooler_output - theirs.pooler_output).abs().max().item(),
    "hidden states": max((a - b)[real].abs().max().item() for a, b in zip(ours.hidden_states, theirs.hidden_states)),
    "attentions": max((a - b).abs().max().item() for a, b in zip(ours.attentions, theirs.attentions)),
    "back with from_hf": (back.last_hidden_state - ours.last_hidden_state).abs().max().item(),
}
for name, d in hf_diff.items():
    print(f"{name:>18}: max |difference| = {d:.1e}")
assert all(d < 1e-5 for d in hf_diff.values())

# %% [markdown]
# Add BERT's masked-language-model head and you have doc 002's "BERT = Transformer + masked
# language model": `MaskedLM` ↔ `BertForMaskedLM`. The head scores every vocabulary entry at
# every position with a $V \times C$ matrix — and that matrix *is* the token-embedding table:
# **weight tying (权重绑定)**, one tensor used twice, so the head adds no $V\times C$ matrix of
# its own (exercise 3 counts what it does add). doc 000 §5.2's model ends with a separate
# `nn.Linear(embedding_dim, vocab_size)` instead; tying saves those $V \times C$ numbers, most of a
# small model's weights (section 3).

# %%
mlm = MaskedLM(cfg).to(device).eval()
hf_mlm = to_hf(mlm).eval()
with torch.no_grad():
    logits_diff = (mlm(batch["input_ids"], batch["attention_mask"]).logits
                   - hf_mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits)[real].abs().max().item()
assert type(hf_mlm).__name__ == "BertForMaskedLM" and logits_diff < 1e-4
assert mlm.head.embedding.weight is mlm.encoder.embeddings.token.weight  # tied
print(f"MaskedLM vs BertForMaskedLM: max |logit difference| = {logits_diff:.1e}")

# %% [markdown]
# ### The same code with real weights
#
# So far both sides held the mini model's weights. `labkit.real.load_real()` opens a genuine
# pretrained BERT, all-MiniLM-L6-v2 (6 blocks, width 384, 22.7M parameters, pretrained on English
# Wikipedia and books, then trained on a billion English sentence pairs), *into the lab's own `Encoder` class*. Below, transformers' `BertModel`
# opens the same folder, and both read a padded English batch. Chapter 05c puts this model to work.

# %%
from transformers import BertModel
from transformers.utils import logging as hf_logging

from labkit.real import load_real

hf_logging.disable_progress_bar()  # no "Loading weights" bar in the output
minilm = load_real()  # labkit's Encoder with the real weights (their SHA-256 digest is checked first)
hf_minilm = BertModel.from_pretrained(minilm.folder).eval()
english = minilm.tokenizer(["The weather is lovely today.", "A quiet hotel near the station with friendly staff."],
                           padding=True, return_tensors="pt")
not_pad = english["attention_mask"].bool()  # (B, T): True at real tokens
with torch.no_grad():
    ours_real = minilm.encoder(english["input_ids"], english["attention_mask"], english["token_type_ids"])
    theirs_real = hf_minilm(**english)
real_diff = {
    "last hidden state": (ours_real.last_hidden_state - theirs_real.last_hidden_state)[not_pad].abs().max().item(),
    "pooler": (ours_real.pooler_output - theirs_real.pooler_output).abs().max().item(),
}
print(f"{minilm.name}: {minilm.parameters:,} parameters, {minilm.encoder.config.n_layers} blocks, "
      f"width {minilm.encoder.config.d_model}")
for name, d in real_diff.items():
    print(f"{name:>18}: max |difference| = {d:.1e}")
assert all(d < 1e-5 for d in real_diff.values())

# %% [markdown]
# The lab's `Encoder` *is* a BERT: the code you took apart in this chapter runs a real
# pretrained model, number for number. What makes the real model better than the mini one is
# not its code but its size and the text it was pretrained on.

# %% [markdown]
# ## 6 · Looking inside: attention views
#
# Two viewers for the lab's own model. `labkit.viz.attention_explorer` draws with matplotlib
# and ipywidgets, so it works offline: sliders pick the layer and head. `labkit.viz.bertviz_view`
# opens the same attentions in [bertviz](https://github.com/jessevig/bertviz), whose interactive
# view loads its JavaScript from the internet *in your browser* — offline it shows an empty
# frame, but the cell still runs.
#
# By default this chapter looks at the freshly initialised model. Set `USE_PRETRAINED = True`
# after chapter 04 (or `labkit build`) to look at the pretrained one instead.

# %%
from labkit.viz import attention_explorer, bertviz_view, encoder_attentions

USE_PRETRAINED = False  # True: load (or pretrain, several minutes) the lab's pretrained model
if USE_PRETRAINED:
    from labkit.build import ensure_pretrained

    view_model, view_tokenizer = ensure_pretrained(LAB_SCALE)
    view_model = view_model.to(device).eval()
else:
    view_model, view_tokenizer = encoder, tokenizer
sentence = "Emma Smith founded Blue River Bank in Paris."
explorer = attention_explorer(view_model, view_tokenizer, sentence)

# %% [markdown]
# An untrained model's attention is almost uniform: its weights start tiny ($\sigma = 0.02$),
# so every score is close to 0 and softmax spreads evenly. Measured by the entropy of each
# attention row, compared with the uniform distribution's $\log T$:

# %%
tokens, attentions = encoder_attentions(view_model, view_tokenizer, sentence)
T = len(tokens)
entropy = torch.stack([-(a * a.clamp_min(1e-12).log()).sum(-1).mean() for a in attentions])  # one per layer
print(f"{T} tokens; mean row entropy per layer: {[round(e, 3) for e in entropy.tolist()]}; log T = {math.log(T):.3f}")
if not USE_PRETRAINED:
    assert (entropy > 0.99 * math.log(T)).all()  # nearly uniform before training

# %%
bertviz_view(view_model, view_tokenizer, sentence, kind="head")

# %% [markdown]
# ## Summary
#
# - A BERT block is $a = \mathrm{LN}(h + \mathrm{MHA}(h))$, $h' = \mathrm{LN}(a + \mathrm{FFN}(a))$ with
#   an exact-GELU feed-forward network; the encoder stacks $L$ of them over token + position +
#   segment embeddings: $h^{(l)} = \mathrm{Transformer}(h^{(l-1)})$.
# - Attention is the only part that moves information between positions; the feed-forward network
#   and layer normalisation work on each token vector on its own. The residual connection carries
#   the input past every sublayer, so an untrained block (tiny weights) is close to the identity,
#   and layer normalisation keeps each token vector at mean 0, variance 1.
# - Parameters: $(V+P+2)C + 2C$ for the embeddings, $12C^2 + 13C$ per layer when
#   $d_{ff} = 4C$, $C^2 + C$ for the pooler — 109,482,240 for bert-base, checked three ways.
# - `nn.TransformerEncoderLayer` is the same block once set to GELU, eps 1e-12 and batch-first;
#   `to_hf`/`from_hf` move the lab's encoder into transformers' `BertModel` and back with
#   identical outputs.
#
# ## Exercises
#
# Replace each `None` and run the cell; a ❌ comes with a hint, and running it again gives a
# stronger one. Each cell runs on its own (it builds its inputs from `labkit.exercises.ch02`).
# Solutions: `notebooks/solutions/ch02.py`.
#
# **Exercise 1 · Which part mixes positions?** `ch02.block_inputs()` gives a block and one
# sequence `h` of six token vectors. Change the vector at position `ch02.CHANGED_POSITION` only
# (on a copy of `h`), and find which *output* positions change — for the feed-forward network
# `block.ff`, for self-attention `block.attn` (query, key and value are all `h`) and for the whole
# block. Predict the three answers before you compute them. Then: if a Transformer had only
# feed-forward sublayers, what could it not do?

# %% tags=["exercise"]
import torch

from labkit.exercises import ch02

block, h = ch02.block_inputs()
print(block, tuple(h.shape), "changed position:", ch02.CHANGED_POSITION)
answer = None  # your code: {"feed-forward": [...], "attention": [...], "block": [...]}, lists of positions
ch02.check_mixing_positions(answer)

# %% [markdown]
# **Exercise 2 · What the residual path carries.** `ch02.switched_off_inputs()` gives a block
# whose two sublayers output zeros (their last linear layer is all zeros) and an input `h` whose
# token vectors are already normalised. Compute (a) the block's output, and (b) the output of the
# same block *without* its residual connections: $\mathrm{LN}_2(\mathrm{FFN}(\mathrm{LN}_1(\mathrm{MHA}(h))))$
# with $\mathrm{LN}_1$ = `block.attn_norm`, $\mathrm{LN}_2$ = `block.ff_norm`. Predict both first.
# Then: an untrained block's sublayers output almost zero. What does that mean for a stack of
# 12 untrained blocks with residual connections, and for one without?

# %% tags=["exercise"]
import torch

from labkit.exercises import ch02

block, h = ch02.switched_off_inputs()
answer = None  # your code: (with_residual, without_residual), two tensors of h's shape
ch02.check_residual_path(answer)

# %% [markdown]
# **Exercise 3 · The masked-LM head.** How many parameters does the masked-LM head add on top of
# the encoder for `ch02.MLM_HEAD_SIZES` (the cpu scale's configured sizes)? Read `LMHead` in
# `labkit/transformer.py`; mind the weight tying.

# %% tags=["exercise"]
from labkit.exercises import ch02

print(ch02.MLM_HEAD_SIZES)
answer = None  # your code: an int
ch02.check_mlm_head_parameters(answer)

# %% [markdown]
# **Exercise 4 · A pre-LN block.** Write the *pre-LN* version of a block as a function
# `pre_ln_block(block, h)`, using the lab block's own modules: $h + \mathrm{MHA}(\mathrm{LN}_1(h))$,
# then $+\,\mathrm{FFN}(\mathrm{LN}_2(\cdot))$ with $\mathrm{LN}_1$ = `block.attn_norm` and
# $\mathrm{LN}_2$ = `block.ff_norm`. The check compares it with
# `nn.TransformerEncoderLayer(norm_first=True)` holding the same weights. Which path from input to
# output is never normalised in a pre-LN stack?

# %% tags=["exercise"]
from labkit.exercises import ch02


def pre_ln_block(block, h):
    return None  # your code


answer = None  # your code: the function pre_ln_block, once it is written
ch02.check_pre_ln_block(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** *How far does an untrained block move its input?*
#
# - **Change** the initial weight scale `initializer_range` of `TransformerConfig` (BERT's 0.02,
#   then 0.2 and 1.0) and the depth `n_layers` (2, then 8), building a fresh `Encoder(cfg)` each
#   time. Optionally remove the residual connections with your code from exercise 2.
# - **Measure**, for the same random token ids and without any training: the relative change per
#   block, $\lVert h^{(l)} - h^{(l-1)}\rVert / \lVert h^{(l-1)}\rVert$, from
#   `encoder(ids, output_hidden_states=True).hidden_states`, and how uniform attention is (the mean
#   row entropy divided by $\log T$) from `encoder(ids, output_attentions=True).attentions`.
# - **A good answer** shows a small table or plot of both measures against the weight scale and the
#   depth; states what it finds (at 0.02 each block is close to the identity and attention is
#   nearly uniform; with larger weights the blocks overwrite their input and attention focuses on a
#   few keys before any training); and explains it with the residual connection and layer
#   normalisation — why a stack that starts near the identity is easier to train, and what
#   changes when the stack is deep. Claims are backed by the numbers measured, not by the text.
#
# The starter below runs in a second; extend it.

# %% tags=["experiment"]
import math

import torch

from labkit.transformer import Encoder, TransformerConfig

ids = torch.randint(5, 1000, (4, 16), generator=torch.Generator().manual_seed(0))  # (B, T) random token ids
for std in (0.02, 0.2):  # try 1.0 too, and n_layers=8
    toy_config = TransformerConfig(vocab_size=1000, d_model=64, n_layers=2, n_heads=4, d_ff=256, dropout=0.0,
                                   attention_dropout=0.0, initializer_range=std)
    torch.manual_seed(0)
    toy_encoder = Encoder(toy_config).eval()
    with torch.no_grad():
        out = toy_encoder(ids, output_hidden_states=True, output_attentions=True)
    h = out.hidden_states
    change = [((h[l] - h[l - 1]).norm() / h[l - 1].norm()).item() for l in range(1, len(h))]
    uniformity = [(-(a * a.clamp_min(1e-12).log()).sum(-1).mean() / math.log(ids.shape[1])).item() for a in out.attentions]
    print(f"initializer_range {std}: change per block {[round(c, 2) for c in change]}, "
          f"attention entropy / log T {[round(u, 2) for u in uniformity]}")

# %% [markdown] tags=["teacher"]
# **For teachers.** Sections 1–2 and exercises 1–2 carry the chapter's main idea (what each part
# of a block does); sections 4–6 are for readers who want to see that the lab's model *is* BERT and
# can be skimmed in a short class. Allow 15 minutes for exercises 1–2 and ask for the predictions
# aloud before anyone runs code.
#
# Common misconceptions: that the feed-forward network "looks at the sentence" (it sees one token
# vector at a time — exercise 1); that layer normalisation normalises over the batch or over the
# positions (it is per token, over the $C$ features — section 1's assert); that the residual
# connection is an optimisation detail (exercise 2: without it, a block that outputs nothing erases
# its input); that weight tying shares the embeddings between layers (it shares the input
# embedding table with the output projection of the masked-LM head).
#
# The open experiment works well in pairs: one pair per weight scale, then pool the table on
# the board. It needs no build and no training, so it runs anywhere in seconds.
