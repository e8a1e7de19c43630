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
# # Chapter 01 · Self-attention (自注意力)
#
# Self-attention is the operation that lets every word of a sentence look at every other word
# and decide which ones matter for it — however far apart they are, which is how a Transformer
# captures **long-range dependencies (长距离依赖)**. It is the core of the Transformer, and so of
# every foundation model in this lab.
#
# **Learning objectives.** After this chapter you can
# 1. compute attention by hand — score → softmax → weighted sum — and in matrix form,
#    $\mathrm{Attention}(Q,K,V)=\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$;
# 2. explain, with a measurement, why the scores are divided by $\sqrt{d_k}$;
# 3. build causal and padding masks and say what a fully masked row gives;
# 4. split attention into heads, and show that attention alone ignores word order until
#    position embeddings are added;
# 5. check that the lab's attention equals PyTorch's `F.scaled_dot_product_attention` and
#    `nn.MultiheadAttention`.
#
# **Prerequisites.** Chapter 00; matrix multiplication; the softmax function.
#
# **Estimated time:** about 60 minutes to read and do; the code runs in about 20 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Source documents.** doc 000 §3.1 (attention captures long-range dependencies), §4.1–4.2
# (score → softmax → weighted sum); doc 004 §3.1 (multi-head attention), §4.1–4.2 (the scaled
# dot-product formula and its three steps).
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

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from labkit.attention import MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention
from labkit.env import best_device
from labkit.training import seed_everything
from labkit.viz import attention_heads, attention_heatmap

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
N_SAMPLES = {"ci": 2_000, "cpu": 20_000, "gpu": 100_000}[LAB_SCALE]  # draws per measurement in §3
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
parity = {}  # max |difference| of each comparison with PyTorch, collected for §7
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# ## 1 · Score → softmax → weighted sum
#
# Take a sentence of $n$ words with vectors $e_1,\dots,e_n$. Self-attention gives each word
# $i$ a new **context vector (上下文向量)** $c_i$ — its vector mixed with those of the words
# around it — in three steps (doc 000 §4.2):
#
# 1. **score** every pair: $s_{ij} = e_i \cdot e_j$ (how well word $j$ matches what word $i$ looks for);
# 2. **softmax** each row into **attention weights (注意力权重)**:
#    $a_{ij} = \dfrac{\exp(s_{ij})}{\sum_{k=1}^{n}\exp(s_{ik})}$ — positive, and summing to 1 over $j$;
# 3. **weighted sum**: $c_i = \sum_{j=1}^{n} a_{ij}\, e_j$.
#
# A toy example with hand-picked 3-dimensional vectors: "cat" and "sat" point the same way,
# "the" points elsewhere.

# %%
tokens = ["the", "cat", "sat", "down"]
E = torch.tensor([[1.0, 0.0, 0.0],   # the
                  [0.0, 2.0, 1.0],   # cat
                  [0.0, 1.0, 2.0],   # sat
                  [1.0, 0.0, 1.0]])  # down
n, d = E.shape

scores = torch.zeros(n, n)
for i in range(n):
    for j in range(n):
        scores[i, j] = torch.dot(E[i], E[j])  # step 1: s_ij = e_i · e_j

weights = torch.zeros(n, n)
for i in range(n):
    total = sum(math.exp(scores[i, k]) for k in range(n))
    for j in range(n):
        weights[i, j] = math.exp(scores[i, j]) / total  # step 2: a_ij = exp(s_ij) / Σ_k exp(s_ik)

context = torch.zeros(n, d)
for i in range(n):
    for j in range(n):
        context[i] += weights[i, j] * E[j]  # step 3: c_i = Σ_j a_ij e_j

print("scores\n", scores, "\nweights\n", weights.round(decimals=3), "\ncontext\n", context.round(decimals=3))

# %% [markdown]
# The loops are the formulas; the matrix form does all pairs at once: $S = EE^\top$,
# $A = \mathrm{softmax}(S)$ row by row, $C = AE$. The checks below confirm the formulas: each row of
# weights sums to 1, and both forms agree.

