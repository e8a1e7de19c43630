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
# # Chapter 11 · Small, fast and deployed: distillation, quantisation, edge and hybrid deployment
#
# A foundation model is trained once, but it answers requests every day, and every answer costs
# memory, time and money. The documents name the ways out (doc 001 §8.4; doc 002 FAQ Q3; doc 003
# §2.2.5; doc 004 §2.2, FAQ 9.2): compress the model, distil it into a smaller one, and choose where
# it runs — in the cloud, on the user's device, or both. This chapter takes the build's sentiment
# classifier through that chain and measures each step: how many bytes it saves, how much accuracy
# it costs, and how much faster a request becomes.
#
# **Learning objectives.** After this chapter you can
# 1. say what makes a model expensive to serve (memory, latency, cost per request) and name the
#    steps of the compression chain;
# 2. quantise a weight matrix by hand, bound its error, and explain why int4 needs small groups;
# 3. quantise a whole classifier and measure its size and accuracy;
# 4. write the distillation loss with a temperature T and a weight α, and say why it carries T²;
# 5. export a classifier to ONNX and check that the edge engine computes the same logits;
# 6. read a compression table and an accuracy-against-latency plot, and choose a hybrid threshold;
# 7. say why data-parallel training takes the same steps on one process as on two.
#
# **Prerequisites.** Chapters 05 (fine-tuning a classifier) and 08 (the mini-GPT, temperature).
#
# **Estimated time:** about 75 minutes to read and do (the exercises and the open experiment
# included); the code runs in about 25 s at cpu scale with a build present (and its bench).
#
# **Map to the source documents.**
#
# | section | documents |
# |---|---|
# | 1 · why small and fast | doc 003 §2.2.5 (computational efficiency: hardware and compression); doc 002 FAQ Q3 (inference efficiency) |
# | 2 · quantisation by hand | doc 002 FAQ Q3 (compression and quantisation); doc 003 §6.4 (lighter models through compression) |
# | 3 · quantising the classifier | doc 002 FAQ Q3; doc 003 §2.2.5 |
# | 4 · knowledge distillation | doc 001 §8.4 (moving a large model's knowledge into a small one) |
# | 5 · edge export | doc 004 §2.2 (edge deployment on phones and tablets) |
# | 6 · the table, cloud, edge and hybrid | doc 004 §2.2, FAQ 9.2 (cloud, edge and hybrid deployment) |
# | 7 · labkit against transformers | doc 003 §2.2.5 (efficiency is a property of the software too) |
# | 8 · beyond one machine | doc 003 §2.2.5 (hardware acceleration); doc 000 §3.2 (the pretraining steps it speeds up) |
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
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{folder}[deploy]"], check=True)  # ONNX
    sys.path.insert(0, os.path.abspath(folder))  # let this running kernel import it at once
    importlib.invalidate_caches()
print("labkit is installed:", importlib.util.find_spec("labkit") is not None)

# %%
import os
import tempfile
import time
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import transformers
from IPython.display import Markdown, display

from labkit.build import SCALES, ensure_build
from labkit.compress.bench import bench_markdown, ensure_bench, plot_hybrid, plot_tradeoff
from labkit.compress.distill import DistillConfig, Distilled, distillation_loss
from labkit.compress.export import OnnxClassifier, export_classifier, quantize_onnx
from labkit.compress.quantize import dequantize, dynamic_int8, pack_int4, quantize, quantize_model, size_bytes
from labkit.data import load_task
from labkit.folders import load_model
from labkit.tasks import TASKS, predict_proba

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # the sizes `labkit build` uses at this scale
plt.rcParams["figure.dpi"] = 80
pd.set_option("display.max_colwidth", 60)
transformers.logging.set_verbosity_error()
torch.manual_seed(0)
BUILD = ensure_build(LAB_SCALE, progress=False)
BENCH = ensure_bench(LAB_SCALE, BUILD, progress=False)  # `labkit bench`'s report: runs it if missing (2 min at ci)
print(f"LAB_SCALE = {LAB_SCALE!r}; the {BENCH['scale']}-scale bench report measures {len(BENCH['rows'])} variants "
      f"of the {BENCH['task']} classifier ({BENCH['threads']} threads)")

# %% [markdown]
# ## 1 · Why small and fast
#
# Training a foundation model is paid once; **inference** is paid on every request. Three numbers
# decide what serving a model costs:
#
# * **memory**: every weight must sit in RAM (or GPU memory) while the model answers. A float32
#   weight takes 4 bytes, so bert-base's 110 million weights take 440 MB before a single
#   activation; a phone app gets a fraction of that;
# * **latency (延迟)**: how long one request waits for its answer. A user notices 100 ms; a
#   keyboard suggesting the next word has a few milliseconds;
# * **throughput (吞吐量)**: how many requests one machine serves per second, which sets the
#   **cost per request**: the price of a server divided by what it serves.
#
# The **compression chain** attacks them one after another, and this chapter follows it:
#
# | step | what changes | saves | costs |
# |---|---|---|---|
# | quantisation | each weight in 8 or 4 bits instead of 32 | memory, often time | a little accuracy |
# | knowledge distillation | a smaller model trained to imitate the large one | memory and time | training, some accuracy |
# | export to an inference engine | the model as a graph run without PyTorch | time, dependencies | nothing, if exact |
# | hybrid deployment | easy requests on the device, hard ones in the cloud | cloud cost, latency | some accuracy |
#
# A fourth method, **pruning (剪枝)**, removes weights (or whole heads and layers) whose removal
# hurts least, and fine-tunes the rest. The lab does not build it: unstructured pruning leaves the
# matrices the same shape, full of zeros, and saves time only with sparse kernels a laptop CPU
# rarely has.
#
# First, the arithmetic of memory for the build's classifier and for bert-base:

