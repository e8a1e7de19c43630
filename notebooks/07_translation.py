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
# write it. This chapter adds a **decoder (解码器)** that writes the Chinese sentence one token at
# a time while looking back at the English through **cross-attention (交叉注意力)**, starts both
# halves from the pretrained mini-BERT, and scores the result with BLEU.
#
# **Learning objectives.** After this chapter you can
# 1. describe an encoder–decoder: what the encoder, the decoder's causal self-attention and
#    its cross-attention each compute — and check cross-attention's formula against the model;
# 2. train with teacher forcing, and say which weights a warm start copies from the pretrained
#    encoder and which start from scratch;
# 3. decode by greedy search and by beam search, and compare the probability of what each finds;
# 4. compute BLEU by hand — clipped n-gram precisions, brevity penalty — and check it against
#    `labkit.metrics.corpus_bleu_zh`;
# 5. read a cross-attention map between English and Chinese tokens, and say what it does and
#    does not show.
#
# **Prerequisites.** Chapters 01 (attention and masks), 04 (pretraining) and 05 (fine-tuning).
#
# **Estimated time:** about 75 minutes to read and do (the exercises and the open experiment
# included); the code runs in about 85 s at cpu scale with a build present (measured on 2 cores; `run_times.json`).
#
# **Source documents.** doc 002 §4.3 (transferring a foundation model to machine translation:
# pretrain, fine-tune, customise), §5.4 (the weather sentence), §6.1 (machine translation as
# an application); doc 004 §4.3 (attention relates each source word to each target word);
# doc 000 §3.2 (step 2: encoder, decoder and attention modules) and §4.3 (translation captures
# correspondences between the source and the target language).
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
from collections import Counter
from dataclasses import replace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers
from bertviz import head_view

from labkit import metrics as M
from labkit.build import SCALES, default_output_dir, ensure_pretrained
from labkit.data import load_task
from labkit.env import best_device
from labkit.finetune import finetune_translation
from labkit.folders import load_model
from labkit.generate import beam_search, greedy_decode
from labkit.training import seed_everything
from labkit.translate import join_cjk, translate, warm_start_seq2seq
from labkit.viz import attention_heatmap  # importing labkit.viz also makes Chinese render in plots

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")  # "ci" (tests), "cpu" (default) or "gpu"
SCALE = SCALES[LAB_SCALE]  # model and training sizes of `labkit build` at this scale
BUILD = default_output_dir(LAB_SCALE)  # where `labkit build` saved its models and report.json
REPORT = json.loads((BUILD / "report.json").read_text(encoding="utf-8")) if (BUILD / "report.json").is_file() else None
WARM_STEPS = {"ci": 40, "cpu": 40, "gpu": 200}[LAB_SCALE]  # steps of the warm-start comparison in §2
N_BEAM = 200  # test pairs decoded by beam search in §4, as the build's report does
seed_everything(0)
device = best_device()
plt.rcParams["figure.dpi"] = 80
transformers.logging.set_verbosity_error()  # keep the outputs short: no loading reports
transformers.utils.logging.disable_progress_bar()
print(f"LAB_SCALE = {LAB_SCALE!r}, device = {device}")

# %% [markdown]
# TinyWorld's translation task pairs English sentences (the *source* language) with Chinese
# ones (the *target* language) — everyday phrases (the weather, shopping, travel) and facts
# about its people and companies. The tokenizer is the bilingual one from
# chapter 03: English becomes word pieces, every Chinese character a token of its own, and both
# languages share one vocabulary.

# %%
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
pairs = load_task("translation", size=LAB_SCALE)
for p in pairs["train"].select(range(3))["translation"]:
    print(f"{p['en']:<55} {p['zh']}")
WEATHER_EN, WEATHER_ZH = "What is the weather like today?", "今天天气怎么样？"
print(tokenizer.tokenize(WEATHER_EN), tokenizer.tokenize(WEATHER_ZH))
assert tokenizer.tokenize(WEATHER_ZH) == list(WEATHER_ZH)  # one token per Chinese character
print({split: len(pairs[split]) for split in pairs})