# %%
assert torch.allclose(scores, E @ E.T)  # (n, d) @ (d, n) -> (n, n)
assert torch.allclose(weights, torch.softmax(E @ E.T, dim=-1))
assert torch.allclose(weights.sum(dim=-1), torch.ones(n))  # a probability distribution per word
assert torch.allclose(context, weights @ E, atol=1e-6)  # (n, n) @ (n, d) -> (n, d)

attention_heatmap(weights, tokens, title="who attends to whom (unscaled dot products)")
plt.show()

cat, sat, the = tokens.index("cat"), tokens.index("sat"), tokens.index("the")
assert set(weights[cat].topk(2).indices.tolist()) == {cat, sat} and weights[cat, [cat, sat]].sum() > 0.9
assert weights[the].max() < 0.5  # "the" has no favourite: no weight above one half

# %% [markdown]
# "cat" gives more than 90% of its attention to itself and "sat"; "the" spreads its attention,
# with no weight above one half (both checked above). The lab's
# `scaled_dot_product_attention` divides the scores by $\sqrt{d}$ (section 3 explains why), so
# feeding it $\sqrt{d}\,E$ as the queries reproduces the unscaled version above exactly:

# %%
lab_context, lab_weights = scaled_dot_product_attention(E * math.sqrt(d), E, E)
assert torch.allclose(lab_weights, weights, atol=1e-6) and torch.allclose(lab_context, context, atol=1e-5)
print("labkit agrees with the three steps")

# %% [markdown]
# ## 2 · Queries, keys and values
#
# Using the same vector $e_i$ for "what I look for", "what I offer" and "what I pass on" is
# restrictive. A Transformer learns three projections of the input $X$ (shape $T\times C$):
# the **query (查询)** $Q = XW_Q$ (what each word looks for), the **key (键)** $K = XW_K$ (what
# each word offers to be found by) and the **value (值)** $V = XW_V$ (what each word passes on).
# Then **scaled dot-product attention (缩放点积注意力)** is (doc 004 §4.1)
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V,$$
#
# where $d_k$ is the size of a query/key vector. Below, the formula written inline as a
# teaching snippet, on a batch of $B=2$ sequences of $T=5$ tokens; then compared with
# `labkit.attention.scaled_dot_product_attention` and PyTorch's fused
# `F.scaled_dot_product_attention`.

# %%
def attention(q, k, v, mask=None):
    """softmax(QKᵀ/√d_k) V, written out; mask: True = may attend."""
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T, d_k) @ (..., d_k, S) -> (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., T, S), each row sums to 1
    return weights @ v, weights  # (..., T, S) @ (..., S, d_v) -> (..., T, d_v)


B, T, C, d_k = 2, 5, 16, 8
X = torch.randn(B, T, C, device=device)
W_Q, W_K, W_V = (nn.Linear(C, d_k, bias=False).to(device) for _ in range(3))
Q, K, V = W_Q(X), W_K(X), W_V(X)  # each (B, T, d_k)
out, w = attention(Q, K, V)
assert Q.shape == (B, T, d_k) and out.shape == (B, T, d_k) and w.shape == (B, T, T)

lab_out, lab_w = scaled_dot_product_attention(Q, K, V)
torch_out = F.scaled_dot_product_attention(Q, K, V)
assert torch.allclose(out, lab_out, atol=1e-6) and torch.allclose(w, lab_w, atol=1e-6)
parity["labkit vs F.scaled_dot_product_attention"] = (lab_out - torch_out).abs().max().item()
assert parity["labkit vs F.scaled_dot_product_attention"] < 1e-5
print(f"max |labkit − torch| = {parity['labkit vs F.scaled_dot_product_attention']:.1e}")

# %% [markdown]
# ## 3 · Why divide by $\sqrt{d_k}$?
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1, then
# $q\cdot k = \sum_{m=1}^{d_k} q_m k_m$ is a sum of $d_k$ independent terms of variance 1, so
#
# $$\mathrm{Var}(q\cdot k) = d_k, \qquad \mathrm{Var}\!\left(\frac{q\cdot k}{\sqrt{d_k}}\right) = 1 .$$
#
# Measured, not just derived: draw `N_SAMPLES` random pairs for each $d_k$ and compute the
# variance of the scores.