# %%
clf, tokenizer = load_model(BUILD / "sentiment")  # the build's fine-tuned classifier: our *teacher*
clf = clf.cpu().eval()
n_params = sum(p.numel() for p in clf.parameters())
sizes = pd.DataFrame({"parameters": [n_params, 110_000_000]}, index=["the build's classifier", "bert-base"])
for bits in (32, 16, 8, 4):
    sizes[f"{bits}-bit (MB)"] = sizes["parameters"] * bits / 8 / 1e6
display(sizes.round(2))
assert sizes.loc["bert-base", "32-bit (MB)"] == 440.0 and sizes.loc["bert-base", "4-bit (MB)"] == 55.0
print(f"the build's classifier: {n_params:,} parameters; its checkpoint takes {size_bytes(clf) / 1e6:.2f} MB")
assert abs(size_bytes(clf) - 4 * n_params) < 0.1 * 4 * n_params  # float32: 4 bytes a weight, plus a little bookkeeping

# %% [markdown]
# ## 2 · Quantisation by hand
#
# **Quantisation (量化)** stores each weight as a small integer **code** and one float **scale** per
# block of weights. The lab uses the simplest scheme, symmetric absmax: in a block, the largest weight
# in absolute value maps to the largest code, $q_{\max}$ (127 for int8, 7 for int4), and every other
# weight is rounded onto the same evenly spaced grid:
#
# $$ s = \frac{\max_j |w_j|}{q_{\max}}, \qquad q_j = \mathrm{round}(w_j / s), \qquad \hat w_j = s\, q_j,
#    \qquad |w_j - \hat w_j| \le s/2 . $$
#
# Rounding moves a weight by at most half a grid step, so the error is bounded by $s/2$. For int8 the
# block is usually a whole row of the matrix (one output feature: **per channel**). By hand, then with
# `labkit.compress.quantize`:

# %%
W = torch.randn(4, 64, generator=torch.Generator().manual_seed(0)) * 0.05  # (N outputs, K inputs): the size of weights in a small trained layer
scale = W.abs().amax(dim=1, keepdim=True) / 127  # (N, 1): one scale per row
codes = torch.round(W / scale).clamp(-127, 127).to(torch.int8)  # (N, K) integers
W_hat = codes.float() * scale  # (N, K) dequantised
qt = quantize(W, bits=8)  # the library's version
print("codes of row 0:", codes[0, :10].tolist(), "… scale", f"{scale[0, 0].item():.6f}")
print(f"largest error {(W - W_hat).abs().max():.2e}; half the largest scale {scale.max() / 2:.2e}")
assert torch.equal(qt.codes, codes) and torch.allclose(dequantize(qt), W_hat)
assert ((W - W_hat).abs() <= scale / 2 + 1e-8).all()  # the bound holds for every weight
print(f"float32: {W.numel() * 4} bytes; int8: {qt.nbytes()} bytes (codes and {qt.scale.numel()} scales)")

# %% [markdown]
# The bound is per block: it is proportional to the block's *largest* weight. Trained transformers
# have a few weights (and activations) far larger than the rest, **outliers**, and an outlier sets the
# scale of its whole block. With 8 bits there are 255 levels and a coarse grid still fits the small
# weights; with 4 bits there are only 15, and most small weights of the outlier's row round to 0.
# The fix is smaller blocks: **group-wise** scales, one per group of, say, 16 inputs of a row, so an
# outlier spoils only its own group. Two int4 codes are packed into one byte (`pack_int4`).

# %%
W_out = W.clone()
W_out[0, 5] = 1.0  # one outlier, 20 standard deviations out, in row 0
formats = {"int8, per row": (8, None), "int4, per row": (4, None), "int4, groups of 16": (4, 16),
           "int4, groups of 8": (4, 8)}
rows = []
for name, (bits, group) in formats.items():
    q = quantize(W_out, bits=bits, group_size=group)
    err = (dequantize(q) - W_out).abs()  # (N, K)
    rows.append({"format": name, "bytes": q.nbytes(), "mean error, row 0": err[0].mean().item(),
                 "mean error, other rows": err[1:].mean().item(),
                 "row 0 weights set to 0": int((dequantize(q)[0] == 0).sum())})
errors = pd.DataFrame(rows).set_index("format")
display(errors.style.format({"mean error, row 0": "{:.5f}", "mean error, other rows": "{:.5f}"}))
assert errors.loc["int8, per row", "mean error, row 0"] < errors.loc["int4, per row", "mean error, row 0"]
assert errors.loc["int4, groups of 16", "mean error, row 0"] < 0.5 * errors.loc["int4, per row", "mean error, row 0"]
assert errors.loc["int4, per row", "row 0 weights set to 0"] > 40  # the outlier's row: most weights round to 0
assert pack_int4(torch.tensor([[-8, 7, 1, -1]])).tolist() == [[0x78, 0xF1]]  # two codes a byte, the first in the low nibble

fig, ax = plt.subplots(figsize=(7, 3))
for name, (bits, group) in list(formats.items())[:3]:
    ax.plot((dequantize(quantize(W_out, bits=bits, group_size=group)) - W_out)[0].abs(), label=name)
ax.set(xlabel="input k of row 0 (the outlier is at k = 5)", ylabel="|error|", yscale="log",
       title="Quantisation error along the outlier's row")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Try the formats yourself: the control quantises the matrix with the outlier at the bits and group
# size you choose and redraws the histogram of the errors, with the bound $s/2$ of the worst block.

# %%
def explore_quantisation(bits=4, group_size=16, outlier=1.0):
    w = W.clone()
    w[0, 5] = outlier
    q = quantize(w, bits=bits, group_size=None if group_size == 64 else group_size)
    err = (dequantize(q) - w).abs().flatten()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.hist(err.numpy(), bins=40)
    ax.axvline(q.scale.max().item() / 2, color="C3", ls="--", label="largest s/2")
    ax.set(xlabel="|error| of a weight", ylabel="weights",
           title=f"int{bits}, groups of {group_size}: {q.nbytes()} bytes, mean error {err.mean():.4f}")
    ax.legend(fontsize=8)
    plt.show()