# %% [markdown]
# ## 1 · Encoder, decoder, cross-attention
#
# An encoder–decoder — also called a **sequence-to-sequence model (序列到序列模型)**; in the lab a
# `labkit.transformer.Seq2Seq`, in transformers an `EncoderDecoderModel` — has three kinds of
# attention:
#
# * the **encoder** (a BERT, chapter 02) reads the English with bidirectional self-attention
#   and produces one vector per source token — the *memory* $H \in \mathbb{R}^{S \times C}$;
# * the **decoder**'s self-attention is **causal**: target position $t$ sees only the tokens
#   written so far (chapter 01, §4 builds the causal mask; chapter 04, §8 trains a model with
#   it to predict the next token);
# * its **cross-attention** takes queries from the decoder and keys and values from the
#   memory: $\mathrm{softmax}(Q_{\text{dec}} K_{\text{enc}}^\top / \sqrt{d_k})\,V_{\text{enc}}$, so
#   each Chinese position can look at any English token (doc 004 §4.3).
#
# The lab's trained translator comes from `labkit build` if it ran at this scale; otherwise a
# shorter run here stands in.

# %%
FROM_BUILD = (BUILD / "translation" / "model.safetensors").is_file() and REPORT is not None
if FROM_BUILD:
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
assert reported.shape[-2:] == (target.shape[1] - 1, enc["input_ids"].shape[1])  # (target tokens, source tokens)
print("cross-attention weights:", tuple(reported.shape), "= (batch, heads, target tokens, source tokens); formula checked")

# %% [markdown]
# ### Teacher forcing
#
# During training the decoder is fed the *true* target shifted right and must predict it
# shifted left: reading `[CLS] 今 天 …` it predicts `今 天 … [SEP]`. This is **teacher forcing
# (教师强制)**: every position is trained at once (the causal mask hides the future), on the
# reference prefix rather than on the model's own guesses.

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
# Training the translator from random weights would waste what pretraining learned. A **warm
# start (热启动)** initialises it from the pretrained model instead: `warm_start_seq2seq(mlm)`
# copies the mini-BERT into the encoder, and also into the decoder's embeddings, self-attention
# and feed-forward layers (the "BERT-to-BERT" warm start). Only cross-attention, with the layer
# norm after it, starts from scratch — an encoder has nothing to copy it from. This is doc
# 002 §4.3's recipe: transfer a pretrained model to translation, then fine-tune it.

# %%
warm = warm_start_seq2seq(mlm, n_decoder_layers=SCALE.model.n_decoder_layers)
same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
assert same(warm.encoder, mlm.encoder)
assert same(warm.decoder.layers[0].attn, mlm.encoder.layers[0].attn)
assert same(warm.decoder.embeddings, mlm.encoder.embeddings)
fresh_cross = [n for n, _ in warm.named_parameters() if ".cross." in n or "cross_norm" in n]
assert not any(same(warm.decoder.layers[0].cross, block.attn) for block in mlm.encoder.layers)  # no copy for it
n_cross = sum(p.numel() for n, p in warm.named_parameters() if n in fresh_cross)
n_all = sum(p.numel() for p in warm.parameters())
print(f"{n_cross:,} of {n_all:,} parameters ({n_cross / n_all:.0%}) — cross-attention and its layer norm — start from scratch")

# %% [markdown]
# Does the warm start help? Train it and a randomly initialised twin for the same
# `WARM_STEPS` steps with the same data and seed, and compare the training losses.

# %%
short_cfg = replace(SCALE.finetune["translation"], steps=WARM_STEPS, progress=False)
runs = {}
for name, init in (("warm start", mlm), ("random init", None)):
    seed_everything(0)
    model = warm_start_seq2seq(init, replace(mlm.config, n_decoder_layers=SCALE.model.n_decoder_layers),
                               n_decoder_layers=SCALE.model.n_decoder_layers)
    runs[name] = finetune_translation(model, tokenizer, pairs, short_cfg, validate=False, test=False)
tail = {name: np.mean(run.history.loss[-10:]) for name, run in runs.items()}
fig, ax = plt.subplots(figsize=(7, 3))
for name, run in runs.items():
    ax.plot(run.history.steps, run.history.loss, label=f"{name} (last 10 steps: {tail[name]:.2f})")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.legend()
ax.set_title(f"the first {WARM_STEPS} steps of translation training")
plt.show()
print({k: round(v, 3) for k, v in tail.items()})
assert tail["warm start"] < tail["random init"]