# %%
dims = [2**p for p in range(11)]  # d_k = 1, 2, 4, ..., 1024
g = torch.Generator().manual_seed(0)
raw_var, scaled_var = [], []
for dk in dims:
    q, k = torch.randn(N_SAMPLES, dk, generator=g), torch.randn(N_SAMPLES, dk, generator=g)
    s = (q * k).sum(-1)  # N_SAMPLES dot products
    raw_var.append(s.var().item())
    scaled_var.append((s / math.sqrt(dk)).var().item())

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(dims, raw_var, "o-", label=r"Var$(q\cdot k)$ measured")
ax.loglog(dims, dims, "k:", label=r"$d_k$ (theory)")
ax.loglog(dims, scaled_var, "s-", label=r"Var$(q\cdot k/\sqrt{d_k})$ measured")
ax.set_xlabel(r"$d_k$")
ax.set_ylabel("variance of the scores")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

for dk, rv, sv in zip(dims, raw_var, scaled_var):
    assert abs(rv / dk - 1) < 0.15, (dk, rv)  # Var(q·k) ≈ d_k
    assert abs(sv - 1) < 0.15, (dk, sv)  # Var(q·k/√d_k) ≈ 1

# %% [markdown]
# Why does the size of the scores matter? Softmax is sensitive to *differences* between
# scores. With scores of standard deviation $\sqrt{d_k}$ — 32 at $d_k=1024$ — one key wins by a
# huge margin and softmax becomes (almost) one-hot: the query ignores every other word, and
# the gradient through softmax, whose Jacobian is $\mathrm{diag}(a) - aa^\top$, vanishes. Move
# the slider to see it for one query and eight keys.

# %%
def softmax_bars(d_k: int = 64):
    g = torch.Generator().manual_seed(1)
    q, keys = torch.randn(d_k, generator=g), torch.randn(8, d_k, generator=g)
    s = keys @ q  # (8,) raw scores
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), sharey=True)
    for ax, weights, title in ((axes[0], torch.softmax(s, -1), "softmax(q·k)  — unscaled"),
                               (axes[1], torch.softmax(s / math.sqrt(d_k), -1), r"softmax(q·k/$\sqrt{d_k}$)")):
        ax.bar(range(8), weights.numpy(), color="tab:blue")
        ax.set_title(f"{title}, d_k = {d_k}")
        ax.set_xlabel("key")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("weight")
    plt.show()


widgets.interact(softmax_bars, d_k=widgets.SelectionSlider(options=dims, value=64, description="d_k"));

# %% [markdown]
# The same effect averaged over many queries: the largest weight in a row, and the size of
# the softmax Jacobian (how much gradient flows back to the scores).

# %%
def saturation(dk: int, scale: bool, n: int = 500, T: int = 8) -> tuple[float, float]:
    """Mean largest softmax weight and mean Frobenius norm of the softmax Jacobian, over n queries."""
    g = torch.Generator().manual_seed(dk)
    q, k = torch.randn(n, 1, dk, generator=g), torch.randn(n, T, dk, generator=g)
    s = (q @ k.transpose(1, 2)).squeeze(1)  # (n, 1, dk) @ (n, dk, T) -> (n, T)
    a = torch.softmax(s / math.sqrt(dk) if scale else s, dim=-1)  # (n, T)
    jac = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]  # (n, T, T): ∂a/∂s = diag(a) − aaᵀ
    return a.max(-1).values.mean().item(), jac.flatten(1).norm(dim=-1).mean().item()


s = torch.randn(8)  # check the Jacobian formula against autograd once
a = torch.softmax(s, -1)
assert torch.allclose(torch.autograd.functional.jacobian(lambda z: torch.softmax(z, -1), s),
                      torch.diag(a) - torch.outer(a, a), atol=1e-6)

rows = {scale: [saturation(dk, scale) for dk in dims] for scale in (False, True)}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
for scale, label in ((False, "unscaled"), (True, r"scaled by $1/\sqrt{d_k}$")):
    axes[0].semilogx(dims, [r[0] for r in rows[scale]], "o-", label=label)
    axes[1].semilogx(dims, [r[1] for r in rows[scale]], "o-", label=label)
axes[0].set_ylabel("mean largest weight (1 = one-hot)")
axes[1].set_ylabel("mean |softmax Jacobian|")
for ax in axes:
    ax.set_xlabel(r"$d_k$")
    ax.legend()
    ax.grid(alpha=0.3)