controls = {"bits": widgets.ToggleButtons(options=[8, 4], value=4, description="bits"),
            "group_size": widgets.SelectionSlider(options=[8, 16, 32, 64], value=16, description="group size"),
            "outlier": widgets.FloatSlider(1.0, min=0.05, max=3.0, step=0.05, description="outlier")}
display(widgets.VBox([widgets.HBox(list(controls.values())), widgets.interactive_output(explore_quantisation, controls)]))

# %% [markdown]
# ## 3 · Quantising the build's classifier
#
# `quantize_model` replaces every `nn.Linear` and `nn.Embedding` of a copy of the model with a
# quantised one that keeps codes and scales and rebuilds the float weight on each call: the model gets
# smaller, not faster. PyTorch's **dynamic int8** (`dynamic_int8`) goes further: it stores the linear
# layers' weights in int8, quantises each batch of activations on the fly, and multiplies integers with
# the CPU's int8 kernels, which can be faster. Each variant is measured live on the test set:

# %%
data = load_task("sentiment", size=SCALE.data)
task = TASKS["sentiment"]
variants = {"float32": clf, "weight-only int8": quantize_model(clf, bits=8),
            "weight-only int4 (groups of 32)": quantize_model(clf, bits=4, group_size=32),
            "dynamic int8 (PyTorch)": dynamic_int8(clf)}
live = []
for name, model in variants.items():
    start = time.perf_counter()
    accuracy = task.evaluate(model, tokenizer, data["test"])[0]["accuracy"]
    live.append({"variant": name, "accuracy": accuracy, "size (MB)": size_bytes(model) / 1e6,
                 "seconds for the test set": time.perf_counter() - start})
live = pd.DataFrame(live).set_index("variant")
live["size ratio"] = live["size (MB)"] / live.loc["float32", "size (MB)"]
display(live.round(3))

# %%
assert live.loc["weight-only int8", "size ratio"] < 0.4  # about a quarter: 1 byte a weight instead of 4
assert live.loc["weight-only int4 (groups of 32)", "size (MB)"] < live.loc["weight-only int8", "size (MB)"]
assert abs(live.loc["weight-only int8", "accuracy"] - live.loc["float32", "accuracy"]) <= 0.02  # int8 keeps the answers
assert abs(live.loc["dynamic int8 (PyTorch)", "accuracy"] - live.loc["float32", "accuracy"]) <= 0.03
if LAB_SCALE == "cpu":
    assert abs(live.loc["weight-only int4 (groups of 32)", "accuracy"] - live.loc["float32", "accuracy"]) <= 0.05

# %% [markdown]
# Weight-only int8 keeps the answers and takes about a quarter of the space; int4 in groups of 32
# takes less again (half a byte a weight, plus a 4-byte scale every 32 weights). Dynamic int8 only
# quantises the linear layers, so its embeddings stay float32 and it shrinks less. Timing the test
# set here is only a rough look; the bench in §6 times single requests carefully.
#
# ## 4 · Knowledge distillation
#
# **Knowledge distillation (知识蒸馏)**, which chapter 05c mentioned, trains a small **student** to
# imitate a large **teacher**. The teacher's output says more than its label: "positive 0.7,
# negative 0.3" tells how sure it is and which wrong answer is almost right. Those probabilities are
# **soft targets (软目标)**. Dividing the logits by a **temperature** $T > 1$ before the softmax (as
# in chapter 08's sampling) spreads the probability, so the student sees the small ones too:

# %%
review = data["test"][0]["text"]
with torch.no_grad():
    enc = tokenizer([review], return_tensors="pt", truncation=True, max_length=SCALE.tasks["sentiment"].max_length)
    z_teacher = clf(enc["input_ids"], enc["attention_mask"]).logits[0]  # (K,)
print(f"{review!r}\nteacher logits {z_teacher.numpy().round(2)}")
toy = torch.tensor([4.0, 1.5, 0.5, -1.0])  # four classes, for a clearer picture
temps = (0.5, 1, 2, 4, 8)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for t in temps:
    axes[0].plot(F.softmax(toy / t, -1).numpy(), "o-", label=f"T = {t}")
    axes[1].bar(np.arange(2) + 0.15 * temps.index(t), F.softmax(z_teacher / t, -1).numpy(), width=0.15, label=f"T = {t}")
axes[0].set(xlabel="class", ylabel="probability", title="softmax(z / T), four classes")
axes[1].set(xticks=[0.3, 1.3], xticklabels=[clf.id2label[0], clf.id2label[1]], title="the teacher, one review")
axes[0].legend(fontsize=8)
plt.show()
entropy = [float(-(p * p.log()).sum()) for p in (F.softmax(toy / t, -1) for t in temps)]
assert all(a < b for a, b in zip(entropy, entropy[1:]))  # higher T, flatter distribution
assert torch.equal(F.softmax(toy / 1, -1).argmax(), F.softmax(toy / 8, -1).argmax())  # T never changes the ranking

# %%
def explore_temperature(T=2.0):
    p = F.softmax(toy / T, -1)
    fig, ax = plt.subplots(figsize=(5, 2.5))
    ax.bar(range(4), p.numpy())
    ax.set(ylim=(0, 1), xlabel="class", ylabel="probability",
           title=f"T = {T:.1f}: entropy {float(-(p * p.log()).sum()):.2f} nats")
    plt.show()


display(widgets.interactive(explore_temperature, T=widgets.FloatSlider(2.0, min=0.25, max=10.0, step=0.25)))

