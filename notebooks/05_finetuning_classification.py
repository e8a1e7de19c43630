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
# # Chapter 05 · Fine-tuning for classification (微调)
#
# Pretraining gave the mini-BERT a general feel for TinyWorld's language. **Fine-tuning
# (微调)** turns it into a tool for one job: put a small, freshly initialised layer on top of
# the pretrained encoder and train the whole thing a little further on a *labelled* data set.
# This is **transfer learning (迁移学习)**: the hope is that knowledge from the unlabelled
# corpus carries over, so the task needs fewer labels. This chapter measures whether it does
# — and finds a task where, for our mini-BERT, it does not.
#
# **Learning objectives.** After this chapter you can
# 1. run the documents' `BertForSequenceClassification` recipe for real — on the lab's own
#    pretrained model, saved as a folder — with a plain PyTorch training loop;
# 2. do the same with `labkit`, and say which weights are new and which are reused;
# 3. evaluate a classifier with accuracy, per-class precision, recall and F1, and a confusion
#    matrix;
# 4. measure what pretraining is worth: pretrained vs from-scratch across label budgets, and
#    diagnose a task where it is worth nothing yet;
# 5. apply a classifier to a stream of news as a monitoring tool, and analyse words the
#    labelled data never contained.
#
# **Prerequisites.** Chapter 04 (the pretrained mini-BERT). **Estimated time:** 60 minutes; the
# code runs in about three minutes.
#
# **Source documents.** doc 001 §3.2 (pretrain → fine-tune → evaluate), §4.1 (input, hidden
# and output layers), §5.2 (fine-tuning `BertForSequenceClassification` with transformers);
# doc 002 §3.2 (transfer learning: initialise from the pretrained model, design the task
# loss), §5.2 (its example needs a model with a head), §6.2 (text classification); doc 003
# §1.2 (less dependence on labelled data), §3.2, §4.2.2 (the fine-tuning loss), §4.3.1 (text
# classification), §6.2 (financial sentiment monitoring); doc 004 §9.3 (accuracy, recall, F1).

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
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, BertForSequenceClassification

from labkit import metrics as M
from labkit.build import SCALES, ensure_pretrained
from labkit.data import load_task
from labkit.data.sentiment import opinion_words, uses_heldout_words
from labkit.env import best_device
from labkit.finetune import finetune_classifier, predict_proba, subsample
from labkit.folders import save_model
from labkit.heads import SequenceClassifier
from labkit.hf import to_hf
from labkit.pretrain import evaluate_nsp
from labkit.training import seed_everything
from labkit.transfer import plot_transfer, run_transfer, transfer_markdown
from labkit.viz import attention_explorer, bertviz_view, plot_history

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # model and training sizes of `labkit build` at this scale
CLASSIFY = replace(SCALE.finetune["sentiment"], progress=False)  # the build's fine-tuning settings
HF_STEPS = min(CLASSIFY.steps, 100)  # the plain loop of §1 is a short demonstration
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# The pretrained mini-BERT of `labkit build` (a `PreTrainingModel`: chapter 04's masked-LM
# model plus BERT's second pretraining task, next-sentence prediction — §1 explains it), and
# two labelled TinyWorld tasks: English reviews
# labelled *negative*/*positive*, and short news items labelled with one of five topics. Test
# splits mention people, products and companies that the training splits never show.

# %%
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
sentiment, topic = load_task("sentiment", size=LAB_SCALE), load_task("topic", size=LAB_SCALE)
sentiment_names = sentiment["train"].features["label"].names
topic_names = topic["train"].features["label"].names
for name, ds in (("sentiment", sentiment), ("topic", topic)):
    names = ds["train"].features["label"].names
    print(f"{name}: {len(ds['train'])} train / {len(ds['validation'])} validation / {len(ds['test'])} test, labels {names}")
    print(f"   e.g. [{names[ds['train'][0]['label']]}] {ds['train'][0]['text'][:120]}")

# %% [markdown]
# ## 1 · The documents' recipe, run for real
#
# Doc 001 §5.2 fine-tunes `bert-base-uncased` with `BertForSequenceClassification` and a plain
# PyTorch loop. We cannot download bert-base here — and do not need to: the lab's own
# pretrained model is a BERT too. Saved as a Hugging Face folder, it is a `BertForPreTraining`
# checkpoint (BERT with both of its pretraining heads), and it opens with the very same
# `BertForSequenceClassification` class. (Doc 002 §5.2 calls `.logits` on a `BertModel`;
# that class has no head and no logits — the `…ForSequenceClassification` class is the one
# with a head.)

# %%
pretrained_folder = Path(tempfile.mkdtemp()) / "mini-bert"
save_model(mlm, tokenizer, pretrained_folder)  # a BertForPreTraining folder: encoder, pooler and both pretraining heads
print("saved as:", transformers.AutoConfig.from_pretrained(pretrained_folder).architectures)

hf_model, loading = BertForSequenceClassification.from_pretrained(
    pretrained_folder, num_labels=len(sentiment_names), id2label=dict(enumerate(sentiment_names)),
    label2id={n: i for i, n in enumerate(sentiment_names)}, output_loading_info=True)
hf_tokenizer = AutoTokenizer.from_pretrained(pretrained_folder)
print("newly initialised:", sorted(loading["missing_keys"]))
print("left unused (the two pretraining heads):", sorted(loading["unexpected_keys"]))