plt.show()

max_raw, jac_raw = rows[False][dims.index(512)]
max_scaled, jac_scaled = rows[True][dims.index(512)]
assert max_raw > 0.9 and max_scaled < 0.7  # unscaled softmax is nearly one-hot at d_k = 512
assert jac_raw < 0.25 * jac_scaled  # ... and passes back far less gradient
print(f"d_k=512: largest weight {max_raw:.2f} unscaled vs {max_scaled:.2f} scaled; "
      f"Jacobian norm {jac_raw:.3f} vs {jac_scaled:.3f}")

# %% [markdown]
# ## 4 · Masks: who may attend to whom
#
# A boolean **mask (掩码)** (in the lab, `True` = "may attend") sets the forbidden scores to
# $-\infty$ before the softmax, so their weights become exactly 0 and the allowed keys share all
# of the weight.
#
# **Causal mask (因果掩码).** A model that generates text left to right (a decoder, chapter 07)
# must not peek at later words: query $i$ may see keys $0..i$ only. The example sentence is
# Chinese this time, 「我们喜欢小模型。」 ("we like small models."), cut into five tokens.

# %%
T = 5
words = ["我们", "喜欢", "小", "模型", "。"]
mask = causal_mask(T)  # (T, T) lower triangle
x = torch.randn(1, T, 8)
_, w_causal = scaled_dot_product_attention(x, x, x, mask=mask)

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
attention_heatmap(mask.float(), words, ax=axes[0], title="causal_mask(5): True = may attend")
attention_heatmap(w_causal[0], words, ax=axes[1], title="attention weights with it")
fig.tight_layout()
plt.show()

assert torch.equal(w_causal[0].triu(diagonal=1), torch.zeros(T, T))  # nothing above the diagonal
assert torch.allclose(w_causal.sum(-1), torch.ones(1, T))

# %% [markdown]
# The property that matters: with a causal mask, changing a *later* token cannot change an
# *earlier* output.

# %%
x_changed = x.clone()
x_changed[:, -1] = torch.randn(8)  # replace the last token
out_a, _ = scaled_dot_product_attention(x, x, x, mask=mask)
out_b, _ = scaled_dot_product_attention(x_changed, x_changed, x_changed, mask=mask)
assert torch.allclose(out_a[:, :-1], out_b[:, :-1])  # positions 0..T-2 unchanged
assert not torch.allclose(out_a[:, -1], out_b[:, -1])
print("earlier outputs do not depend on later tokens")

# %% [markdown]
# **Padding mask.** Sentences in a batch have different lengths, so shorter ones are filled up
# with `[PAD]` tokens — **padding (填充)**. A tokenizer returns an `attention_mask` (1 = real
# token, 0 = padding); `padding_mask` turns it into a boolean mask of shape (B, 1, 1, S) that
# broadcasts over heads and queries. No query may attend to a padding key — and then the padding cannot change any
# real token's output. The second sentence is 「今天天气怎么样」 ("what is the weather like
# today"), three tokens and two `[PAD]`.

# %%
attention_mask = torch.tensor([[1, 1, 1, 1, 1],
                               [1, 1, 1, 0, 0]])  # second sequence: 3 real tokens + 2 [PAD]
pm = padding_mask(attention_mask)  # (B, 1, 1, S)
assert pm.shape == (2, 1, 1, 5)
x = torch.randn(2, 1, 5, 8)  # (B, nh=1, T, d)
out, w = scaled_dot_product_attention(x, x, x, mask=pm)
assert torch.equal(w[1, 0, :, 3:], torch.zeros(5, 2))  # padding keys get weight 0

short, _ = scaled_dot_product_attention(x[1:, :, :3], x[1:, :, :3], x[1:, :, :3])  # the 3 real tokens alone
assert torch.allclose(out[1:, :, :3], short, atol=1e-6)  # padding changes nothing for real tokens
attention_heatmap(w[1, 0], ["今天", "天气", "怎么样", "[PAD]", "[PAD]"], title="padded sequence: weights")
plt.show()