# %% [markdown]
# The student is trained on a mix of two losses (Hinton et al., 2015), with student logits $z_s$,
# teacher logits $z_t$ and gold label $y$:
#
# $$ \mathcal{L} = \alpha\, T^2\, \mathrm{KL}\bigl(\mathrm{softmax}(z_t/T) \,\|\, \mathrm{softmax}(z_s/T)\bigr)
#    + (1-\alpha)\, \mathrm{CE}(z_s, y). $$
#
# Why $T^2$? The gradient of the KL term with respect to a student logit is
# $(\mathrm{softmax}(z_s/T) - \mathrm{softmax}(z_t/T))/T$, and for large $T$ the difference of the two
# softmaxes itself shrinks like $1/T$: the gradient falls like $1/T^2$. Multiplying by $T^2$ keeps the
# soft term's pull the same size whatever $T$ is, so changing $T$ changes *what* the student learns
# from, not *how hard*. The loss by hand, against `distillation_loss`, and the gradient measured:

# %%
g = torch.Generator().manual_seed(0)
z_s, z_t, y = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g) * 2, torch.randint(0, 2, (8,), generator=g)
T, alpha = 2.0, 0.5
p_t, log_p_s = F.softmax(z_t / T, -1), F.log_softmax(z_s / T, -1)
kl = (p_t * (p_t.log() - log_p_s)).sum(-1).mean()  # KL(teacher ‖ student), mean over the batch
by_hand = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(z_s, y)
library = distillation_loss(z_s, z_t, y, DistillConfig(temperature=T, alpha=alpha))
print(f"by hand {by_hand:.6f}; distillation_loss {library:.6f}")
assert torch.allclose(by_hand, library, atol=1e-6)

grads = []
for T in (2.0, 4.0, 8.0, 16.0):
    zs = z_s.clone().requires_grad_(True)
    distillation_loss(zs, z_t, None, DistillConfig(temperature=T)).backward()  # the soft term alone, with T²
    with_t2 = zs.grad.norm().item()
    grads.append({"T": T, "gradient norm with T²": with_t2, "without T²": with_t2 / T ** 2})
grads = pd.DataFrame(grads).set_index("T")
display(grads.round(5))
assert grads["without T²"].iloc[-1] < grads["without T²"].iloc[0] / 30  # falls like 1/T² without the factor...
assert 0.7 < grads["gradient norm with T²"].iloc[-1] / grads["gradient norm with T²"].iloc[1] < 1.3  # ...steady with it

# %% [markdown]
# `Distilled(student, teacher, cfg)` wraps a student so that the lab's usual training loop trains it
# with this loss: the teacher is frozen and only reads the same batch. A text without a label (label
# −100) adds the soft term alone, which is where distillation pays most: the teacher can "label" every
# unlabelled text. The bench trained one small student (half the teacher's width, one
# layer) on the labels alone and the same student distilled, at several label budgets:

# %%
student = Distilled(load_model(BUILD / "sentiment")[0], clf, DistillConfig(temperature=2.0, alpha=0.5))
batch = tokenizer(list(data["test"]["text"][:4]), padding=True, return_tensors="pt")
out = student(batch["input_ids"], batch["attention_mask"], labels=torch.tensor(data["test"]["label"][:4]))
hard = F.cross_entropy(out.logits, torch.tensor(data["test"]["label"][:4]))
print(f"a student that is a copy of its teacher: loss {out.loss:.4f} = (1 − α) × cross-entropy {hard:.4f}; the KL term is 0")
assert torch.allclose(out.loss, 0.5 * hard, atol=1e-5)
assert not any(p is q for p in student.parameters() for q in clf.parameters())  # the teacher is never trained

distill = pd.DataFrame(BENCH["distillation"]).set_index("labels")[["labels_only", "distilled"]]
distill["gain (points)"] = 100 * (distill["distilled"] - distill["labels_only"])
display(distill.round(3))
by_variant = {r["variant"]: r for r in BENCH["rows"]}
print(f"teacher: {by_variant['float32 (PyTorch)']['params']:,} parameters; student: "
      f"{by_variant['student, distilled']['params']:,}")
assert by_variant["student, distilled"]["params"] < by_variant["float32 (PyTorch)"]["params"] / 2
assert distill[["labels_only", "distilled"]].stack().between(0, 1).all()
if LAB_SCALE == "cpu":
    fewest = distill.index.min()
    assert distill.loc[fewest, "distilled"] > distill.loc[fewest, "labels_only"]  # few labels: the teacher helps
    assert distill["gain (points)"].iloc[0] > distill["gain (points)"].iloc[-1]  # ...more than with every label

# %% [markdown]
# Read the gain column from the top. With few labels the distilled student learns from the
# teacher's soft targets on every training review and beats the same student trained on the labels
# alone; with every label the gain vanishes, because the labels now say most of what the teacher
# says.
#
# **A bigger teacher.** Where the build has the real pretrained encoder's classifier (chapter 05c:
# all-MiniLM-L6-v2 fine-tuned on the same reviews, `labkit build --real-only` adds it), the bench also
# distilled the same student from it. The real teacher reads each review with its own tokenizer; the
# student only ever sees its soft targets, so nothing else about the two has to match. Chapter 05c found
# that the real encoder reads everyday English far better than the mini one (its accuracy on the
# *out-of-world probes*). Does a student distilled from it inherit some of that?