# %%
assert transformers.AutoConfig.from_pretrained(pretrained_folder).architectures == ["BertForPreTraining"]
assert set(loading["missing_keys"]) == {"classifier.weight", "classifier.bias"}  # only the new output layer
unused = set(loading["unexpected_keys"])
assert all(k.startswith(("cls.predictions.", "cls.seq_relationship.")) for k in unused)  # masked-LM and NSP heads
assert {"cls.seq_relationship.weight", "cls.seq_relationship.bias"} <= unused
assert torch.equal(hf_model.bert.embeddings.word_embeddings.weight, mlm.encoder.embeddings.token.weight)
assert torch.equal(hf_model.bert.pooler.dense.weight, mlm.encoder.pooler.weight)  # the pooler is pretrained too
n_new = sum(p.numel() for n, p in hf_model.named_parameters() if n.startswith("classifier"))
n_all = sum(p.numel() for p in hf_model.parameters())
assert n_all < 1_000_000  # far smaller than bert-base's 110M: it needs a larger learning rate (below)
assert n_new / n_all < 0.01  # the new layer is well under one percent of the model
print(f"{n_new:,} of {n_all:,} parameters ({n_new / n_all:.2%}) start from scratch; the rest come from pretraining")

# %% [markdown]
# The head reads the final `[CLS]` vector: pooler ($\tanh(W_p h_{\text{CLS}} + b_p)$), dropout,
# then a linear layer giving one logit $z_k$ per class.
#
# Why is the pooler not new? Masked-LM pretraining (chapter 04) puts its loss on the masked
# positions only: nothing is ever predicted *at* `[CLS]`, so neither its final vector nor a
# pooler would learn anything from it. BERT therefore has a second pretraining task,
# **next-sentence prediction (下一句预测, NSP)**. Each training example is two text segments,
# `[CLS] A [SEP] B [SEP]`: cut a document at a sentence boundary; half the time B is the real
# rest of the document, half the time it is the tail of some other document. A two-way linear
# layer on the pooled `[CLS]` vector answers "does B continue A?". The labels cost nothing —
# they come from the corpus itself — and the loss (added to the masked-LM loss) trains
# exactly the path a sequence classifier uses: `[CLS]` → pooler → a small linear layer.
# Fine-tuning keeps the pooler and swaps NSP's two-way layer (`cls.seq_relationship`) for a
# new classifier. The pretrained model still has its NSP layer; on pairs from the validation
# corpus it should beat the coin flip (0.5):

# %%
corpus = load_task("corpus", size=LAB_SCALE)
nsp = evaluate_nsp(mlm, tokenizer, list(corpus["validation"]["text"])[:500], max_length=SCALE.pretrain.block_length)
assert nsp["next_sentence_accuracy"] > 0.6  # the pooler learnt something during pretraining
print(f"next-sentence accuracy of the pretrained model: {nsp['next_sentence_accuracy']:.3f} (chance: 0.5)")

# %% [markdown]
# The loss is the cross-entropy
# $-\log \mathrm{softmax}(z)_y$. Doc 003 §4.2.2 writes the two-class case with a sigmoid,
# $-[y \log \sigma(s) + (1-y)\log(1-\sigma(s))]$: the two agree, with $s = z_1 - z_0$, because
# $\mathrm{softmax}(z)_1 = e^{z_1}/(e^{z_0}+e^{z_1}) = \sigma(z_1 - z_0)$.
#
# The data pipeline: the documents' version tokenises each example separately with
# `padding=True` inside `__getitem__`, which gives rows of different lengths that the default
# collate cannot stack. Padding belongs in the **collate function**, once per batch:

# %%
def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    """A list of {"text", "label"} rows → padded input_ids, attention_mask, token_type_ids and labels."""
    batch = hf_tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=128, return_tensors="pt")
    batch["labels"] = torch.tensor([r["label"] for r in rows])
    return dict(batch)


train_loader = DataLoader(sentiment["train"], batch_size=CLASSIFY.batch_size, shuffle=True, collate_fn=collate,
                          generator=torch.Generator().manual_seed(0))
test_loader = DataLoader(sentiment["test"], batch_size=64, collate_fn=collate)
batch = next(iter(train_loader))
print({k: tuple(v.shape) for k, v in batch.items()})

# %%
hf_model.to(device).eval()
with torch.no_grad():
    out = hf_model(**{k: v.to(device) for k, v in batch.items()})
    z, y = out.logits.float(), batch["labels"].to(device)  # (B, 2), (B,)
    by_hand = -torch.log_softmax(z, -1).gather(1, y[:, None]).mean()
    s = z[:, 1] - z[:, 0]
    binary = -(y * F.logsigmoid(s) + (1 - y) * F.logsigmoid(-s)).mean()  # doc 003's two-class form
assert torch.allclose(by_hand, out.loss, atol=1e-5) and torch.allclose(binary, out.loss, atol=1e-5)
assert torch.allclose(torch.softmax(z, -1)[:, 1], torch.sigmoid(s), atol=1e-6)
print(f"loss {out.loss:.4f} = cross-entropy by hand {by_hand:.4f} = binary form {binary:.4f}")

# %% [markdown]
# The training loop is the documents' one, with the two settings a model this small needs: a
# learning rate of the size `labkit build` uses (bert-base's 2e-5 is for 110M parameters; ours
# has well under a million), and a fixed number of steps (`HF_STEPS`).

# %%
@torch.no_grad()
def hf_accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    for b in loader:
        b = {k: v.to(device) for k, v in b.items()}
        correct += (model(**b).logits.argmax(-1) == b["labels"]).sum().item()
        total += len(b["labels"])
    return correct / total


seed_everything(0)
optimizer = torch.optim.AdamW(hf_model.parameters(), lr=CLASSIFY.lr, weight_decay=CLASSIFY.weight_decay)
hf_model.train()
hf_losses = []
while len(hf_losses) < HF_STEPS:
    for b in train_loader:
        b = {k: v.to(device) for k, v in b.items()}
        loss = hf_model(**b).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hf_losses.append(loss.item())
        if len(hf_losses) == HF_STEPS:
            break
hf_test_accuracy = hf_accuracy(hf_model, test_loader)
print(f"{HF_STEPS} steps: training loss {np.mean(hf_losses[:10]):.3f} → {np.mean(hf_losses[-10:]):.3f}; "
      f"test accuracy {hf_test_accuracy:.3f}")