# %% [markdown]
# ## 3 · Decoding: greedy search and beam search
#
# The decoder gives $P(y_t \mid y_{<t}, x)$; a translation is scored by
#
# $$\log P(y \mid x) = \sum_t \log P(y_t \mid y_{<t}, x).$$
#
# **Greedy decoding (贪心解码)** takes the most likely token at every step — fast, but a good
# first token can lead into a dead end. **Beam search (束搜索)** keeps the `num_beams` best
# prefixes at every step and returns the best finished one, scored per token ($\log P / |y|$)
# so long sentences are not punished just for having more terms. Decode the same sentences
# both ways and score what each found with the model itself:

# %%
@torch.no_grad()
def sequence_logprob(source: str, output_ids: list[int]) -> tuple[float, int]:
    """log P(y | x) of a decoded sequence [CLS] y_1 … [SEP], by teacher forcing, and its length |y|."""
    enc = tokenizer([source], return_tensors="pt").to(device)
    y = torch.tensor([output_ids], device=device)
    logits = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=y[:, :-1]).logits  # (1, T, V)
    return torch.log_softmax(logits, -1)[0].gather(1, y[0, 1:, None]).sum().item(), len(output_ids) - 1


def decode_ids(source: str, num_beams: int) -> list[int]:
    """Token ids [CLS] y_1 … [SEP] of the translation of one sentence (greedy when num_beams == 1)."""
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
# its own output must reproduce it. And beam search, which explores more prefixes, finds a
# translation the model rates at least as high per token for most sentences — but not for
# every one. It keeps only the `num_beams` prefixes with the highest log-probability *so far*
# and stops once it has `num_beams` finished candidates, so greedy's translation can drop out
# of the beam on the way. Look in the table for the sentences where beam search lost.

# %%
ids = decode_ids(WEATHER_EN, 1)
enc = tokenizer([WEATHER_EN], return_tensors="pt").to(device)
with torch.no_grad():
    logits = translator(enc["input_ids"], enc["attention_mask"],
                        decoder_input_ids=torch.tensor([ids[:-1]], device=device)).logits  # (1, T, V)
assert logits[0].argmax(-1).tolist() == ids[1:]  # every greedy token is the argmax given its prefix
beam_wins = sum(b >= g - 1e-6 for g, b in per_token)  # (a tie when both find the same translation)
print(f"beam search's log P/|y| at least as high as greedy's on {beam_wins} of {len(per_token)} sentences")
assert beam_wins > len(per_token) / 2
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
# **BLEU (双语评估替补)** — *bilingual evaluation understudy* — compares a translation with a
# reference by counting shared n-grams. For Chinese, each character is a token
# (`labkit.metrics.tokenize_zh`, as sacrebleu's `zh` tokenizer). For $n = 1 \dots 4$ the clipped
# precision $p_n$ counts each hypothesis n-gram at most as often as it occurs in the reference
# (so repeating a correct word earns nothing), divided by the number of hypothesis n-grams. A
# **brevity penalty (简短惩罚)** stops very short outputs from scoring high:
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
# sentence BLEUs). Now the test split: sentences the training split does not contain, many
# about people and companies it never mentions (their names are new combinations of name
# parts it has seen). Greedy decoding on the whole split gives the number `labkit build` wrote
# to `report.json`; greedy against beam search, with their four precisions, on the first
# `N_BEAM` pairs, as the report does. Beam search scores a little higher there.
#
# At cpu scale, the scale of the stored outputs, the translator is good: a test BLEU of about
# 87, and most sentences come out exactly right, names included. The ci build — a smaller
# model trained for fewer steps, which the automated tests use — scores far lower (below 40);
# compare the names in its examples below with the references.

# %%
test_en, test_zh = [p["en"] for p in test_pairs], [p["zh"] for p in test_pairs]
train_en = {p["en"] for p in pairs["train"]["translation"]}
assert not train_en & set(test_en)  # no test sentence occurs in the training split
greedy_all = translate(translator, tokenizer, test_en, num_beams=1)
outputs = {"greedy": greedy_all[:N_BEAM], "beam (4)": translate(translator, tokenizer, test_en[:N_BEAM], num_beams=4)}
bleu_test = M.corpus_bleu_zh(greedy_all, test_zh)
bleu_head = {name: M.corpus_bleu_zh(hyps, test_zh[:N_BEAM]) for name, hyps in outputs.items()}
assert bleu_head["beam (4)"] > bleu_head["greedy"]
exact = np.mean([h == t for h, t in zip(greedy_all, test_zh)])  # share of sentences translated exactly


