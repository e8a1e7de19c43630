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
# # Chapter 00 · Welcome to the Foundation Model Lab
#
# A **foundation model (基础模型)** is one large network, pretrained once on broad unlabelled
# data, that many different tasks then reuse. In this lab you build a small one yourself —
# attention, the Transformer, a tokenizer, pretraining, fine-tuning, serving, judging — and
# every step runs offline on a laptop CPU in minutes.
#
# **Learning objectives.** After this chapter you can
# 1. run the lab's notebooks in JupyterLab or on Colab and choose their size with `LAB_SCALE`;
# 2. check your environment (library versions, the device the lab will use);
# 3. draw the map of foundation models — data and compute → pretraining → foundation model →
#    adaptation (fine-tuning, prompting) → downstream tasks, with evaluation and risks — and
#    say which chapter teaches each part;
# 4. use the map: decide whether a situation calls for pretraining, fine-tuning, prompting or
#    evaluation, and explain why one flaw in a foundation model can reach every system built on it.
#
# **Prerequisites.** Python; a little NumPy or PyTorch helps.
#
# **Estimated time:** about 30 minutes to read and do; the code runs in about 20 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Source documents.** doc 000 §1, §2.1–2.2 (concepts and their graph), §3.2 (the four steps),
# §8.3; doc 001 §2 (concept graph); doc 002 §2.1–2.2; doc 003 §1.2, §2.1–2.2 (concept graphs),
# §3 (self-supervised learning, fine-tuning, prompt tuning); doc 004 §2.1–2.3 (deployment and
# social impact), §8.3. The index of the documents is in `notebooks/README.md`.
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

# %% [markdown]
# ## 1 · How the lab works
#
# **On your laptop.** From the repository folder, `make lab` creates `.venv/`, installs the lab
# and opens JupyterLab on `notebooks/`. Each chapter is a pair of files kept in sync by
# [jupytext](https://jupytext.readthedocs.io): `NN_name.ipynb` (with outputs) and `NN_name.py`
# (the same cells as plain Python, easy to diff and review). Edit either; JupyterLab saves both.
#
# **On Colab.** Open the `.ipynb` from your course's copy of the repository, paste that
# repository's URL into `LAB_REPO` in the first code cell and run it: it clones the lab and
# installs it with its `lab` extra (JupyterLab widgets, bertviz, jupytext). The first code
# cell of every chapter is this same install cell; locally it only confirms that `labkit` is
# importable.
#
# **Sizes.** Every chapter reads `LAB_SCALE`: `ci` (tiny, for the automated tests), `cpu`
# (the default: a laptop, minutes) or `gpu` (bigger data and models). Set it before starting
# Jupyter (`LAB_SCALE=ci make lab`) or, on Colab, with `os.environ["LAB_SCALE"] = "ci"` before
# the setup cell.
#
# **The library.** Notebooks do not hide machinery in long cells: they import `labkit`, the
# lab's small library (`labkit/attention.py`, `labkit/transformer.py`, …). When a chapter writes
# a piece inline to teach it, it then checks it against `labkit`'s version with an `assert`.
#
# **Claims are checked.** Every claim a chapter makes about a *result* — a number, a shape, a
# comparison, "this model beats that one" — is checked by an `assert` in a code cell, so a
# chapter that runs top to bottom without an error has confirmed what it says. Figures quoted
# from the prebuilt models are read from the build's report in code. Background about the field
# (what the source documents describe, what large models do) is not a result of this lab and is
# not checked; the text says so where it matters.
#
# **Exercises.** Each chapter ends with exercises. You write `answer = ...`; a check function
# from `labkit.exercises` tells you ✅ or ❌. For a mistake it recognises it says what went wrong;
# otherwise it gives a hint, a stronger one each time you run the cell again. It never raises,
# so a notebook with unfinished exercises still runs top to bottom. Each exercise cell imports
# what it needs, so you can run it on its own. Every chapter also has an **open experiment**:
# something to change, something to measure, and what a good answer shows.
# Reference solutions are in `notebooks/solutions/`.