# %% [markdown]
# ## 2 · The same with `labkit`
#
# `SequenceClassifier` is the lab's twin of `BertForSequenceClassification` (same layers, same
# parameter names once translated), and `SequenceClassifier.from_pretrained(mlm, …)` does what
# `from_pretrained(folder)` did above: copy the encoder with its NSP-trained pooler, create a
# new classifier.
# `finetune_classifier` wraps the loop of §1 with the lab's training settings (warm-up and
# decay of the learning rate, gradient clipping, validation) and scores the test split.

# %%
seed_everything(0)
sentiment_model = SequenceClassifier.from_pretrained(mlm, num_labels=len(sentiment_names),
                                                     id2label=dict(enumerate(sentiment_names)))
assert torch.equal(sentiment_model.encoder.pooler.weight, mlm.encoder.pooler.weight)  # pooler copied, not new
twin = to_hf(sentiment_model).eval()  # the same weights as a transformers model
with torch.no_grad():
    ids, mask = batch["input_ids"], batch["attention_mask"]
    logits = sentiment_model.eval()(ids, mask).logits  # (B, K)
    h_cls = sentiment_model.encoder(ids, mask).last_hidden_state[:, 0]  # (B, C) the final [CLS] vectors
    by_hand = sentiment_model.classifier(torch.tanh(sentiment_model.encoder.pooler(h_cls)))  # pooler, then classifier
    assert torch.allclose(logits, by_hand, atol=1e-5)
    assert torch.allclose(logits, twin(input_ids=ids, attention_mask=mask).logits, atol=1e-5)
print(type(twin).__name__, "computes the same logits")

sentiment_run = finetune_classifier(sentiment_model, tokenizer, sentiment, CLASSIFY)
print(f"labkit: test accuracy {sentiment_run.metrics['accuracy']:.3f}, macro-F1 {sentiment_run.metrics['macro_f1']:.3f} "
      f"(plain loop of §1: {hf_test_accuracy:.3f})")
plot_history(sentiment_run.history, "accuracy", smooth=10)
plt.title("fine-tuning the sentiment classifier")
plt.show()

# %% [markdown]
# Accuracy hides *which* class suffers. Per class $k$ (doc 004 §9.3), precision is the share of
# predicted-$k$ that really are $k$, recall the share of true-$k$ that were found, and F1 their
# harmonic mean:
#
# $$P = \frac{TP}{TP + FP}, \qquad R = \frac{TP}{TP + FN}, \qquad F_1 = \frac{2PR}{P + R}.$$
#
# Macro-F1 averages $F_1$ over the classes, so a classifier that ignores a class cannot hide
# behind the others.

# %%
def class_report(model, ds, names) -> tuple[np.ndarray, np.ndarray]:
    """Print per-class precision/recall/F1; return predictions and gold labels of the test split."""
    gold = np.array(ds["test"]["label"])
    pred = predict_proba(model, tokenizer, list(ds["test"]["text"])).argmax(-1)
    print(f"{'class':>12} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>7}")
    f1s = []
    for k, name in enumerate(names):
        tp, fp, fn = ((pred == k) & (gold == k)).sum(), ((pred == k) & (gold != k)).sum(), ((pred != k) & (gold == k)).sum()
        p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        assert abs(f1 - M.precision_recall_f1(pred.tolist(), gold.tolist(), labels=[k])["f1"]) < 1e-9
        print(f"{name:>12} {p:>9.3f} {r:>7.3f} {f1:>6.3f} {int((gold == k).sum()):>7}")
    macro = M.precision_recall_f1(pred.tolist(), gold.tolist(), labels=list(range(len(names))))["f1"]
    assert abs(np.mean(f1s) - macro) < 1e-9  # macro-F1 is the plain mean over classes
    print(f"{'macro-F1':>12} {macro:>24.3f}   accuracy {M.accuracy(pred.tolist(), gold.tolist()):.3f}")
    return pred, gold


sentiment_pred, sentiment_gold = class_report(sentiment_model, sentiment, sentiment_names)
majority = np.bincount(sentiment_gold).max() / len(sentiment_gold)
assert sentiment_run.metrics["accuracy"] > majority  # better than always answering the commonest class
print(f"majority-class baseline: {majority:.3f}")

# %% [markdown]
# ## 3 · Topic classification: five labels
#
# The same recipe, with a five-way head. A **confusion matrix** shows where the mistakes go:
# row = true topic, column = predicted topic.

# %%
seed_everything(0)
topic_model = SequenceClassifier.from_pretrained(mlm, num_labels=len(topic_names), id2label=dict(enumerate(topic_names)))
topic_run = finetune_classifier(topic_model, tokenizer, topic, CLASSIFY)
topic_pred, topic_gold = class_report(topic_model, topic, topic_names)

confusion = np.zeros((len(topic_names), len(topic_names)), dtype=int)
np.add.at(confusion, (topic_gold, topic_pred), 1)
fig, ax = plt.subplots(figsize=(4.6, 4))
ax.imshow(confusion, cmap="Blues")
for (r, c), n in np.ndenumerate(confusion):
    ax.text(c, r, n, ha="center", va="center", color="white" if n > confusion.max() / 2 else "black")
ax.set_xticks(range(len(topic_names)), topic_names, rotation=45)
ax.set_yticks(range(len(topic_names)), topic_names)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title(f"topic confusion matrix (accuracy {topic_run.metrics['accuracy']:.2f})")
plt.show()

# %%
assert confusion.sum() == len(topic_gold) and np.isclose(np.trace(confusion) / confusion.sum(), topic_run.metrics["accuracy"])
assert topic_run.metrics["accuracy"] > np.bincount(topic_gold).max() / len(topic_gold)  # beats the majority class

# %% [markdown]
# **Try it.** Type a review or a headline; both classifiers answer with their probabilities.