# %%
teachers = pd.DataFrame(BENCH.get("teachers", [])).set_index("teacher") if BENCH.get("teachers") else None
if teachers is not None and len(teachers) > 1:
    display(teachers)
    kinds = ["labels_only", "distilled", "distilled_real"]
    grid = pd.DataFrame(BENCH["distillation"]).set_index("labels")
    both = pd.concat({"TinyWorld test": grid[kinds], "out-of-world probes": grid[[f"{k}_probe" for k in kinds]]
                      .rename(columns=lambda c: c.removesuffix("_probe"))}, axis=1)
    display(both.round(3))
    real, mini = teachers.iloc[1], teachers.iloc[0]
    assert real["params"] > 50 * mini["params"] and both.stack().stack().between(0, 1).all()
    if LAB_SCALE == "cpu":
        assert real["probe"] > mini["probe"] + 0.2  # the real teacher reads everyday English far better...
        probes = both["out-of-world probes"]
        assert (probes["distilled_real"] < real["probe"] - 0.2).all()  # ...and its students do not inherit it
        assert (both["TinyWorld test"]["distilled_real"] - both["TinyWorld test"]["distilled"]).abs().max() < 0.02
else:
    print("this build has no real encoder's classifier (labkit build --real-only adds it): the bench distilled "
          "from the mini teacher alone")

# %% [markdown]
# On TinyWorld's reviews the two teachers give the student the same thing: both are right on nearly
# every review and sure of it, so their soft targets nearly agree, and so do the students. On the
# probes every student stays near chance, whichever teacher taught it, although the real teacher
# scores well above chance there. A student learns what its teacher *does on the transfer set* (the texts
# the soft targets were computed on), nothing more. Here that set is TinyWorld's training reviews,
# on which the real teacher's knowledge of everyday English never shows; and the student's own
# tokenizer, trained on TinyWorld, cuts unfamiliar words into pieces it has never learnt. To pass on
# what a teacher knows beyond the labels, distil on texts where that knowledge matters.
#
# ## 5 · Edge export
#
# **Edge deployment (边缘部署)** runs the model on the user's own device: a phone, a laptop, a
# browser. The request never leaves the device (good for privacy and for no network), but the model
# must fit the device and run without a Python training framework. The usual route is to export the
# model as an **ONNX** graph of standard operators and run it with **ONNX Runtime**, an engine that
# phones, browsers and servers embed. The exported model must compute the same function:

# %%
workdir = Path(tempfile.mkdtemp())
onnx_path = export_classifier(clf, workdir / "sentiment.onnx")
edge = OnnxClassifier(onnx_path, id2label=clf.id2label)
texts = list(data["test"]["text"][:16])
batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
with torch.no_grad():
    torch_logits = clf(batch["input_ids"], batch["attention_mask"]).logits  # (16, K)
onnx_logits = edge(batch["input_ids"], batch["attention_mask"]).logits  # (16, K), computed by ONNX Runtime
gap = (torch_logits - onnx_logits).abs().max().item()
print(f"largest difference of 16 × {torch_logits.shape[1]} logits: {gap:.1e}")
assert gap < 1e-4  # the same function, another engine
onnx_accuracy = task.evaluate(edge, tokenizer, data["test"])[0]["accuracy"]
assert onnx_accuracy == live.loc["float32", "accuracy"]
onnx8 = OnnxClassifier(quantize_onnx(onnx_path, workdir / "sentiment-int8.onnx"), id2label=clf.id2label)


def onnx_mb(path):  # an ONNX model may keep its weights in a second file beside it, <name>.data
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".data")) if p.is_file()) / 1e6


print(f"ONNX float32 {onnx_mb(onnx_path):.3f} MB; ONNX int8 {onnx_mb(onnx8.path):.3f} MB")
print(f"accuracy: ONNX float32 {onnx_accuracy:.3f}; ONNX int8 {task.evaluate(onnx8, tokenizer, data['test'])[0]['accuracy']:.3f}")
assert onnx_mb(onnx8.path) < 0.5 * onnx_mb(onnx_path)

# %% [markdown]
# The logits agree to far better than 10⁻⁴, so the accuracy is identical, and ONNX Runtime's own
# dynamic int8 quantisation makes the file several times smaller. Nothing in `OnnxClassifier` uses
# PyTorch to compute: it hands integer arrays to the engine and reads logits back.
#
# ## 6 · The whole chain, measured: cloud, edge and hybrid
#
# The bench (`labkit bench`, read here from its report) measured every variant in one process, one
# after another, on the same texts: accuracy on the test set, size on disk, the 50th and 95th
# percentile latency of a single request (tokenising included) and throughput in batches.

# %%
table = pd.DataFrame(BENCH["rows"]).set_index("variant")
ratios = pd.DataFrame(BENCH["ratios"]).T
table["speed-up (p50)"], table["size ratio"] = ratios["speedup_p50"], ratios["size_ratio"]
display(table[["accuracy", "size_mb", "p50_ms", "p95_ms", "throughput", "speed-up (p50)", "size ratio"]].round(3))
plot_tradeoff(BENCH["rows"])
plt.show()

# %%
base, edge_row = table.loc["float32 (PyTorch)"], table.loc["student, distilled, ONNX int8 (edge)"]
assert len(table) == 9 and (table["p50_ms"] <= table["p95_ms"]).all()
assert table.loc["ONNX float32", "accuracy"] == base["accuracy"]  # exported, not changed
assert table.loc["weight-only int8", "size_mb"] < 0.4 * base["size_mb"]
assert table.loc["weight-only int4 (groups of 32)", "size_mb"] < table.loc["weight-only int8", "size_mb"]
assert edge_row["size_mb"] < table.loc["student, distilled", "size_mb"] < base["size_mb"]
if LAB_SCALE == "cpu":
    assert edge_row["size ratio"] < 0.25  # the edge model: under a quarter of the teacher's bytes
    assert edge_row["p50_ms"] < base["p50_ms"]  # and faster per request