# %%
import os
import sys

import matplotlib.pyplot as plt
import torch

from labkit.env import best_device, environment_report
from labkit.fonts import use_cjk_font
from labkit.training import seed_everything

use_cjk_font()  # Chinese labels render in the plots below
LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# ## 2 · Environment check
#
# `labkit.env.environment_report()` lists the versions the lab depends on and the device it
# will use; `best_device()` tries CUDA, then Apple's MPS, then the CPU. The lab never *needs*
# a GPU: every chapter is sized for two CPU cores at the `cpu` scale (the run time in each
# chapter's first cell was measured that way).

# %%
report = environment_report()
for key, value in report.items():
    print(f"{key:>14}: {value}")

# %%
import transformers

major = lambda version: int(version.split(".")[0])  # noqa: E731
assert sys.version_info >= (3, 10), "the lab needs Python 3.10 or newer"
assert major(torch.__version__) >= 2, "the lab needs PyTorch 2"
assert major(transformers.__version__) == 5, "the lab is written for transformers v5"
assert device.type in ("cuda", "mps", "cpu") and report["device"].startswith(device.type)
x = torch.ones(3, device=device)
assert (x + x).sum().item() == 6.0  # the chosen device computes
print("environment OK")

# %% [markdown]
# What do the sizes mean? `labkit.build.SCALES` holds, for each scale, the data preset, the
# vocabulary and model sizes and the training steps every later chapter uses.

# %%
from labkit.build import SCALES
from labkit.transformer import MaskedLM, count_parameters

assert LAB_SCALE in SCALES, f"LAB_SCALE must be one of {list(SCALES)}"
n_parameters = {}
print(f"{'scale':>6} {'vocab':>6} {'d_model':>7} {'layers':>6} {'heads':>5} {'pretrain steps':>14} {'parameters':>11}")
for name, scale in SCALES.items():
    with torch.device("meta"):  # shapes only: counting needs no memory
        n_parameters[name] = count_parameters(MaskedLM(scale.model))
    m = scale.model
    print(f"{name:>6} {scale.vocab_size:>6} {m.d_model:>7} {m.n_layers:>6} {m.n_heads:>5} "
          f"{scale.pretrain.train.steps:>14} {n_parameters[name]:>11,}")

# %% [markdown]
# (The vocabulary sizes are upper bounds: the tokenizer stops earlier if the corpus runs out of
# frequent word pieces, which makes the models a little smaller; chapter 03 measures it.)
# For scale, the same count for bert-base, the model of chapter 02's parity checks, built from
# its configuration alone (no download):

# %%
from transformers import BertConfig, BertModel

with torch.device("meta"):
    bert_base = count_parameters(BertModel(BertConfig()))  # BertConfig()'s defaults are bert-base's
print(f"bert-base: {bert_base:,} parameters; the lab's largest model is {max(n_parameters.values()) / bert_base:.1%} of it")
assert 105e6 < bert_base < 115e6  # "about 110 million"
assert max(n_parameters.values()) < bert_base / 10  # even the gpu model is under a tenth of bert-base

# %% [markdown]
# Even the `gpu` model is less than a tenth of bert-base — small enough to train in minutes,
# big enough to show every idea.