# %%
def classify(text: str = "The chief executive said the battery of the new phone is awful."):
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.2))
    for ax, model, names, title in ((axes[0], sentiment_model, sentiment_names, "sentiment"),
                                    (axes[1], topic_model, topic_names, "topic")):
        p = predict_proba(model, tokenizer, [text])[0]
        ax.barh(names, p, color="tab:blue")
        ax.set_xlim(0, 1)
        ax.set_title(title)
    fig.tight_layout()
    plt.show()


widgets.interact(classify, text=widgets.Text(value="The chief executive said the battery of the new phone is awful.",
                                             continuous_update=False, layout=widgets.Layout(width="80%")));

# %% [markdown]
# What does the fine-tuned model's `[CLS]` look at? bertviz shows every head (it loads its
# JavaScript from the web); the lab's viewer below works offline. In the last layer, the
# `[CLS]` row is the information the classifier head receives.

# %%
review = "The screen is great, but the battery is awful."
bertviz_view(sentiment_model, tokenizer, review)

# %%
attention_explorer(sentiment_model, tokenizer, review);

# %% [markdown]
# ## 4 · What is pretraining worth? The transfer experiment
#
# The claim of doc 003 §1.2 — pretraining reduces how many labels a task needs — can be
# measured, and a measurement can come out against it. For each task and each label budget
# $n$, fine-tune the same architecture twice with the same steps, learning rate, seeds and
# labelled examples: once from the pretrained encoder, once from random weights, and score
# the test split (accuracy for the sentiment classifier, entity-level F1 for the NER tagger
# of chapter 06). `labkit.transfer.run_transfer` does exactly this for the tasks in
# `SCALE.transfer`. The notebook runs a reduced grid (two seeds); `labkit build` runs the full
# one at its scale and plots it in its report.

# %%
transfer_cfg = SCALE.transfer if LAB_SCALE == "gpu" else replace(SCALE.transfer, label_counts=(32, 128), seeds=(0, 1))
transfer_data = {task: load_task(task, size=LAB_SCALE) for task in transfer_cfg.tasks}
transfer_rows = run_transfer(mlm, tokenizer, transfer_data, transfer_cfg)
print(transfer_markdown(transfer_rows))
plot_transfer(transfer_rows)
plt.show()

# %% [markdown]
# The table averages over seeds. Because both runs of a seed see the same labelled examples in
# the same order, we can also compare them seed by seed:

# %%
def paired(task: str, n: int) -> tuple[dict, dict]:
    """The pretrained and the scratch row of one task at one label budget."""
    row = {r["init"]: r for r in transfer_rows if r["task"] == task and r["labels"] == n}
    return row["pretrained"], row["scratch"]


budgets = {task: sorted({r["labels"] for r in transfer_rows if r["task"] == task}) for task in transfer_cfg.tasks}
for task, counts in budgets.items():
    for n in counts:
        pre, scr = paired(task, n)
        wins = sum(p > s for p, s in zip(pre["runs"], scr["runs"]))
        print(f"{task:>9}, {n:>4} labels: pretrained {pre['score']:.3f}, scratch {scr['score']:.3f} "
              f"({100 * (pre['score'] - scr['score']):+5.1f} points), pretrained ahead with {wins} of {len(pre['runs'])} seeds")

# %%
pre, scr = paired("ner", budgets["ner"][0])  # the token-level task at the fewest labels
assert pre["score"] - scr["score"] > 0.10, f"NER gain {pre['score'] - scr['score']:+.3f}"  # more than 10 F1 points ...
assert all(p > s for p, s in zip(pre["runs"], scr["runs"]))  # ... and with every seed, not only on average
sentiment_pre, sentiment_scr = paired("sentiment", budgets["sentiment"][0])
sentiment_gain, ner_gain = sentiment_pre["score"] - sentiment_scr["score"], pre["score"] - scr["score"]
assert sentiment_gain > 0.05  # pretraining is ahead on sentiment too, even with the fewest labels ...
assert sentiment_gain < ner_gain  # ... but it does less for sentiment than for NER
print(f"fewest labels: pretraining adds {100 * ner_gain:+.1f} entity-F1 points to NER "
      f"and {100 * sentiment_gain:+.1f} accuracy points to sentiment")