# %% [markdown]
# **A fully masked row.** What if a query may attend to *nothing* (for example a padding query
# under a combined mask)? Softmax over $(-\infty,\dots,-\infty)$ is $0/0$ = NaN, and one NaN spreads
# through every later layer. The lab defines such a row as all-zero weights and a zero output.
# PyTorch's fused kernel is printed beside it for comparison; the lab's answer does not depend
# on which PyTorch version you have.

# %%
row_mask = torch.tensor([[True, True, False],
                         [False, False, False],  # query 1 may attend to nothing
                         [True, True, True]])
q = k = v = torch.randn(3, 4)
naive = torch.softmax((q @ k.T / 2).masked_fill(~row_mask, float("-inf")), dim=-1)
lab_out, lab_w = scaled_dot_product_attention(q, k, v, mask=row_mask)
torch_out = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=row_mask)[0]

assert torch.isnan(naive[1]).all()  # plain softmax: NaN
assert torch.equal(lab_w[1], torch.zeros(3)) and torch.equal(lab_out[1], torch.zeros(4))  # labkit: zeros
assert torch.allclose(lab_out[[0, 2]], torch_out[[0, 2]], atol=1e-6)  # the other rows agree with torch
print("naive softmax row:", naive[1].tolist())
print("labkit output row:", lab_out[1].tolist())
print(f"torch {torch.__version__} output row:", torch_out[1].tolist())

# %% [markdown]
# ## 5 · Multi-head attention
#
# One softmax gives one way of mixing the words. **Multi-head attention (多头注意力)** runs $n_h$
# smaller attentions in parallel — each head has its own projections of size $h_s = C/n_h$ and can
# specialise (one on the previous word, one on the subject, …) — then concatenates them and
# mixes the result with an output projection $W_O$ (doc 004 §3.1):
#
# $$\mathrm{head}_h = \mathrm{Attention}(XW_Q^{h}, XW_K^{h}, XW_V^{h}), \qquad
# \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1,\dots,\mathrm{head}_{n_h})\,W_O .$$
#
# `labkit.attention.MultiHeadAttention` does this with one $C\times C$ projection each for
# queries, keys and values, whose columns are split into heads. The teaching snippet below
# rebuilds its forward pass step by step, with the shapes written on each line.

# %%
C, nh = 16, 4
mha = MultiHeadAttention(d_model=C, n_heads=nh).to(device).eval()
sentence = ["the", "film", "was", "not", "bad", "at", "all"]
x = torch.randn(1, len(sentence), C, device=device)  # (B, T, C)

B, T, _ = x.shape
hs = C // nh
q = mha.query(x).view(B, T, nh, hs).transpose(1, 2)  # (B, T, C) -> (B, T, nh, hs) -> (B, nh, T, hs)
k = mha.key(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
v = mha.value(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
heads, head_weights = attention(q, k, v)  # (B, nh, T, hs), (B, nh, T, T): every head at once
concat = heads.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) -> (B, T, nh, hs) -> (B, T, C)
y = mha.output(concat)  # (B, T, C) @ W_O

lab_y, lab_w = mha(x, x, x, need_weights=True)  # the teaching path, which returns the weights
fast_y, none = mha(x, x, x)  # the fast path: torch's fused kernel, no weights
assert lab_w.shape == (B, nh, T, T) and none is None
assert torch.allclose(y, lab_y, atol=1e-6) and torch.allclose(head_weights, lab_w, atol=1e-6)
assert torch.allclose(lab_y, fast_y, atol=1e-5)
attention_heads((lab_w.cpu(),), sentence, layer=0)
plt.show()
favourite = lab_w[0].argmax(-1)  # (nh, T): the key each head's query attends to most
assert len({tuple(f.tolist()) for f in favourite}) > 1  # the heads do not all agree

# %% [markdown]
# The heads of an untrained layer already look at different words (checked above: their
# favourite keys differ), but for no reason yet; pretraining (chapter 04) gives them reasons.
#
# **Beside PyTorch.** `nn.MultiheadAttention` computes the same thing but stores the three
# input projections as one stacked matrix `in_proj_weight` and, for padding, takes a
# `key_padding_mask` where `True` means *ignore* — the opposite of the lab's convention. Copy
# the lab's weights into it and compare, per head, on a padded batch:

# %%
torch_mha = nn.MultiheadAttention(C, nh, batch_first=True).to(device).eval()
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(torch.cat([mha.query.weight, mha.key.weight, mha.value.weight]))  # (3C, C)
    torch_mha.in_proj_bias.copy_(torch.cat([mha.query.bias, mha.key.bias, mha.value.bias]))  # (3C,)
    torch_mha.out_proj.weight.copy_(mha.output.weight)
    torch_mha.out_proj.bias.copy_(mha.output.bias)

x2 = torch.randn(2, 6, C, device=device)
am = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], device=device)
ours, our_w = mha(x2, x2, x2, mask=padding_mask(am), need_weights=True)
theirs, their_w = torch_mha(x2, x2, x2, key_padding_mask=(am == 0), average_attn_weights=False)
real = am.bool()  # compare real tokens only
parity["labkit vs nn.MultiheadAttention (outputs)"] = (ours - theirs)[real].abs().max().item()
parity["labkit vs nn.MultiheadAttention (weights)"] = (our_w - their_w).abs().max().item()
assert max(parity["labkit vs nn.MultiheadAttention (outputs)"], parity["labkit vs nn.MultiheadAttention (weights)"]) < 1e-5
print({k_: f"{v_:.1e}" for k_, v_ in parity.items()})