# %% [markdown]
# ## 3 · What is a foundation model?
#
# The five source documents describe the same picture from different sides:
#
# - **Pretraining (预训练)** on a huge amount of *unlabelled* text by **self-supervised learning
#   (自监督学习)**: the text supplies its own targets — predict a masked word (BERT) or the next
#   word (GPT). This costs most of the compute.
# - The result is the foundation model: a general representation of language with strong
#   **generalisation (泛化能力)** — it does well on text and tasks it was not trained on.
#   Architecturally it is a Transformer built from **self-attention (自注意力)** (chapters 01–02).
# - **Adaptation** turns it into many tools. This is **transfer learning (迁移学习)**: what was
#   learned on one task (predicting words) is reused for another. Two routes:
#   **fine-tuning (微调)** trains the model further on a small set of **labelled data (标注数据)**
#   — examples with answers written by people; **prompting (提示)** leaves the weights alone
#   and steers the model with an instruction and perhaps a few examples, with few or no labels.
#   Between the two sits **prompt tuning (提示微调)**: the model stays frozen and only a few
#   prompt vectors are trained. (Doc 003 writes 指令微调 for prompt tuning; in this lab 指令微调
#   is *instruction tuning*, fine-tuning on many instruction–answer pairs.)
# - **Downstream tasks (下游任务)**: classification, named-entity recognition, question
#   answering, translation, …
# - Around it: **evaluation (评估)** with accuracy, precision, recall and F1 on examples the model
#   has not seen; **deployment (部署)** in the cloud, on the edge or both; and risks — **bias
#   (偏见)**, leaks of private text, misuse, opacity — that start in the data and reach people
#   through deployment.
#
# Two words from the research literature name what happens when one model sits under everything:
#
# - **Homogenisation (同质化)**: many applications are built on the same few foundation models.
#   An improvement to the model helps all of them at once — and a flaw it learned (a bias in
#   its pretraining text, say) is inherited by all of them at once. The map's first claim
#   below is homogenisation drawn as a graph; exercise 4 asks you to use it.
# - **Emergence (涌现)**: abilities nobody trained for explicitly, such as following an
#   instruction in a prompt, are reported to appear once models and data grow large enough.
#   The lab's models are far too small to show this; take it as a word to know, not as
#   something this lab demonstrates.
#
# ### The concept map
#
# The documents each draw a concept graph; here is the lab's own version. (Mermaid renders in
# JupyterLab 4 and on GitHub; the matplotlib drawing below renders everywhere, offline.)
#
# ```mermaid
# graph LR
#     U[unlabelled data] -->|self-supervised| P(pretraining)
#     C[compute] --> P
#     P --> F((foundation model))
#     F -->|adapt| FT(fine-tuning)
#     F -->|adapt| PR(prompting)
#     L[labelled data] --> FT
#     L -->|test split| E
#     FT --> D{downstream tasks}
#     PR --> D
#     D --> E[evaluation]
#     D --> DEP[deployment]
#     U -.->|bias, private text| R[risks]
#     F -.->|opaque| R
#     DEP -.->|misuse| R
# ```

# %% [markdown]
# The same map as data: each concept with where it sits in the drawing, its Chinese name, where
# the lab teaches it, and a one-line description; then the edges. The drawing shows each
# concept's Chinese name under its English one.

# %%
from matplotlib.patches import FancyBboxPatch