# %% [markdown]
# Read the table by its columns. *Size* falls the way the arithmetic of §1 says. *Latency* tells a
# different story: weight-only int8 and int4 rebuild their float weights on every call, so they are
# smaller but not faster; any speed-up the table shows for them is noise. The engines with integer
# kernels (PyTorch's dynamic int8, ONNX Runtime's int8) gain little or nothing on a model this narrow
# (the next cell shows why), so the smaller student and the faster engine are what make a request faster. The float32 row and the ONNX float32 row hold the same weights,
# yet ONNX Runtime answers several times faster: for a model this small, eager PyTorch's cost per
# operator outweighs the arithmetic, and a compiled graph removes it. The bench times every variant
# on one thread, because on a machine shared with other jobs several threads of one process wait on
# each other; even so, single-request latencies are the least reliable column, so compare rows of the
# same engine, and trust sizes and accuracies first. *Accuracy* moves least for the quantised teachers and most
# for the student. In the bubble plot, up and to the left is better and a smaller bubble is a
# smaller file.
#
# **When does int8 pay?** Integer kernels save multiply time, but each request also pays to quantise
# its activations and to convert the results back. The bench timed untrained two-layer classifiers of
# growing width (the same shape as the build's, wider), one request each, in float32 and int8 on both
# engines, alternately:

# %%
if BENCH.get("int8_by_width"):
    sweep = pd.DataFrame(BENCH["int8_by_width"]).set_index("width")
    display(sweep.round(2))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(sweep.index, sweep["int8_speedup_pytorch"], "o-", label="PyTorch dynamic int8 vs float32")
    ax.plot(sweep.index, sweep["int8_speedup_onnx"], "s-", label="ONNX Runtime int8 vs float32")
    ax.axhline(1, color="grey", lw=0.8)
    ax.axhline(1.5, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="width (d_model; d_ff = 4 × width)", ylabel="int8 speed-up (p50)",
           title="int8 pays once the matrices are big")
    ax.set_xticks(list(sweep.index), [str(w) for w in sweep.index])
    ax.legend(fontsize=8)
    plt.show()
    assert np.allclose(sweep["int8_speedup_pytorch"], sweep["float32 (PyTorch) ms"] / sweep["dynamic int8 (PyTorch) ms"])
    if LAB_SCALE == "cpu":
        widest = sweep.iloc[-1]
        assert widest["int8_speedup_pytorch"] > sweep["int8_speedup_pytorch"].iloc[0]  # wider: int8 pays more
        assert min(widest["int8_speedup_pytorch"], widest["int8_speedup_onnx"]) > 1.5

# %% [markdown]
# At the build's width (64) the integer arithmetic saves less than the conversions cost; at a few
# hundred it starts to pay, and at a thousand it pays on both engines: a quantised layer is faster
# when its matrices are big enough for the multiplication to dominate. That is why int8 matters so much
# for real foundation models, whose layers are thousands wide, and little for the lab's tiny ones. The
# accuracy side of the trade was measured on the trained model in the table above.
#
# **Cloud deployment (云端部署)** runs the large model on a server: the best accuracy, but every
# request crosses the network and is paid for. The dashboard (`labkit demo`) is such a server. What
# does serving cost on top of the model itself? The bench called its classify endpoint three ways,
# alternately, on the same texts:

# %%
if BENCH.get("api"):
    api = BENCH["api"]
    display(pd.DataFrame({"p50 ms": [api["direct_p50_ms"], api["http_p50_ms"], api["api_p50_ms"]],
                          "p95 ms": [api["direct_p95_ms"], api["http_p95_ms"], api["api_p95_ms"]]},
                         index=["the handler, called directly", "plain HTTP (POST, then the answer's event stream)",
                                "gradio_client's predict"]).round(1))
    assert abs(api["http_overhead_p50_ms"] - (api["http_p50_ms"] - api["direct_p50_ms"])) < 1e-9
    assert api["direct_p50_ms"] < api["http_p50_ms"] < api["api_p50_ms"]
else:
    print("the bench ran without the apps extra, so it did not measure the dashboard's API")

# %% [markdown]
# Plain HTTP adds the server's share: parsing the request, Gradio's queue, JSON both ways, a few
# tens of milliseconds on this machine. gradio_client adds far more, because it checks for new
# messages on a 50 ms timer: the cost of a convenient client, not of serving. When latency matters,
# measure with the client your users will use.
#
# A server's other number is how many requests it answers per second when many clients call at once.
# **Batching (批处理)** answers several waiting requests with one model call: the dashboard's
# `/predict_batch` endpoint lets Gradio's queue hand up to 16 waiting requests to one padded forward
# pass, while its twin `/predict` makes one call per request. The bench sent 20 clients at both:

# %%
if BENCH.get("served"):
    served = BENCH["served"]
    display(pd.DataFrame({e: served[e] for e in ("predict", "predict_batch")}).T.round(1))
    print(f"{served['clients']} clients at once: batching answers {served['batching_speedup']:.2f}× the requests per second")
    assert abs(served["batching_speedup"] - served["predict_batch"]["requests_per_s"] / served["predict"]["requests_per_s"]) < 1e-9
    if LAB_SCALE == "cpu":
        assert served["batching_speedup"] > 1.2  # one padded call for many requests beats one call each
        assert served["predict_batch"]["p50_ms"] < served["predict"]["p50_ms"]  # and each waits less
else:
    print("the bench ran without the apps extra, so it did not serve the dashboard")

# %% [markdown]
# Batching pays twice here: more requests per second, and a shorter wait for each, because a
# request no longer queues behind nineteen others that each need a model call of their own. The
# price is a little latency for a lone request (it waits for the batch to form) and answers that
# arrive together; a GPU, which needs large batches to be busy, gains far more than these two cores.
#
# Back to the two kinds of deployment. **Hybrid deployment (混合部署)** combines the two:
# the small edge model answers when it is sure (its top probability reaches a threshold) and sends
# the rest to the cloud model. Every request pays for the edge model; a deferred one also pays for
# the cloud. The threshold trades accuracy against the share of requests the cloud must serve:

# %%
hybrid = pd.DataFrame(BENCH["hybrid"]).set_index("threshold")
display(hybrid.round(3))
plot_hybrid(BENCH["hybrid"])
plt.show()
assert hybrid["deferred"].is_monotonic_increasing and hybrid["deferred"].iloc[0] == 0 and hybrid["deferred"].iloc[-1] == 1
assert abs(hybrid["accuracy"].iloc[-1] - base["accuracy"]) < 1e-9  # everything deferred: the cloud model
assert abs(hybrid["accuracy"].iloc[0] - edge_row["accuracy"]) < 1e-9  # nothing deferred: the edge model
if "measured_ms" in hybrid:  # the same thresholds, served request by request and timed end to end
    assert hybrid["measured_deferred"].iloc[0] == 0 and hybrid["measured_deferred"].iloc[-1] == 1
mixed = hybrid[hybrid["deferred"] < 1].iloc[-1]  # the highest threshold that still keeps some requests on the edge
print(f"threshold {mixed.name:g}: {mixed['deferred']:.1%} of the requests go to the cloud, accuracy "
      f"{mixed['accuracy']:.3f} (edge alone {edge_row['accuracy']:.3f}, cloud alone {base['accuracy']:.3f})")
if LAB_SCALE == "cpu":
    assert edge_row["accuracy"] < mixed["accuracy"] < base["accuracy"]  # deferring helps, but not up to the cloud
    assert mixed["deferred"] < 0.2  # the edge keeps most requests

# %% [markdown]
# The curve's ends are the two pure deployments. In between, the distilled edge model is sure of
# nearly every review, so even a high threshold sends only a few percent of the requests to the
# cloud, and those few recover part of the gap to the cloud model's accuracy. The rest of the gap is
# made of *confident* mistakes: reviews the edge model gets wrong with a probability above the
# threshold, which no threshold can find. The right threshold is a business decision read off this
# curve: how much accuracy is worth how much cloud cost. (Exercise 4 asks for it.)
#
# The latency has two columns. The *modelled* one adds the edge model's p50 to the share deferred
# times the cloud model's p50; the *measured* one served requests exactly that way (tokenise once, run
# the edge model, run the cloud model as well when the edge is unsure) and timed each end to end. They
# differ by the parts the model leaves out: the softmax that decides, a tokenisation shared by both
# models, and the run-to-run noise of single requests. Model first to choose; measure to confirm.
#
# ## 7 · labkit against transformers
#
# The lab's models are written in plain PyTorch (`labkit`); the industry's usual library is Hugging
# Face transformers. Are the lab's models slow because they are the lab's? The bench converted the
# same weights to transformers (`labkit.hf.to_hf`) and timed both, alternating, in one process:

# %%
frameworks = pd.DataFrame(BENCH["frameworks"])
display(frameworks.round(2))
assert len(frameworks) == 5 and (frameworks["ratio"] > 0).all()
if LAB_SCALE == "cpu":
    assert frameworks["ratio"].between(0.5, 2).all()  # the same order of speed everywhere
assert np.allclose(frameworks["ratio"], frameworks["labkit_tokens_per_s"] / frameworks["transformers_tokens_per_s"], rtol=1e-6)

# %% [markdown]
# A ratio above 1 means labkit is faster. Only the ratios mean something here: the bench ran on a
# machine shared with other jobs, so the absolute tokens per second change from run to run, while
# timing the two frameworks alternately lets a slow moment hit both equally. The two compute the same
# function (the tests check it), so a difference is overhead in the code around the matrix products.
# At cpu scale every ratio lies between 0.5 and 2: the lab's models are not slow because they are the
# lab's. Read which rows are above 1; a ratio that moves from run to run by a tenth is not a finding.
#
# Where does such overhead hide? One example sits in the masked-LM head, whose output is a score for
# every word of the vocabulary at every position, (B, T, V): labkit computes h Eᵀ + b in one fused call
# (`F.linear`). Written as `h @ E.T + b`, the same arithmetic makes a second (B, T, V) tensor for the
# sum, and at the cpu size that alone made inference about a third slower. At small sizes the cost is
# in memory traffic and the code around the matrix products, not in the multiplications.
#
# ## 8 · Beyond one machine: data parallelism
#
# Compression makes serving cheaper; training needs the opposite: more machines. **Data parallelism
# (数据并行)** copies the model to every process (one per GPU, or here per CPU core), splits each
# global batch into equal shards, computes each shard's gradient, and averages the gradients across
# processes (an *all-reduce*) before every process takes the same optimiser step. PyTorch's
# `DistributedDataParallel` (DDP) does the averaging; `torchrun` starts the processes:
#
# ```bash
# torchrun --nproc-per-node 2 -m labkit pretrain --scale ci      # two CPU processes (gloo)
# ```
#
# Why do one process and two take the same steps? The loss of a batch is the mean over its examples,
# so the gradient of the whole batch is exactly the mean of the two half-batches' gradients. Checked
# in one process, with the shards computed one after the other:

# %%
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
x, labels = torch.randn(8, 16), torch.randint(0, 2, (8,))


def gradient(xb, yb):
    net.zero_grad()
    F.cross_entropy(net(xb), yb).backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


whole = gradient(x, labels)  # one process, global batch of 8
shards = [gradient(x[r::2], labels[r::2]) for r in range(2)]  # "rank" r's shard of 4
all_reduced = torch.stack(shards).mean(0)  # what DDP's all-reduce computes
print(f"largest difference: {(whole - all_reduced).abs().max():.1e}")
assert torch.allclose(whole, all_reduced, atol=1e-6)