# %% [markdown]
# ## 6 · Attention has no sense of order
#
# Nothing in $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ looks at *where* a word is. Shuffle the
# input tokens and the outputs are shuffled the same way. This is **permutation equivariance
# (置换等变性)**: $\mathrm{Attn}(PX) = P\,\mathrm{Attn}(X)$ for any permutation $P$.

# %%
perm = torch.randperm(T)
out, _ = mha(x, x, x)
out_shuffled, _ = mha(x[:, perm], x[:, perm], x[:, perm])
assert torch.allclose(out_shuffled, out[:, perm], atol=1e-6)
print("Attn(PX) == P·Attn(X) for perm", perm.tolist())

# %% [markdown]
# So "dog bites man" and "man bites dog" give "dog" *exactly* the same vector (checked below).
# Word order has to be put into the input. BERT — and the lab's `Embeddings` module — adds a
# learned **position embedding (位置嵌入)** $p_t$ to each token embedding: $x_t = e_{w_t} + p_t$
# (plus a segment embedding, then a LayerNorm, chapter 02). The original Transformer used a
# fixed **positional encoding (位置编码)** of sines and cosines instead; either way, after it the
# two sentences differ.

# %%
from labkit.transformer import Encoder, TransformerConfig

vocab = {"dog": 5, "bites": 6, "man": 7}
cfg = TransformerConfig(vocab_size=10, d_model=C, n_heads=nh, n_layers=1, max_position=16, dropout=0.0)
embeddings = Encoder(cfg).embeddings.to(device).eval()  # token + position + segment, LayerNorm
s1 = torch.tensor([[vocab["dog"], vocab["bites"], vocab["man"]]], device=device)
s2 = torch.tensor([[vocab["man"], vocab["bites"], vocab["dog"]]], device=device)
with torch.no_grad():  # x_t = LN(e_w + p_t + segment): the lab's embeddings follow the formula
    positions = torch.arange(3, device=device)
    x_formula = embeddings.norm(embeddings.token(s1) + embeddings.position(positions)
                                + embeddings.token_type(torch.zeros_like(s1)))
    assert torch.allclose(embeddings(s1), x_formula, atol=1e-6)


def dog_vector(ids, with_positions: bool):
    """The attention output at the position of 'dog'."""
    if with_positions:
        h = embeddings(ids)  # (1, 3, C): e_w + p_t + segment, normalised
    else:
        h = embeddings.norm(embeddings.token(ids) + embeddings.token_type(torch.zeros_like(ids)))  # no p_t
    out, _ = mha(h, h, h)
    return out[0, (ids[0] == vocab["dog"]).nonzero().item()]


with torch.no_grad():
    gap_without = (dog_vector(s1, False) - dog_vector(s2, False)).abs().max().item()
    gap_with = (dog_vector(s1, True) - dog_vector(s2, True)).abs().max().item()