CONCEPTS = {  # name: (x, y, Chinese term, where the lab teaches it, description)
    "unlabelled data": (0.0, 4.0, "无标注数据", "ch. 03", "Raw text, no labels: TinyWorld's corpus in this lab."),
    "compute": (0.0, 2.0, "算力", "ch. 04", "GPUs/CPUs and time: the main cost of pretraining."),
    "pretraining": (2.6, 3.0, "预训练", "ch. 04", "Self-supervised training: predict masked (or next) words."),
    "foundation model": (5.2, 3.0, "基础模型", "ch. 01, 02, 04", "A pretrained Transformer that many tasks reuse."),
    "fine-tuning": (7.8, 4.2, "微调", "ch. 05, 06, 07", "Train the model further on a small labelled set."),
    "prompting": (7.8, 1.8, "提示", "not built here", "Steer the model with instructions or examples; few or no labels."),
    "labelled data": (7.8, 6.0, "标注数据", "ch. 03, 05–07", "Examples with human answers: for fine-tuning and for testing."),
    "downstream tasks": (10.4, 3.0, "下游任务", "ch. 05, 06, 07", "Classification, NER, question answering, translation."),
    "evaluation": (13.0, 4.6, "评估", "ch. 05, 06, 07", "Accuracy, precision, recall, F1, BLEU on unseen data."),
    "deployment": (13.0, 1.4, "部署", "apps/ (Gradio)", "Serve the model: cloud, edge or hybrid. The lab's demos are in apps/."),
    "risks": (6.5, 0.0, "风险", "ch. 03 (data knobs)", "Bias, privacy leaks, misuse, opacity. Chapter 03 shows the corpus knobs for measuring them."),
}
EDGES = [  # (from, to, label, solid?)
    ("unlabelled data", "pretraining", "self-supervised", True),
    ("compute", "pretraining", "", True),
    ("pretraining", "foundation model", "", True),
    ("foundation model", "fine-tuning", "adapt", True),
    ("foundation model", "prompting", "adapt", True),
    ("labelled data", "fine-tuning", "", True),
    ("labelled data", "evaluation", "test split", True),
    ("fine-tuning", "downstream tasks", "", True),
    ("prompting", "downstream tasks", "", True),
    ("downstream tasks", "evaluation", "", True),
    ("downstream tasks", "deployment", "", True),
    ("unlabelled data", "risks", "bias, private text", False),
    ("foundation model", "risks", "opaque", False),
    ("deployment", "risks", "misuse", False),
]
assert all(a in CONCEPTS and b in CONCEPTS for a, b, _, _ in EDGES)


BOX_W, BOX_H = 2.2, 1.0  # box size in data units


def _edge_point(x: float, y: float, dx: float, dy: float) -> tuple[float, float]:
    """Where the ray from a box's centre (x, y) in direction (dx, dy) leaves the box."""
    t = min(BOX_W / 2 / abs(dx) if dx else float("inf"), BOX_H / 2 / abs(dy) if dy else float("inf"))
    return x + 1.08 * t * dx, y + 1.08 * t * dy


def draw_concept_map(focus: str | None = None, ax=None):
    """Boxes and arrows with matplotlib only (renders offline); ``focus`` highlights one concept."""
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 5.4))
    neighbours = {b for a, b, *_ in EDGES if a == focus} | {a for a, b, *_ in EDGES if b == focus}
    for a, b, label, solid in EDGES:
        (xa, ya), (xb, yb) = CONCEPTS[a][:2], CONCEPTS[b][:2]
        hot = focus in (a, b)
        ax.annotate("", xy=_edge_point(xb, yb, xa - xb, ya - yb), xytext=_edge_point(xa, ya, xb - xa, yb - ya),
                    arrowprops=dict(arrowstyle="-|>", lw=2.2 if hot else 1.2, ls="-" if solid else "--",
                                    color="tab:red" if hot else "0.45", shrinkA=0, shrinkB=0))
        if label:
            ax.text((xa + xb) / 2, (ya + yb) / 2 + 0.12, label, fontsize=8, ha="center", color="0.3",
                    bbox=dict(fc="white", ec="none", pad=0.5))
    for name, (x, y, zh, where, _) in CONCEPTS.items():
        colour = "#ffd7d7" if name == focus else "#ffeccc" if name in neighbours else "#dde8f5"
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.05",
                                    fc=colour, ec="tab:red" if name == focus else "0.4"))
        ax.text(x, y + 0.25, name, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x, y - 0.02, zh, ha="center", va="center", fontsize=9)
        ax.text(x, y - 0.28, where, ha="center", va="center", fontsize=8, color="0.35")
    xs = [x for x, *_ in CONCEPTS.values()]
    ax.set_xlim(min(xs) - 1.3, max(xs) + 1.3)
    ax.set_ylim(-0.8, 6.6)
    ax.axis("off")
    ax.set_title("Foundation models: from data to tasks (dashed: where risks come from)")
    return ax


draw_concept_map()
plt.show()