def corpus_precisions(hyps: list[str], refs: list[str]) -> list[float]:
    """Clipped n-gram precisions p_1 … p_4, counts pooled over the corpus."""
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
    ps, bleu = corpus_precisions(hyps, test_zh[:N_BEAM]), bleu_head[name]
    ax.bar(np.arange(4) + 0.4 * j, ps, width=0.4, label=f"{name}: BLEU {bleu:.1f}")
    if min(ps) > 0:  # without smoothing, the formula above is exactly corpus BLEU
        hl, rl = sum(len(M.tokenize_zh(h)) for h in hyps), sum(len(M.tokenize_zh(t)) for t in test_zh[:N_BEAM])
        assert abs(100 * min(1, math.exp(1 - rl / hl)) * math.exp(np.mean(np.log(ps))) - bleu) < 1e-6
ax.set_xticks(np.arange(4) + 0.2, [f"p{n}" for n in range(1, 5)])
ax.set_ylabel("clipped precision")
ax.set_ylim(0, 1)
ax.legend(loc="lower left")
ax.set_title(f"the first {N_BEAM} test pairs")
plt.show()
print(f"test BLEU, greedy, all {len(test_en)} pairs: {bleu_test:.1f}; translated exactly: {exact:.0%}")
if FROM_BUILD:  # the same model, data and decoding as `labkit build`: the same numbers as its report
    built = REPORT["models"]["translation"]["metrics"]
    print(f"report.json: greedy {built['bleu_greedy']:.1f}; first {N_BEAM}: greedy "
          f"{built[f'bleu_greedy_first{N_BEAM}']:.1f}, beam {built[f'bleu_beam4_first{N_BEAM}']:.1f}")
    assert abs(bleu_test - built["bleu_greedy"]) < 0.05
    assert abs(bleu_head["greedy"] - built[f"bleu_greedy_first{N_BEAM}"]) < 0.05
    assert abs(bleu_head["beam (4)"] - built[f"bleu_beam4_first{N_BEAM}"]) < 0.05
    if LAB_SCALE == "cpu":  # "about 87, most sentences right"
        assert 80 < bleu_test < 98 and exact > 0.5
    if LAB_SCALE == "ci":  # "far lower"
        assert bleu_test < 40
for en, g, b, ref in list(zip(test_en, outputs["greedy"], outputs["beam (4)"], test_zh))[:4]:
    print(f"{en}\n   greedy {g}\n   beam   {b}\n   ref    {ref}")

# %% [markdown]
# ## 5 · Which English word does each Chinese character look at?
#
# Cross-attention weights form a (target × source) matrix for every head and layer. Averaged
# over the heads of the last decoder layer, they show where each Chinese position looked in the
# English while writing its character. If training has taught the decoder where to look, some
# rows line up like a **word alignment (词对齐)** — learned with no alignment labels at all.
# Below, the model's own beam translations of two sentences; each row is labelled with the
# character that position writes.
#
# Look before you read on: which rows look where you would expect? At cpu scale the rows that
# write 上海 put most of their weight on *shanghai*, a clean word alignment, and the rows that
# write 今天 look at *today* in both sentences. In the first sentence the row that writes 天
# looks at *today* and the one that writes 气 at *weather*: half of 天气 reads from its
# neighbour. In the second sentence, which has no *weather*, the rows that write 天气 look at
# *sunny*. Attention shows where the decoder read from, not which word translates which — a
# neighbour's vector already carries much of its context. In the smaller, briefly trained ci model these alignments need not appear at all, so
# the checks below run for the cpu build only.

# %%
@torch.no_grad()
def cross_attention(source: str, output_ids: list[int]):
    """Source tokens, target tokens and the model's attentions for one translation (teacher-forced)."""
    enc = tokenizer([source], return_tensors="pt").to(device)
    y = torch.tensor([output_ids[:-1]], device=device)  # the decoder reads [CLS] y_1 … y_n
    out = translator(enc["input_ids"], enc["attention_mask"], decoder_input_ids=y, output_attentions=True)
    src_tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    tgt_tokens = tokenizer.convert_ids_to_tokens(output_ids[1:])  # the token written at each position
    return src_tokens, tgt_tokens, out