assert gap_without < 1e-6  # without positions: identical
assert gap_with > 1e-3  # with positions: the sentences differ
print(f"'dog' in the two sentences differs by {gap_without:.1e} without positions, {gap_with:.3f} with them")

# %% [markdown]
# ## 7 · The lab's attention equals PyTorch's
#
# Every comparison with PyTorch in this chapter, in one table:

# %%
for name, diff in parity.items():
    print(f"{name:<46} max |difference| = {diff:.1e}")
assert all(diff < 1e-5 for diff in parity.values()) and len(parity) == 3

# %% [markdown]
# ## Summary
#
# - Attention is score → softmax → weighted sum:
#   $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$, with learned projections for queries, keys, values.
# - Dividing by $\sqrt{d_k}$ keeps the score variance at 1 whatever the head size; without it
#   softmax saturates and its gradient vanishes (measured above).
# - Masks set forbidden scores to $-\infty$ before the softmax: causal masks hide the future,
#   padding masks hide `[PAD]`, and the allowed keys share all of the weight; the lab gives a
#   fully masked row zeros instead of NaN.
# - Multi-head attention runs $n_h$ attentions of size $C/n_h$ side by side and mixes them with
#   $W_O$.
# - Attention alone is permutation-equivariant; position embeddings make order visible.
# - `labkit.attention` matches `F.scaled_dot_product_attention` and `nn.MultiheadAttention`.
#
# ## Exercises
#
# Replace each `None` and run the cell. Each cell runs on its own. Solutions:
# `notebooks/solutions/ch01.py`.
#
# **Exercise 1 (formula).** Compute the (4, 6) matrix of scaled scores $QK^\top/\sqrt{d_k}$ for
# the queries and keys below — no softmax yet.

# %% tags=["exercise"]
import math

import torch

from labkit.exercises import ch01

q, k = ch01.scaled_scores_inputs()  # (4, 8) queries, (6, 8) keys
answer = None  # your code: a (4, 6) tensor
ch01.check_scaled_scores(answer)

# %% [markdown]
# **Exercise 2 (implementation).** A decoder reads a batch of two target sequences of length 5;
# the second ends with two `[PAD]` tokens (`ch01.DECODER_ATTENTION_MASK`). Build its boolean
# attention mask: a query may attend to a key only if the key is not later *and* not padding.
# Any shape that broadcasts to (2, n_h, 5, 5) is fine.

# %% tags=["exercise"]
import torch

from labkit.attention import causal_mask, padding_mask
from labkit.exercises import ch01

print(ch01.DECODER_ATTENTION_MASK)
answer = None  # your code: a boolean mask, True = may attend
ch01.check_decoder_mask(answer)

# %% [markdown]
# **Exercise 3 (implementation).** Split the (B=2, T=5, C=12) tensor below into `nh = 3` heads:
# shape (B, nh, T, hs), where head $h$ of token $t$ holds that token's numbers $4h$ to $4h+3$.

# %% tags=["exercise"]
from labkit.exercises import ch01

x, nh = ch01.split_heads_inputs()
answer = None  # your code: a (2, 3, 5, 4) tensor
ch01.check_split_heads(answer)

# %% [markdown]
# **Exercise 4 (main idea: what a mask does).** One query's scaled scores over five keys are
# `ch01.MASKED_ROW_SCORES`; keys 3 and 4 are `[PAD]`, so `ch01.MASKED_ROW_MASK` forbids them
# (True = may attend). What are the query's five attention weights? Predict first: which key
# would win without the mask, and what happens to its weight with it? Then compute.

# %% tags=["exercise"]
import torch

from labkit.exercises import ch01

print("scores:", ch01.MASKED_ROW_SCORES)
print("mask:  ", ch01.MASKED_ROW_MASK)
answer = None  # your code: five weights
ch01.check_masked_row(answer)

# %% [markdown]
# **Exercise 5 (main idea: attention has no sense of order).** `out` holds the outputs of a
# self-attention layer *without* position embeddings for a sentence of six tokens, one row per
# token. The same six tokens are then shuffled: position $i$ of the shuffled sentence holds
# original token `perm[i]`. Without running any attention, give the layer's outputs for the
# shuffled sentence.

# %% tags=["exercise"]
from labkit.exercises import ch01