# %% [markdown]
# Two claims the map makes, checked on the edge list: (1) every route from the unlabelled data
# to a downstream task passes through the foundation model — that is what "foundation" means,
# and it is homogenisation: whatever the model learned, every task downstream inherits;
# (2) a downstream task is reached only through an adaptation step (fine-tuning or prompting).

# %%
def reachable(start: str, edges, removed: str | None = None) -> set[str]:
    """Concepts reachable from ``start`` along solid edges, optionally with one concept removed."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for a, b, _, solid in edges:
            if a == node and solid and b != removed and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


assert "downstream tasks" in reachable("unlabelled data", EDGES)
assert "downstream tasks" not in reachable("unlabelled data", EDGES, removed="foundation model")  # claim 1
assert {a for a, b, *_ in EDGES if b == "downstream tasks"} == {"fine-tuning", "prompting"}  # claim 2
print("the map's two claims hold")

# %% [markdown]
# **Explore the map.** Pick a concept: its box turns red, its neighbours orange, and its
# description and where the lab teaches it appear under the menu. (Widgets need a running
# kernel; on a static page you see the first drawing.)

# %%
import io

import ipywidgets as widgets
from IPython.display import display


def concept_map_png(focus: str) -> bytes:
    """The map with ``focus`` highlighted, as PNG bytes for an Image widget."""
    fig, ax = plt.subplots(figsize=(13, 5.4))
    draw_concept_map(focus=focus, ax=ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


concept_box = widgets.Dropdown(options=list(CONCEPTS), value="foundation model", description="concept")
about = widgets.HTML()
picture = widgets.Image(format="png")


def show_concept(change=None):
    name = concept_box.value
    _, _, zh, where, description = CONCEPTS[name]
    about.value = f"<b>{name}</b> ({zh}) — {where}<br>{description}"
    picture.value = concept_map_png(name)


concept_box.observe(show_concept, names="value")
show_concept()
display(widgets.VBox([concept_box, about, picture]))

# %% [markdown]
# ## 4 · The chapters
#
# | chapter | what you build or measure |
# |---|---|
# | 00 Welcome | this map; the environment |
# | 01 Self-attention | score → softmax → weighted sum; masks; multi-head; positions |
# | 02 The mini-Transformer | one block, a stack of blocks, parameter counts, parity with PyTorch and 🤗 BERT |
# | 03 Data and tokenisation | TinyWorld's corpus and tasks; a WordPiece tokenizer for English and Chinese |
# | 04 Pretraining | masked-language-model pretraining of the mini-BERT |
# | 05 Fine-tuning for classification | sentiment and topic classifiers; pretrained vs from scratch |
# | 06 NER and question answering | token tagging and span extraction |
# | 07 Translation | an encoder–decoder for English → Chinese |
#
# A first taste of the library, which chapter 01 takes apart: attention weights are a
# probability distribution over the keys for every query.

# %%
from labkit.attention import scaled_dot_product_attention

q = k = v = torch.randn(1, 5, 8)  # (B, T, d)
out, weights = scaled_dot_product_attention(q, k, v)
assert out.shape == (1, 5, 8) and weights.shape == (1, 5, 5)
assert torch.allclose(weights.sum(-1), torch.ones(1, 5))  # each row sums to 1
print(weights[0].round(decimals=2))

# %% [markdown]
# ## Summary
#
# - A foundation model is pretrained once, self-supervised, on broad unlabelled data, then
#   adapted — by fine-tuning or prompting — to many downstream tasks.
# - Data and compute go in; evaluation measures what comes out; risks start in the data and
#   reach people through deployment.
# - Because many systems share one model, they share its strengths and its flaws
#   (homogenisation).
# - The lab runs in JupyterLab (`make lab`) or on Colab (the first cell), at the size
#   `LAB_SCALE` chooses, and checks each claim about a result with an `assert`.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell. Each cell runs on its own. Solutions:
# `notebooks/solutions/ch00.py`.
#
# **Exercise 1 (the map).** Put the stages in `ch00.STAGES` in the order the concept map
# follows them.

# %% tags=["exercise"]
from labkit.exercises import ch00

print(ch00.STAGES)
answer = None  # your code: a list of the six names, in order
ch00.check_pipeline_order(answer)

# %% [markdown]
# **Exercise 2 (the map).** Which of the stages in `ch00.STAGES` need *labelled* data (answers
# written by people)? Give a set of names.

# %% tags=["exercise"]
from labkit.exercises import ch00

print(ch00.STAGES)
answer = None  # your code: a set of names
ch00.check_needs_labels(answer)

# %% [markdown]
# **Exercise 3 (main idea: which route?).** Each situation in `ch00.SITUATIONS` calls for one
# step of the map: `"pretraining"`, `"fine-tuning"`, `"prompting"` or `"evaluation"`. Choose the
# step that fits best, reasoning from three questions: does a model that knows this kind of
# text exist? Are there many labelled examples? Can the model's weights be changed? Give a list
# with one route per situation, in order.

# %% tags=["exercise"]
from labkit.exercises import ch00

for number, situation in enumerate(ch00.SITUATIONS, start=1):
    print(f"{number}. {situation}")
answer = None  # your code: a list of 6 names from ch00.ROUTES
ch00.check_adaptation_route(answer)

# %% [markdown]
# **Exercise 4 (main idea: homogenisation).** `ch00.SYSTEMS` lists five systems, the foundation
# model each one is built on (`"A"`, `"B"` or none) and how it was adapted. Researchers find
# that foundation model A learned a harmful stereotype from its pretraining text. Which systems
# may carry it? Give a set of names.

# %% tags=["exercise"]
from labkit.exercises import ch00

for system, (base, how) in ch00.SYSTEMS.items():
    print(f"{system:<16} foundation model: {base or '(none)':<7} {how}")
answer = None  # your code: a set of system names
ch00.check_inherited_flaw(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** Before foundation models, every task got its own model, trained from
# scratch on that task's labelled data. Put that older route on the map and see what it breaks.
#
# - **Change:** in the cell of section 3 that defines `CONCEPTS` and `EDGES`, add a concept such
#   as `"task model (from scratch)"` (pick a free spot, e.g. `(10.4, 5.6)`) and the edges
#   `labelled data → task model (from scratch) → downstream tasks`; rerun the cells after it.
# - **Measure:** which of the map's two claim asserts fails now; and whether
#   `"downstream tasks" in reachable("labelled data", EDGES, removed="fine-tuning")` — can
#   labelled data reach a task without fine-tuning? — before and after your change. Redraw
#   with `draw_concept_map(focus="task model (from scratch)")`.
# - **A good answer** shows that claim 1 still holds (from the *unlabelled* data every route
#   still passes through the foundation model) but claim 2 fails: a task is now reached with no
#   foundation model and no adaptation step, and labelled data alone reaches it. It then says
#   what the new route costs and what it avoids: a large labelled set for every task and
#   nothing shared between tasks — but also no flaw inherited from a shared model (exercise 4).
#   A strong answer names the chapter that measures the difference (chapter 05: a pretrained
#   model against one trained from scratch on the same few labels).

# %% [markdown] tags=["teacher"]
# **For teachers.** About 30 minutes: 10 for sections 1–2 (set up before class so that
# nobody waits on installs), 10 for the map, 10 for exercises 3–4. Exercises 3 and 4 work well
# in pairs, answered on paper first and then checked in the notebook; the checks name the
# common mistakes. Misconceptions to listen for: "pretraining needs labels" (it is
# self-supervised); "prompting is a kind of fine-tuning" (prompting changes no weight; prompt
# tuning trains a few prompt vectors; fine-tuning trains the model); "fine-tuning removes what
# pretraining learned" (it adjusts it, which is why a flaw can survive into every system — the
# point of exercise 4). The open experiment takes 10–15 minutes and needs only the cells of
# section 3; ask groups to sketch the new box on paper before they edit the code.