# %% [markdown]
# For NER, pretraining pays off: with a few dozen labelled sentences, the pretrained tagger
# finds entities that the one trained from scratch misses. (A likely reason: to fill in
# `[MASK]` in "shares of [MASK] rose", the model must learn which words name companies — the
# very knowledge NER needs, on every token.)
#
# **Sentiment took more work.** Its rows above come from a small grid with two seeds, so read
# them together with the full grid that `labkit build --scale cpu` writes to its `report.md`
# (seeds 0–2, 32 to 2,000 labels). With BERT's recipe as chapter 04 first shows it — the
# corpus packed into blocks, two attention heads, plain fine-tuning — the pretrained sentiment
# classifier was *behind* the one trained from scratch at 32 and 128 labels (−4.3 and −2.8
# points when we ran it), while NER gained tens of points. Three measurements explain why.
#
# 1. **TinyWorld sentiment is almost a bag-of-words task.** A review is positive or negative
#    because of its opinion words (*great*, *awful*, *not good*), nearly regardless of order.
#    A linear model on word counts — logistic regression, which sees no order at all — is a
#    strong baseline (measured below).
# 2. **A randomly initialised encoder gets a bag of words for free.** With small random
#    weights every attention score is near 0, so the softmax spreads `[CLS]`'s attention almost
#    evenly over the review: each layer mixes into `[CLS]` an almost equal share of every
#    token, roughly an *average of the review's word vectors* — a bag of words, ready for the
#    classifier to weigh. The pretrained `[CLS]` has learnt to attend selectively — to
#    whatever masked LM and next-sentence prediction needed — and a few labels must first
#    undo that.
# 3. **Polarity is a faint signal in the corpus.** The hope is that the pretrained model knows
#    *superb* behaves like *great* because it met both in similar contexts. But in a review,
#    "but" and "not" put words of both polarities side by side, and with several documents
#    packed into one block a blank sees reviews of both moods at once. The old model's
#    opinion-word embeddings formed one tight cluster: cosine 0.73 within a polarity, 0.71
#    across.
#
# What the lab's pretraining does now, each change measured with the grid (details in
# `labkit.pretrain`, `labkit.nsp` and `labkit.transfer`):
#
# - **Stories** (35% of the corpus): two to four sentences of one mood, in which opinion words
#   — the held-out ones too — sit next to each other and to how people reacted ("The tea was
#   shoddy and really lousy, so she frowned."). Adjectives joined by *and* agree in polarity:
#   a classic cue for learning the orientation of words from raw text (Hatzivassiloglou &
#   McKeown, 1997).
# - **One document per row** (`pack_documents`) instead of packed blocks, so a blank sees only
#   its own document. With packing, the same data and masking gave no polarity at all.
# - **Salient masking**: the corpus's sentiment words are masked with extra probability 0.5, as
#   ERNIE masks whole entities.
# - **Hard next-sentence negatives**: the wrong continuation is the most similar of 8 random
#   documents, not any document, so `[CLS]` must check finer agreement than the kind of text.
#   Stories name their person in the first sentence only, so a wrong continuation cannot give
#   itself away by a different name, and its mood is one of the cues left.
# - **Four attention heads** instead of two (same width): with two, whether the model learnt
#   polarity within 3,500 steps changed from seed to seed.
# - **`[CLS]` predicts the masked sentiment words** of its document (`cls_salient`, after SKEP,
#   Tian et al., 2020, which predicts a text's aspect–sentiment pairs from `[CLS]`). The words
#   that could fill the blanks of one review share its mood, so the cheapest `[CLS]` vector that
#   predicts them is one that holds the mood — a sentence-level objective with no label in it,
#   only the list of sentiment words that salient masking already uses.
# - **Linear probing, then fine-tuning** (LP-FT, Kumar et al., 2022) in the grid, for both
#   initialisations: 60 steps train only the new head (and the pooler), then the whole model.
#
# Without the last objective, the `cpu` build gave (3 seeds) sentiment 0.705 vs 0.609 from
# scratch at 32 labels (+9.6), and the pretrained runs spread widely (0.772, 0.740, 0.604):
# the opinion words had their polarity, but whether `[CLS]` summarised a review's mood
# differed from run to run. With it, the `cpu` build gives 0.897 vs 0.609 at 32 labels
# (+28.7; pretrained runs 0.908, 0.874, 0.908), 0.965 vs 0.763 at 128 (+20.3), +12.7 at 512
# and +11.6 at 2,000; NER +60.1 and +55.9 entity-F1 points at 32 and 128.
#
# The cell below measures points 1 and 2 for this run: the bag-of-words baseline with the same
# labelled examples as the grid (and with every labelled review), and how evenly `[CLS]`
# spreads its attention (the entropy of its attention row divided by $\log T$, the entropy of
# a uniform row over $T$ tokens: 1 means perfectly even).

# %%
def bag_of_words(texts) -> torch.Tensor:
    """(N, V) multi-hot vectors: which word pieces occur in each text (their order is thrown away)."""
    ids = tokenizer(list(texts), truncation=True, max_length=128)["input_ids"]
    x = torch.zeros(len(ids), len(tokenizer))
    for i, row in enumerate(ids):
        x[i, row] = 1.0
    return x