def most_attended(word: str, src_tokens: list[str], tgt_tokens: list[str], weights: torch.Tensor) -> list[str] | None:
    """For each character of ``word`` in the translation, the source token its row weights most (None if absent)."""
    n = len(word)
    starts = [i for i in range(len(tgt_tokens) - n + 1) if tgt_tokens[i:i + n] == list(word)]
    return [src_tokens[j] for j in weights[starts[0]:starts[0] + n].argmax(-1).tolist()] if starts else None


SHANGHAI_EN = "It is sunny in Shanghai today."
alignments = {}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
for ax, sentence in zip(axes, (WEATHER_EN, SHANGHAI_EN)):
    src_tokens, tgt_tokens, sentence_out = cross_attention(sentence, decode_ids(sentence, 4))
    weights = sentence_out.decoder.cross_attentions[-1][0].mean(0).cpu()  # (nh, T, S) -> (T, S)
    alignments[sentence] = (src_tokens, tgt_tokens, weights)
    attention_heatmap(weights, tgt_tokens, src_tokens, ax=ax, annotate=True, title=sentence)
    ax.set_xlabel("English (source)")
    ax.set_ylabel("Chinese (the token each position writes)")
    assert weights.shape == (len(tgt_tokens), len(src_tokens))
    assert torch.allclose(weights.sum(-1), torch.ones(len(tgt_tokens)), atol=1e-5)  # each row: a distribution
fig.suptitle(f"cross-attention of the last decoder layer, mean of its {cfg.n_heads} heads")
fig.tight_layout()
plt.show()
found = {(word, sentence): most_attended(word, *alignments[sentence])
         for sentence in (WEATHER_EN, SHANGHAI_EN) for word in ("今天", "天气", "上海")}
for (word, sentence), tokens in found.items():
    if tokens is not None:
        print(f"{sentence:<32} the rows writing {word} look most at {tokens}")
if LAB_SCALE == "cpu" and FROM_BUILD:
    assert found["上海", SHANGHAI_EN] == ["shanghai", "shanghai"] and found["天气", SHANGHAI_EN] == ["sunny", "sunny"]
    assert found["天气", WEATHER_EN] == ["today", "weather"]
    assert all(found["今天", s] == ["today", "today"] for s in (WEATHER_EN, SHANGHAI_EN))
else:
    print("(the alignment claims above are checked for the cpu build; at this scale, read the map)")

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
# chapter 04's, §6). It loads its JavaScript from the web, so it needs an internet connection in
# the browser. The explorer below it draws any layer and head of the cross-attention offline.

# %%
weather_ids = decode_ids(WEATHER_EN, 4)
_, _, weather_out = cross_attention(WEATHER_EN, weather_ids)
head_view(decoder_attention=[a.cpu() for a in weather_out.decoder.attentions],
          cross_attention=[a.cpu() for a in weather_out.decoder.cross_attentions],
          encoder_tokens=alignments[WEATHER_EN][0], decoder_tokens=tokenizer.convert_ids_to_tokens(weather_ids[:-1]))

# %%
def show_cross(sentence: str = WEATHER_EN, layer: int = cfg.n_decoder_layers - 1, head: int = 0, average: bool = True):
    src, tgt, out = cross_attention(sentence, decode_ids(sentence, 4))
    w = out.decoder.cross_attentions[layer][0]  # (nh, T, S)
    attention_heatmap(w.mean(0) if average else w[head], tgt, src,
                      title=f"layer {layer}, " + ("mean of the heads" if average else f"head {head}"))
    plt.show()


widgets.interact(show_cross, sentence=widgets.Dropdown(options=[WEATHER_EN, SHANGHAI_EN] + test_en[:5], description="sentence"),
                 layer=widgets.IntSlider(cfg.n_decoder_layers - 1, 0, cfg.n_decoder_layers - 1, description="layer"),
                 head=widgets.IntSlider(0, 0, cfg.n_heads - 1, description="head"),
                 average=widgets.Checkbox(True, description="average the heads"));

# %% [markdown]
# ## 6 · The documents' example
#
# Doc 002 §5.4 shows *"What is the weather like today?"* → *"今天天气怎么样？"*. The lab's
# translator writes exactly that with either decoding method. The sentence is one of
# TinyWorld's everyday templates, so it also occurs among the training pairs: this tests memory
# more than generalisation — the test split of §4 measured that.