# %% [markdown]
# This holds when the shards are the same size and the loss is a plain mean; `labkit.training.fit`
# splits the global batch evenly for that reason, and `labkit pretrain` under `torchrun` reproduces
# the single process's losses to 10⁻⁶ (the lab's tests run it). What changes with more processes is
# only the wall-clock time — and the cost of the all-reduce, which on a real cluster is what limits
# how far data parallelism scales.
#
# ## Summary
#
# - Serving costs memory, latency and money on every request. The compression chain: quantise,
#   distil, export to an inference engine, and split the work between the device and the cloud.
#   Pruning is a fourth method, not built here.
# - Quantisation stores codes and a scale per block; rounding errs by at most half the scale. int8
#   per row keeps a classifier's answers at a quarter of the size; int4 needs small groups because one
#   outlier coarsens its whole block.
# - Distillation trains a student on the teacher's softened probabilities, with weight α and the
#   factor T² that keeps the soft term's gradient steady as T grows; it helps most when labels are few.
# - An exported ONNX model computes the same logits (to 10⁻⁴) without PyTorch; ONNX Runtime's int8
#   makes it several times smaller.
# - Smaller is not always faster: only integer kernels and fewer weights make a request faster. A
#   hybrid deployment keeps most of the cloud's accuracy while the device answers most requests.
# - Data parallelism averages shard gradients, which equals the whole batch's gradient: more
#   processes, same steps.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell; a wrong answer shows a hint, and each
# further try a stronger one. Every exercise cell runs on its own. Solutions:
# `notebooks/solutions/ch11.py`.
#
# **Exercise 1 (main idea: quantisation).** Quantise `ch11.weight()` (3 × 8, with an outlier in
# row 1) to int8 with one scale per row, by hand, and return the dequantised matrix.

# %% tags=["exercise"]
from labkit.exercises import ch11

w = ch11.weight()
print(w)
answer = None  # your code: a (3, 8) tensor
ch11.check_int8_rows(answer)

# %% [markdown]
# **Exercise 2 (what int4 costs).** A weight matrix of `ch11.INT4_SHAPE` is quantised to int4 with one
# float32 scale per group of `ch11.INT4_GROUP` inputs. How many bytes do its codes and scales take?

# %% tags=["exercise"]
from labkit.exercises import ch11

print(ch11.INT4_SHAPE, ch11.INT4_GROUP)
answer = None  # your code: an int, in bytes
ch11.check_int4_bytes(answer)

# %% [markdown]
# **Exercise 3 (main idea: distillation).** Compute the distillation loss of `ch11.distill_inputs()`
# by hand (two texts, three labels, T and α given): the mean over the texts, as `distillation_loss`
# computes it. Do not call `distillation_loss`.

# %% tags=["exercise"]
from labkit.exercises import ch11

d = ch11.distill_inputs()
print(d)
answer = None  # your code: a float
ch11.check_distillation_loss(answer)

# %% [markdown]
# **Exercise 4 (main idea: hybrid deployment).** `ch11.hybrid_inputs()` gives an edge model's and a
# cloud model's probabilities on 200 reviews and the gold labels. The service must reach an accuracy
# of `ch11.TARGET`. Of `ch11.THRESHOLDS`, which one reaches it while sending the fewest reviews to
# the cloud?

# %% tags=["exercise"]
from labkit.exercises import ch11

d = ch11.hybrid_inputs()
print({k: v.shape for k, v in d.items()}, ch11.THRESHOLDS, ch11.TARGET)
answer = None  # your code: one of ch11.THRESHOLDS
ch11.check_hybrid_threshold(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** How small may int4's groups be before they stop paying?
#
# - **Change:** the group size of `quantize_model(clf, bits=4, group_size=g)` for g in 8, 16, 32,
#   64 and None (one scale per row); if time allows, the same for the topic classifier
#   (`BUILD / "topic"`, 32 labels).
# - **Measure:** test accuracy (`task.evaluate`), size (`size_bytes`) and the mean absolute error of
#   the dequantised weights against the float ones, for each g; compare with weight-only int8.
# - **A good answer** plots accuracy against size, finds the largest group that stays within a point
#   of float32, says what the scales cost in bits per weight at that g (32 / g), and explains why the
#   topic classifier, with more labels and closer decisions, may need smaller groups than sentiment.

# %% tags=["experiment"]
rows = []
for g in (32,):  # your group sizes (None: one scale per row)
    model = quantize_model(clf, bits=4, group_size=g)
    rows.append({"group size": g, "accuracy": task.evaluate(model, tokenizer, data["test"])[0]["accuracy"],
                 "MB": size_bytes(model) / 1e6})
display(pd.DataFrame(rows))

# %% [markdown] tags=["teacher"]
# **Notes for teachers.** Allow about 75 minutes: 10 for §1 (ask what a phone could hold), 15 for §2
# (let students move the outlier slider until int4 per row sets the row to zeros), 10 for §3, 15 for
# §4 (the temperature slider, then the T² argument on the board), 5 for §5, 10 for §6 (ask the class
# to pick a threshold before revealing the accuracy column), 5 for §7–§8 and the rest for the
# exercises. Exercises 1, 3 and 4 carry the chapter's main ideas.
#
# - *Misconception:* "a smaller model is a faster model." §6: weight-only quantisation shrinks the
#   file and leaves the latency; speed needs integer kernels or fewer operations.
# - *Misconception:* "quantisation error is random noise spread evenly." §2: it is set per block by
#   the block's largest weight, which is why outliers matter and groups help.
# - *Misconception:* "the temperature changes the teacher's answer." It never changes the ranking
#   (asserted in §4), only how much the smaller probabilities show.
# - *Misconception:* "hybrid means half the requests go to the cloud." The share is whatever the
#   threshold makes it; §6 reads it off the curve.
# - *Misconception:* "two processes train a different model than one." §8: with equal shards and a
#   mean loss the gradients are identical; only the time changes.
# - For the open experiment, give each group one g and pool the results in a table on the board; each
#   evaluation takes about a second at cpu scale.