def bag_of_words_accuracy(train, test) -> float:
    """Test accuracy of logistic regression (one linear layer, full-batch AdamW) on bags of word pieces."""
    torch.manual_seed(0)
    x, y = bag_of_words(train["text"]), torch.tensor(train["label"])  # (N, V), (N,)
    linear = torch.nn.Linear(x.shape[1], 2)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=0.05, weight_decay=0.01)
    for _ in range(200):
        loss = F.cross_entropy(linear(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = linear(bag_of_words(test["text"])).argmax(-1)  # (N_test,)
    return (pred == torch.tensor(test["label"])).float().mean().item()


for n in budgets["sentiment"]:
    bow = np.mean([bag_of_words_accuracy(subsample(sentiment["train"], n, seed, "label"), sentiment["test"])
                   for seed in transfer_cfg.seeds])
    pre, scr = paired("sentiment", n)
    print(f"sentiment, {n:>4} labels: bag of words {bow:.3f}, pretrained {pre['score']:.3f}, scratch {scr['score']:.3f}")
bow_all = bag_of_words_accuracy(sentiment["train"], sentiment["test"])
print(f"bag of words with all {len(sentiment['train'])} labelled reviews: {bow_all:.3f} (majority class: {majority:.3f})")
assert bow_all > majority + 0.2  # word counts alone, without any order, classify most reviews


@torch.no_grad()
def cls_attention_evenness(encoder, texts: list[str]) -> list[float]:
    """Per layer: entropy of [CLS]'s attention row / log(number of tokens), averaged over heads and texts."""
    encoder.eval()
    at = next(encoder.parameters()).device
    b = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt").to(at)
    attentions = encoder(b["input_ids"], b["attention_mask"], output_attentions=True).attentions  # L of (B, nh, T, T)
    log_lengths = b["attention_mask"].sum(-1).float().log()  # (B,)
    evenness = []
    for a in attentions:
        p = a[:, :, 0, :]  # (B, nh, T) the [CLS] row: padding gets weight 0
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)  # (B, nh)
        evenness.append((entropy / log_lengths[:, None]).mean().item())
    return evenness


seed_everything(0)
random_encoder = SequenceClassifier.from_pretrained(None, mlm.config, num_labels=len(sentiment_names)).encoder
probe = list(sentiment["test"]["text"][:64])
even_random, even_pretrained = cls_attention_evenness(random_encoder, probe), cls_attention_evenness(mlm.encoder, probe)
print("evenness of [CLS] attention per layer — random init:", [f"{e:.4f}" for e in even_random],
      " pretrained:", [f"{e:.3f}" for e in even_pretrained])
assert min(even_random) > 0.99  # random init: [CLS] averages (almost) uniformly over the review
assert max(even_pretrained) < min(even_random)  # pretraining made [CLS] attend selectively

# %% [markdown]
# A fourth measurement asks the pretrained model itself, through its own masked-LM head. If
# pretraining had taught it polarity, a blank after a clearly positive clause should get more
# probability on positive opinion words than the same blank after a negative clause. The cell
# scores a blank by $\log P(\text{any positive word}) - \log P(\text{any negative word})$ over the
# common opinion words of each polarity, and compares the two contexts.

# %%
@torch.no_grad()
def polarity_score(text: str) -> float:
    """log P(a positive opinion word) − log P(a negative one) at the [MASK] in ``text``."""
    mlm.eval()
    at = next(mlm.parameters()).device
    b = tokenizer([text], return_tensors="pt").to(at)
    logits = mlm(b["input_ids"], b["attention_mask"]).logits[0]  # (T, V)
    log_p = logits[b["input_ids"][0] == tokenizer.mask_token_id][0].float().log_softmax(-1)  # (V,)
    positive, negative = (tokenizer.convert_tokens_to_ids(opinion_words(p, False)) for p in ("positive", "negative"))
    return (log_p[positive].logsumexp(0) - log_p[negative].logsumexp(0)).item()


contexts = [("The screen is {} and the battery is [MASK].", "great", "awful"),
            ("The staff were {}. Overall, it was [MASK].", "superb", "dreadful"),
            ("I {} the plot. The acting was [MASK].", "loved", "hated")]
gaps = []
for template, good, bad in contexts:
    after_good, after_bad = polarity_score(template.format(good)), polarity_score(template.format(bad))
    gaps.append(after_good - after_bad)
    print(f"{template.format('…'):46s} after {good!r}: {after_good:+.2f}   after {bad!r}: {after_bad:+.2f}")
print(f"mean difference: {np.mean(gaps):+.2f}  (0: the context's polarity does not move the prediction)")
assert np.mean(gaps) > 0  # a positive context pulls the blank towards positive words, as the text says

# %% [markdown]
# When we ran this with BERT's plain recipe at `cpu` scale, the differences were +0.02, 0.00
# and −0.02: the polarity of the context did not move the prediction. With today's recipe the
# `cpu` build gives +1.52, +1.78 and +0.94. A toy experiment (`scripts/polarity_toy.py`, about
# 3 minutes) isolates the effect of packing: on reviews of the single form "The screen is
# great, really superb." the 2-layer, 64-wide model learned the agreement with each of three
# seeds when every training sequence held one review, and with none when several reviews were
# packed into a 64-token block.

# %% [markdown]
# **Questions for you.** Which of the changes above carry the gain, and which only help? Places
# to look:
#
# - **The data.** Search the pretraining corpus (`corpus["train"]`) for *superb* or *dreadful*:
#   how often does each occur, and next to what? Which kinds of sentence carry its polarity?
# - **The objective.** Rebuild without one of them — the objectives are a tuple in the scale's
#   `PretrainConfig`, so `variant = replace(SCALES["cpu"], pretrain=replace(SCALES["cpu"].pretrain,
#   objectives=(MaskedWords(), NextSentence(candidates=8))))` (from `labkit.build`,
#   `labkit.objectives` and `dataclasses`), then `build(variant, out=...)` — and compare the two
#   `report.md` grids. Next-sentence prediction alone
#   teaches `[CLS]` whether two halves *agree*, not what mood they share: why is that harder to
#   read with 32 labels? Which other label-free objective would put the mood into `[CLS]` —
#   predicting a review's star rating where the corpus states it, say?
# - **The fine-tuning.** Compare §1's plain loop with §2's `finetune_classifier` on the same
#   labels; try `TransferConfig(probe_steps=0)` (plain fine-tuning) against the default LP-FT;
#   or read the review through the average of all final token vectors (mean pooling) instead
#   of `[CLS]`.
# - **The scale.** Rerun this chapter with `LAB_SCALE=gpu`: a larger model pretrained for
#   longer.
#
# `scripts/sentiment_diagnostics.py` measures two things on a build: whether the input
# embeddings separate the opinion words by polarity (leave-one-out nearest centroid, 0.5 = no
# polarity), and whether a fresh model of the same shape can read polarity through its
# masked-LM head at all ("Rated [MASK] out of 5." before each labelled review;
# `tests/test_scripts.py` checks that it passes 0.9). The architecture can carry sentiment;
# the question is what pretraining puts there.
#
# Test any idea the way this section does — the same grid, pretrained against scratch, with
# several seeds — and believe the table, not the hope.

# %% [markdown]
# ## 5 · Words the labels never showed
#
# TinyWorld's labelled sentiment *training* split uses only common opinion words (good, awful,
# …). Its validation and test splits also use **held-out** words — superb, dreadful, … — that
# appear in the unlabelled pretraining corpus but in no labelled training example. A model
# trained from scratch has never seen them used; the pretrained one met them in context during
# pretraining — whether it learnt their *polarity* there is the question. Train a from-scratch
# twin of the sentiment model and score the two test subsets separately.

# %%
heldout = opinion_words("positive", True) + opinion_words("negative", True)
assert not any(uses_heldout_words(t) for t in sentiment["train"]["text"])  # no labelled example uses them ...
corpus_docs = corpus["train"]["text"]
n_corpus = sum(uses_heldout_words(t) for t in corpus_docs)
assert n_corpus > 0  # ... but the pretraining corpus does
print(f"held-out words: in 0 labelled training reviews, in {n_corpus:,} of {len(corpus_docs):,} pretraining documents")
seed_everything(0)
scratch_model = SequenceClassifier.from_pretrained(None, mlm.config, num_labels=len(sentiment_names),
                                                   id2label=dict(enumerate(sentiment_names)))
scratch_init = scratch_model.encoder.embeddings.token.weight.detach().clone()
scratch_run = finetune_classifier(scratch_model, tokenizer, sentiment, CLASSIFY)

test_texts = list(sentiment["test"]["text"])
has_heldout = np.array([uses_heldout_words(t) for t in test_texts])
subset_accuracy = {}
for name, model in (("pretrained", sentiment_model), ("from scratch", scratch_model)):
    pred = predict_proba(model, tokenizer, test_texts).argmax(-1)
    subset_accuracy[name] = [(pred[m] == sentiment_gold[m]).mean() for m in (has_heldout, ~has_heldout)]
print(f"{has_heldout.sum()} of {len(test_texts)} test reviews use a held-out opinion word")
fig, ax = plt.subplots(figsize=(5.5, 3))
for j, (name, accs) in enumerate(subset_accuracy.items()):
    ax.bar(np.arange(2) + 0.38 * j, accs, width=0.38, label=name)
    for x, a in zip(np.arange(2) + 0.38 * j, accs):
        ax.text(x, a + 0.01, f"{a:.2f}", ha="center")
ax.set_xticks(np.arange(2) + 0.19, ["with held-out words", "common words only"])
ax.set_ylim(0, 1.05)
ax.set_ylabel("test accuracy")
ax.legend(loc="lower right")
plt.show()
(pre_heldout, pre_common), (scr_heldout, scr_common) = subset_accuracy["pretrained"], subset_accuracy["from scratch"]
print(f"reviews with held-out words: pretrained {pre_heldout:.3f}, from scratch {scr_heldout:.3f} "
      f"({100 * (pre_heldout - scr_heldout):+.1f} points); common words only: {100 * (pre_common - scr_common):+.1f} points")
assert pre_heldout > scr_heldout  # pretraining taught something about words no label showed

# %% [markdown]
# Why can the from-scratch model not read *superb*? Its vector for that word never received a
# gradient — no training example contained it — so AdamW's weight decay only shrank it: it
# still points exactly where random initialisation put it. The vectors of words it did see
# have turned. In the pretrained model the same row was learnt during pretraining, from the
# contexts the word appeared in. A trained vector is not yet a useful one, though: what
# matters for sentiment is whether *superb* ended up near *great* or near *awful*. The pairs
# below ask the two classifiers directly.

# %%
final = scratch_model.encoder.embeddings.token.weight.detach().cpu()
heldout_ids = tokenizer.convert_tokens_to_ids(heldout)
common_ids = tokenizer.convert_tokens_to_ids(opinion_words("positive", False) + opinion_words("negative", False))
turn = lambda ids: F.cosine_similarity(final[ids], scratch_init.cpu()[ids], dim=-1)  # noqa: E731
print(f"cosine(final, initial) of the scratch model's word vectors: held-out words {turn(heldout_ids).min():.6f} "
      f"(minimum), common opinion words {turn(common_ids).mean():.3f} (mean)")
assert tokenizer.unk_token_id not in heldout_ids  # each held-out word is one token of the vocabulary
assert (turn(heldout_ids) > 1 - 1e-5).all()  # never trained: only shrunk by weight decay
assert (turn(common_ids) < 0.999).all()  # trained words moved

# %%
pairs = [("The battery is great.", "The battery is superb."), ("The service was awful.", "The service was dreadful.")]
print(f"{'review':>28} {'P(positive) pretrained':>23} {'from scratch':>13}")
for text in [t for pair in pairs for t in pair]:
    p_pre, p_scr = (predict_proba(m, tokenizer, [text])[0, 1] for m in (sentiment_model, scratch_model))
    print(f"{text:>28} {p_pre:>23.3f} {p_scr:>13.3f}")

# %% [markdown]
# Compare the two groups of bars: the gap between "with held-out words" and "common words
# only" is what the labelled data could not teach, and the left pair of bars shows whether
# pretraining made up any of it in this run (the difference is printed under the chart).
# Where the pretrained model's left bar is no higher than the scratch model's, it reads
# *superb* no better than a model that never saw the word: pretraining gave the word a vector
# but not its polarity. That is what we found at `cpu` scale with BERT's plain recipe (point 3
# of §4); with the stories and one document per row it is ahead on these reviews. It is the
# first thing to watch when you try the questions of §4, or rerun this chapter at another
# `LAB_SCALE`.
#
# ## 6 · A scenario: monitoring the mood of financial news
#
# Doc 003 §6.2 describes financial sentiment monitoring (金融舆情监测): classify a stream of
# news as it arrives and raise an alert when negative news surges. Let's simulate a month.
# TinyWorld's business news has topic labels but no sentiment labels, so a short list of event
# words stands in for an analyst who marks each item as good or bad news; the simulation uses
# those marks to put a bad stretch into the last ten days.

# %%
GOOD = {"rise", "rose", "grew", "beat", "strong", "welcomed", "higher", "raised", "lift", "lifting", "gained"}
BAD = {"fell", "weak", "cut", "warned", "rising"}  # "costs are rising" is bad news for a company


def analyst_mark(text: str) -> int:
    """+1 good news, -1 bad news, 0 neither or mixed: the analyst's reading of a business item."""
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    return int(np.sign(len(words & GOOD) - len(words & BAD)))


business = [r["text"] for split in ("validation", "test") for r in topic[split] if r["label"] == 0]
marks = np.array([analyst_mark(t) for t in business])
good_items, bad_items = [t for t, m in zip(business, marks) if m > 0], [t for t, m in zip(business, marks) if m < 0]
print(f"{len(business)} business items: {len(good_items)} good news, {len(bad_items)} bad news, "
      f"{(marks == 0).sum()} neither")

rng = np.random.default_rng(0)
DAYS, PER_DAY, SHOCK = 30, 12, 20
stream = []  # (day, text, analyst mark)
for day in range(DAYS):
    share_bad = 0.2 if day < SHOCK else 0.7  # the bad stretch starts on day SHOCK
    for _ in range(PER_DAY):
        pool = bad_items if rng.random() < share_bad else good_items
        text = pool[rng.integers(len(pool))]
        stream.append((day, text, analyst_mark(text)))

# %% [markdown]
# The monitor scores every item with the sentiment classifier of §2 — trained on *product
# reviews*, not news — and averages $P(\text{positive})$ per day. An alert fires on a day whose
# score falls more than three standard deviations below the mean of the first two weeks.

# %%
days = np.array([d for d, _, _ in stream])
p_positive = predict_proba(sentiment_model, tokenizer, [t for _, t, _ in stream])[:, 1]
model_index = np.array([p_positive[days == d].mean() for d in range(DAYS)])
analyst_index = np.array([np.mean([m > 0 for d2, _, m in stream if d2 == d]) for d in range(DAYS)])


def alerts(index: np.ndarray, calm: int = 14, k: float = 3.0) -> list[int]:
    """Days whose value is more than k standard deviations below the mean of the first `calm` days."""
    mu, sd = index[:calm].mean(), index[:calm].std()
    return [d for d in range(calm, len(index)) if index[d] < mu - k * sd]


fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot(range(DAYS), analyst_index, "s--", color="gray", label="analyst: share of good news")
ax.plot(range(DAYS), model_index, "o-", label="classifier: mean P(positive)")
ax.axvspan(SHOCK - 0.5, DAYS - 0.5, color="tab:red", alpha=0.1, label="bad stretch (simulated)")
for d in alerts(model_index):
    ax.annotate("alert", (d, model_index[d]), textcoords="offset points", xytext=(0, -14), ha="center", color="tab:red")
ax.set_xlabel("day")
ax.set_ylim(0, 1)
ax.legend(loc="lower left", fontsize=8)
ax.set_title("the daily mood of business news")
plt.show()

agree = np.mean([(p > 0.5) == (m > 0) for p, (_, _, m) in zip(p_positive, stream)])
corr = np.corrcoef(model_index, analyst_index)[0, 1]
print(f"classifier agrees with the analyst on {agree:.0%} of items; correlation of the daily curves {corr:+.2f}")
print(f"alert days — analyst curve: {alerts(analyst_index)}, classifier curve: {alerts(model_index)}")

# %%
assert np.allclose(model_index.mean(), p_positive.mean())  # equal-sized days: mean of daily means = mean of items
assert analyst_index[SHOCK:].mean() < analyst_index[:SHOCK].mean() - 0.3  # the simulation has its bad stretch ...
assert alerts(analyst_index) and min(alerts(analyst_index)) >= SHOCK  # ... and the rule flags it, with no false alarm

# %% [markdown]
# The classifier was never shown a news item. Whether it follows the analyst's curve — and so
# whether its alerts can be trusted — is a question of **domain shift (领域迁移)**: review
# words (*great*, *awful*) are not news words (*rose*, *fell*). The printed agreement answers
# it for this model. The usual remedy is a few hundred labelled in-domain items and another
# round of fine-tuning — the few-label regime of §4, where, as we saw, the pretrained encoder's
# advantage has to be measured rather than assumed.
#
# ## Summary
#
# - Fine-tuning = pretrained encoder + a new classifier layer (well under one percent of the
#   parameters) + a short training run on labelled data with the cross-entropy loss. The
#   pooler between `[CLS]` and the classifier comes pretrained too, by next-sentence
#   prediction (下一句预测): "does segment B really continue segment A?".
# - The documents' `BertForSequenceClassification` recipe runs unchanged on the lab's own
#   model once it is saved as a folder (a `BertForPreTraining` checkpoint); padding belongs in
#   the collate function.
# - Evaluate with more than accuracy: per-class precision, recall and F1, macro-F1, and a
#   confusion matrix.
# - The transfer experiment measures what pretraining is worth at each label budget. For NER,
#   with the fewest labels, the pretrained encoder wins by a wide margin. For TinyWorld
#   sentiment, BERT's plain recipe did not beat random initialisation: the task is nearly a
#   bag of words, which a random encoder's even `[CLS]` attention provides for free, and
#   pretraining did not teach the polarity of corpus-only words. Text that carries polarity,
#   one document per row, salient masking, and a `[CLS]` that must predict the blanked
#   sentiment words made it win by 20–29 points at 32 and 128 labels. Transfer is a hypothesis
#   to measure, not a law.
# - Words that only the unlabelled corpus contained are invisible to a model trained from
#   scratch: their vectors never move.
# - A classifier used as a monitor inherits its training domain; check it against a few
#   labelled items from the stream before trusting its alerts.
#
# **Next:** chapter 06 fine-tunes the same encoder to label every token (NER) and to point at
# answers (question answering).
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell. Solutions: `notebooks/solutions/ch05.py`.
#
# **Exercise 1.** In `BertForSequenceClassification`, the final `[CLS]` vector of a width-$C$
# encoder passes through a head of two linear layers, both with biases: the pooler
# ($C \times C$, then tanh) and the classifier ($C \times K$ for $K$ classes). How many
# parameters do the two layers have together for the sizes in `ch05.HEAD_SIZES`? (Loaded from
# our `BertForPreTraining` folder, only the classifier is new; loaded from a masked-LM-only
# `BertForMaskedLM` folder, which has no pooler, both would be.)

# %%
from labkit.exercises import ch05

C, K = ch05.HEAD_SIZES
answer = None  # your code: an int
ch05.check_head_parameters(answer)

# %% [markdown]
# **Exercise 2.** `ch05.CONFUSION` is a confusion matrix of a three-class classifier (rows:
# true class, columns: predicted class). Compute its macro-F1.

# %%
print(ch05.CONFUSION)
answer = None  # your code: a float
ch05.check_macro_f1(answer)

# %% [markdown]
# **Exercise 3.** `ch05.two_class_logits()` gives logits of shape (N, 2). Compute
# $P(\text{class } 1)$ for every row using `torch.sigmoid` only — no softmax.

# %%
z = ch05.two_class_logits()
answer = None  # your code: a tensor of shape (N,)
ch05.check_sigmoid_of_difference(answer)