# %%
in_training = sum(p["en"] == WEATHER_EN for p in pairs["train"]["translation"])
for beams in (1, 4):
    out_text = translate(translator, tokenizer, [WEATHER_EN], num_beams=beams)[0]
    print(f"num_beams={beams}: {WEATHER_EN} → {out_text}   (BLEU {M.corpus_bleu_zh([out_text], [WEATHER_ZH]):.1f})")
    assert out_text == WEATHER_ZH
print(f"reference:   {WEATHER_ZH}; the pair occurs {in_training} time(s) in the training split")
assert in_training >= 1

# %% [markdown]
# ## Summary
#
# - An encoder–decoder reads the source with a bidirectional encoder and writes the target
#   with a causal decoder whose cross-attention, $\mathrm{softmax}(Q_{\text{dec}}K_{\text{enc}}^\top/
#   \sqrt{d_k})V_{\text{enc}}$, looks at the source; its weights form a (target × source) matrix,
#   and padding gets no weight.
# - Training is teacher forcing (read the target shifted right, predict it shifted left). A
#   warm start copies the pretrained encoder into both halves; only cross-attention and its
#   layer norm are new, and after the same number of steps the training loss is lower than
#   from random weights.
# - Greedy decoding takes the best token at each step; beam search keeps several prefixes,
#   usually finds translations the model itself rates at least as high (not always) and scores
#   a little higher BLEU.
# - BLEU = brevity penalty × geometric mean of clipped 1- to 4-gram precisions, pooled over the
#   corpus; for Chinese, characters are the tokens. The cpu build scores about 87 on unseen
#   sentences; the ci build far less.
# - Cross-attention can line up like a word alignment (上海 ↔ *shanghai*), but it need not
#   (天 looks at *today*, and 天气 at *sunny* where the sentence has no *weather*): it shows where the
#   decoder read from, not a dictionary.
#
# ## Exercises
#
# Replace each `None` with your answer and run the cell. Each cell runs on its own. Solutions:
# `notebooks/solutions/ch07.py`. Stuck? Run a cell again with a wrong answer for a stronger
# hint.
#
# **Exercise 1 (formula).** For the hypothesis and reference in `ch07.BLEU_PAIR`, compute the
# clipped **bigram** precision $p_2$ (Chinese characters are the tokens).

# %% tags=["exercise"]
from labkit.exercises import ch07

print(ch07.BLEU_PAIR)
answer = None  # your code: a float
ch07.check_clipped_precision(answer)

# %% [markdown]
# **Exercise 2 (formula).** A system outputs `ch07.SHORT_PAIR[0]` for the reference
# `ch07.SHORT_PAIR[1]`. What is the brevity penalty?

# %% tags=["exercise"]
import math

from labkit.exercises import ch07

print(ch07.SHORT_PAIR)
answer = None  # your code: a float
ch07.check_brevity_penalty(answer)

# %% [markdown]
# **Exercise 3 (implementation).** One step of beam search with `num_beams = 2`:
# `ch07.beam_step_inputs()` gives the two beams' scores so far, $\log P(\text{prefix})$ (shape
# (2,)), and each beam's next-token log-probabilities (shape (2, V)). Which two (beam, token)
# extensions survive? Give them best first, as a list of tuples.

# %% tags=["exercise"]
import torch

from labkit.exercises import ch07

beam_scores, next_log_probs = ch07.beam_step_inputs()
print(beam_scores, next_log_probs, sep="\n")
answer = None  # your code: [(beam, token), (beam, token)]
ch07.check_beam_step(answer)

# %% [markdown]
# **Exercise 4 (main idea: cross-attention).** One head of a decoder's cross-attention, at a
# moment when the decoder has written 3 positions of a translation whose source has 5 tokens,
# the last two of them `[PAD]`. `ch07.cross_attention_inputs()` gives the decoder's states,
# the encoder's output (the memory), the source mask and the head's query and key projections
# (see its docstring). Compute the cross-attention weights. Before you start: what shape must
# they have, and which side provides the queries?

# %% tags=["exercise"]
import math

import torch

from labkit.exercises import ch07

x = ch07.cross_attention_inputs()
print(x.decoder_states.shape, x.memory.shape, x.source_mask)
answer = None  # your code: the attention weights
ch07.check_cross_attention(answer)

# %% [markdown]
# **Exercise 5 (main idea: warm-starting).** `ch07.warm_start_models()` returns a small
# pretrained masked LM and the encoder–decoder that `warm_start_seq2seq` builds from it. Which
# of the encoder–decoder's parameters do *not* come from the pretrained model? Give their names,
# as `named_parameters()` spells them. Predict first from §2, then find out by comparing the
# weights themselves.