out, perm = ch01.permutation_inputs()  # (6, 4) outputs, and the shuffle
print("perm =", perm)
answer = None  # your code: a (6, 4) tensor
ch01.check_permuted_outputs(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** Why $\sqrt{d_k}$, and not $d_k$ or nothing at all? Try other divisors.
#
# - **Change:** the power of $d_k$ the scores are divided by — `EXPONENTS` in the cell below
#   (0 = no scaling, 0.5 = the Transformer's choice, 1 = divide by $d_k$ itself) — and, once
#   you have a picture, the number of keys `T`.
# - **Measure:** for $d_k$ from 16 to 1024, the mean largest weight of a softmax row and its
#   mean entropy, with `softmax_health(d_k, exponent)` below (both are compared with the
#   uniform row over `T` keys). For the gradient side, section 3's `saturation(dk, scale)` gives
#   the size of the softmax Jacobian.
# - **A good answer** shows that only the exponent 0.5 keeps both numbers roughly constant as
#   $d_k$ grows, and explains why with section 3's variance: the scores' spread is
#   $\sqrt{d_k}$. It describes the two ways to fail — a smaller exponent drifts towards one-hot
#   rows (largest weight → 1, entropy → 0, gradient → 0) and a larger one towards uniform rows
#   (largest weight → 1/T, entropy → log T), where a query can no longer single out a key. A
#   strong answer notes that the argument assumes unit-variance queries and keys, as at the
#   start of training, and that the learned projections can change the scale later.

# %% tags=["experiment"]
import math

import torch

EXPONENTS = (0.0, 0.25, 0.5, 1.0)  # divide the scores by d_k ** exponent
T = 16  # keys per query


def softmax_health(d_k: int, exponent: float, n: int = 400, seed: int = 0) -> tuple[float, float]:
    """Mean largest weight and mean entropy (nats) of softmax(q·k / d_k**exponent) over n random queries."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(n, 1, d_k, generator=g), torch.randn(n, T, d_k, generator=g)
    scores = (q @ k.transpose(1, 2)).squeeze(1) / d_k**exponent  # (n, 1, d_k) @ (n, d_k, T) -> (n, T)
    a = torch.softmax(scores, dim=-1)  # (n, T)
    entropy = -(a * a.clamp_min(1e-12).log()).sum(-1)  # (n,)
    return a.max(-1).values.mean().item(), entropy.mean().item()


print(f"uniform row over {T} keys: largest weight {1 / T:.2f}, entropy {math.log(T):.2f}")
print("divisor      d_k:  largest weight / entropy")
for exponent in EXPONENTS:
    row = []
    for d_k in (16, 64, 256, 1024):
        largest, entropy = softmax_health(d_k, exponent)
        row.append(f"{d_k:>4}: {largest:.2f} / {entropy:.2f}")
    print(f"d_k^{exponent:<4}   " + "   ".join(row))

# What a good answer finds, checked whatever EXPONENTS holds (for any T >= 2):
(largest_16, entropy_16), (largest_1024, entropy_1024) = softmax_health(16, 0.5), softmax_health(1024, 0.5)
assert abs(largest_16 - largest_1024) < 0.05 and abs(entropy_16 - entropy_1024) < 0.1  # √d_k: same rows at every size
assert softmax_health(1024, 0.0)[0] > 0.9  # no scaling: nearly one-hot at d_k = 1024
assert softmax_health(1024, 1.0)[0] < 2 / T  # dividing by d_k: nearly uniform

# %% [markdown] tags=["teacher"]
# **For teachers.** About 60 minutes: 15 for sections 1–2 (let students run the loops by hand
# for one row first), 15 for section 3, 15 for masks and heads, 15 for the exercises. Ask for
# predictions before running cells: "what variance will the raw scores have at $d_k = 256$?",
# "which key wins in exercise 4 without the mask?". Misconceptions to listen for: "the mask
# zeroes the weights after the softmax" (exercise 4 catches it: the row would no longer sum
# to 1); "attention reads left to right" (section 6 and exercise 5: without positions it sees a
# bag of tokens); "√d_k is a tuning constant" (it follows from the variance of a sum). The open
# experiment fits in 10 minutes in pairs: one pair per exponent, then compare tables on the
# board; the starter cell runs in a few seconds.