# %% tags=["exercise"]
import torch

from labkit.exercises import ch07

pretrained, model = ch07.warm_start_models()
print(f"{sum(1 for _ in model.named_parameters())} parameter tensors in the encoder–decoder")
answer = None  # your code: a set of parameter names
ch07.check_warm_start(answer)

# %% [markdown] tags=["experiment"]
# **Open experiment.** Which half of the warm start helps? §2 compared the full warm start
# with random weights. `warm_start_seq2seq(mlm, init_decoder_from_encoder=False)` copies the
# pretrained encoder but leaves the whole decoder random, which separates the two halves.
#
# - **Change:** the initialisation — random weights, the encoder only, encoder and decoder (the
#   three entries of `INITS` in the cell below) — and the number of training steps `STEPS`
#   (try 30, then 150). For a fair comparison, use two or three `SEEDS`.
# - **Measure:** the mean training loss of the last 10 steps, from
#   `finetune_translation(...).history.loss`; for the longer runs also test BLEU on the first
#   100 test pairs, with `labkit.translate.translate` and `labkit.metrics.corpus_bleu_zh`.
# - **A good answer** gives a small table (initialisation × steps, mean and spread over the
#   seeds) and orders the three initialisations. It says how much of the gain over random
#   weights the encoder alone brings and how much the copied decoder adds, and whether the gap
#   shrinks with more steps. It explains the result with what is copied: the decoder's
#   embeddings already know every token of the shared vocabulary and its self-attention and
#   feed-forward layers already work together, while cross-attention must be learned in every
#   case. A strong answer notes that a difference smaller than the spread across seeds is no
#   difference.

# %% tags=["experiment"]
import os
from dataclasses import replace

import numpy as np

from labkit.build import SCALES, ensure_pretrained
from labkit.data import load_task
from labkit.finetune import finetune_translation
from labkit.training import seed_everything
from labkit.translate import warm_start_seq2seq

LAB_SCALE = os.environ.get("LAB_SCALE", "cpu")
STEPS, SEEDS = 30, (0,)
mlm, tokenizer = ensure_pretrained(LAB_SCALE, progress=False)
pairs = load_task("translation", size=LAB_SCALE)
n_dec = SCALES[LAB_SCALE].model.n_decoder_layers
INITS = {
    "random weights": lambda: warm_start_seq2seq(None, replace(mlm.config, n_decoder_layers=n_dec)),
    "encoder only": lambda: warm_start_seq2seq(mlm, n_decoder_layers=n_dec, init_decoder_from_encoder=False),
    "encoder and decoder": lambda: warm_start_seq2seq(mlm, n_decoder_layers=n_dec),
}
train_cfg = replace(SCALES[LAB_SCALE].finetune["translation"], steps=STEPS, progress=False)
for name, make in INITS.items():
    losses = []
    for seed in SEEDS:
        seed_everything(seed)
        run = finetune_translation(make(), tokenizer, pairs, replace(train_cfg, seed=seed), validate=False, test=False)
        losses.append(np.mean(run.history.loss[-10:]))
    print(f"{name:<20} loss over the last 10 of {STEPS} steps: {np.mean(losses):.3f} (seeds {SEEDS})")

# %% [markdown] tags=["teacher"]
# **For teachers.** About 75 minutes: 15 for §1 (draw the three attentions on the board: which
# side gives the queries, which the keys, and the shape of each weight matrix), 10 for §2, 15
# for decoding and BLEU, 10 for the alignment maps, 25 for the exercises. Ask for predictions
# before running cells: "which weights can a warm start *not* copy?", "will beam search always
# beat greedy?", "which English word will the rows writing 今天 look at?". Misconceptions to
# listen for: "cross-attention is the encoder attending to the decoder" (exercise 4 catches the
# swapped sides and the transposed shape); "the decoder is trained on its own outputs" (teacher
# forcing feeds it the reference); "a high attention weight means a translation pair" (§5's 天气
# rows); "BLEU measures meaning" (it counts shared characters: a correct paraphrase scores low).
# The open experiment fits in 15 minutes in groups of three, one initialisation each, then
# compare on the board; each run of the starter cell takes under a minute at cpu scale.
