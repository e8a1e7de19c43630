"""Training loop, pretraining objectives, heads, fine-tuning helpers and model folders."""
import json
import math
import subprocess
import sys

import datasets
import pytest
import torch
import transformers

from labkit.finetune import align_labels, finetune_classifier, pad, subsample
from labkit.folders import ModelFolderError, load_hf_model, load_model, save_model
from labkit.heads import QuestionAnswerer, SequenceClassifier, TokenClassifier
from labkit.nsp import make_pairs, split_sentences
from labkit.pretrain import (cls_word_loss, evaluate_mlm, evaluate_nsp, mask_batch, mask_salient, mlm_loss, pack_blocks,
                             pack_documents, pretrain_clm, pretrain_mlm)
from labkit.tokenization import train_tokenizer
from labkit.training import TrainConfig, lr_at
from labkit.transformer import CausalLM, MaskedLM, PreTrainingModel, TransformerConfig
from labkit.translate import join_cjk, warm_start_seq2seq

TEXTS = [f"the {a} {b} is {c} today ." for a in ("red", "blue", "green", "small") for b in ("phone", "car", "city")
         for c in ("good", "bad", "great", "awful")] + ["今天天气怎么样？", "天气很好。"] * 4


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 3, vocab_size=200, min_frequency=1)


@pytest.fixture(scope="module")
def cfg(tok):
    return TransformerConfig(vocab_size=len(tok), d_model=32, n_layers=2, n_decoder_layers=1, n_heads=2, d_ff=64,
                             max_position=64, dropout=0.0, attention_dropout=0.0)


def test_learning_rate_warms_up_then_decays_to_zero():
    c = TrainConfig(steps=100, lr=1e-3, warmup_ratio=0.1)
    lrs = [lr_at(s, c) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(1e-3 / 90)
    with pytest.raises(ValueError, match="steps, batch_size and eval_every must be positive"):
        TrainConfig(steps=0)


def test_pack_blocks_frames_every_block(tok):
    blocks = pack_blocks(tok, TEXTS, block_length=16)
    assert blocks.shape[1] == 16 and len(blocks) > 3
    assert (blocks[:, 0] == tok.cls_token_id).all() and (blocks[:, -1] == tok.sep_token_id).all()
    with pytest.raises(ValueError, match="fewer than one block"):
        pack_blocks(tok, ["hi"], block_length=64)


def test_pack_documents_gives_each_document_its_own_rows(tok):
    docs = ["the red phone is good today .", "the blue car is bad today . " * 3]
    rows = pack_documents(tok, docs, block_length=16)
    first = tok(docs[0], add_special_tokens=False)["input_ids"]
    second = tok(docs[1], add_special_tokens=False)["input_ids"]
    assert len(rows) == 1 + -(-len(second) // 14)  # the long document continues over several rows
    assert rows[0, : len(first) + 2].tolist() == [tok.cls_token_id, *first, tok.sep_token_id]
    assert (rows[0, len(first) + 2:] == tok.pad_token_id).all()
    assert (rows[:, 0] == tok.cls_token_id).all()
    joined = [i for row in rows[1:].tolist() for i in row[1:] if i not in (tok.sep_token_id, tok.pad_token_id)]
    assert joined == second
    with pytest.raises(ValueError, match="at least 8"):
        pack_documents(tok, docs, block_length=4)


def test_salient_masking_masks_lexicon_words_more_often(tok):
    blocks = pack_blocks(tok, TEXTS * 200, 16)
    good = tok.convert_tokens_to_ids("good")  # about 2,400 occurrences
    g = torch.Generator().manual_seed(0)
    plain = mask_batch(tok, blocks, g, 0.15)
    salient = mask_salient(tok, blocks, mask_batch(tok, blocks, torch.Generator().manual_seed(0), 0.15),
                           torch.tensor([good]), 0.5, g)
    is_good = blocks == good
    rate_plain = (plain.labels[is_good] != -100).float().mean().item()
    rate_salient = (salient.labels[is_good] != -100).float().mean().item()
    assert rate_plain == pytest.approx(0.15, abs=0.03) and rate_salient == pytest.approx(0.575, abs=0.04)
    others = ~is_good  # other tokens keep BERT's masking, and every new target is a [MASK] with its label
    assert torch.equal(salient.labels[others], plain.labels[others])
    assert torch.equal(salient.input_ids[others], plain.input_ids[others])
    new = (salient.labels != -100) & (plain.labels == -100)
    assert (salient.input_ids[new] == tok.mask_token_id).all() and (salient.labels[new] == good).all()


def test_pretraining_options_are_checked(tok, cfg):
    tc = TrainConfig(steps=2, batch_size=4, progress=False, device="cpu")
    with pytest.raises(ValueError, match="salient_probability must be in"):
        pretrain_mlm(MaskedLM(cfg), tok, TEXTS, TEXTS, tc, block_length=16, salient_ids=[5], salient_probability=1.5)
    with pytest.raises(ValueError, match="need salient_ids"):
        pretrain_mlm(MaskedLM(cfg), tok, TEXTS, TEXTS, tc, block_length=16, salient_probability=0.5)
    with pytest.raises(ValueError, match="cls_salient need salient_ids"):
        pretrain_mlm(MaskedLM(cfg), tok, TEXTS, TEXTS, tc, block_length=16, cls_salient=True)


def test_cls_word_loss_is_the_mean_log_probability_of_each_rows_masked_salient_words(tok, cfg):
    torch.manual_seed(0)
    model = MaskedLM(cfg).eval()
    rows = pack_documents(tok, TEXTS[:3], 16)  # (3, 16)
    good, bad = tok.convert_tokens_to_ids(["good", "bad"])
    labels = torch.full_like(rows, -100)
    labels[0, 3], labels[0, 5], labels[2, 4], labels[1, 2] = good, bad, bad, good  # row 1: a masked word, not salient
    targets = torch.isin(labels, torch.tensor([good, bad]))
    targets[1] = False
    h = model.encoder(rows).last_hidden_state  # (3, 16, C)
    logp = torch.log_softmax(model.head(h[:, 0]), -1)  # (3, V): what [CLS] predicts
    expected = -((logp[0, good] + logp[0, bad]) / 2 + logp[2, bad]) / 2  # row 1 has no target and does not count
    assert cls_word_loss(model, h[:, 0], labels, targets).item() == pytest.approx(expected.item(), rel=1e-5)
    assert cls_word_loss(model, h[:, 0], labels, torch.zeros_like(targets)).item() == 0.0
    mask = torch.ones_like(rows)
    both = mlm_loss(model, (rows, labels, mask, targets)) - mlm_loss(model, (rows, labels, mask))  # the sum of the two
    assert both.item() == pytest.approx(expected.item(), rel=1e-4)


def test_cls_salient_pretraining_teaches_cls_which_words_were_blanked(tok, cfg):
    """Each tiny document has one of four mood words, blanked here; with cls_salient, [CLS] learns to
    spread its prediction over those four (ln 4 is the best it can do: nothing else tells which one)."""
    words = ["good", "great", "bad", "awful"]
    ids = tok.convert_tokens_to_ids(words)
    docs = [t for t in TEXTS if any(w in t.split() for w in words)]
    rows = pack_documents(tok, docs, 16)
    masked = torch.isin(rows, torch.tensor(ids))  # (N, T): blank every mood word
    inputs = rows.masked_fill(masked, tok.mask_token_id)
    labels = torch.where(masked, rows, torch.full_like(rows, -100))

    def cls_nll(model):
        model.eval()
        with torch.no_grad():
            return cls_word_loss(model, model.encoder(inputs).last_hidden_state[:, 0], labels, masked).item()

    scores = {}
    for on in (False, True):
        torch.manual_seed(0)
        model = MaskedLM(cfg)
        pretrain_mlm(model, tok, docs * 8, docs, TrainConfig(steps=150, batch_size=16, lr=3e-3, progress=False,
                                                              device="cpu"),
                     block_length=16, one_document_per_row=True, salient_ids=ids, salient_probability=0.5,
                     cls_salient=on)
        scores[on] = cls_nll(model)
    assert scores[True] < 1.1 * math.log(4) < scores[False]  # measured: 1.42 with, 4.54 without


def test_one_document_per_row_pretraining_learns_the_tiny_corpus(tok, cfg):
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    before = evaluate_mlm(model, tok, pack_blocks(tok, TEXTS, 16))
    good = tok("good great", add_special_tokens=False)["input_ids"]
    res = pretrain_mlm(model, tok, TEXTS * 4, TEXTS, TrainConfig(steps=150, batch_size=16, lr=3e-3, progress=False,
                                                                 device="cpu"), block_length=16,
                       one_document_per_row=True, salient_ids=good, salient_probability=0.5)
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.2


def test_masked_lm_pretraining_learns_the_tiny_corpus(tok, cfg):
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    blocks = pack_blocks(tok, TEXTS, 16)
    before = evaluate_mlm(model, tok, blocks)
    res = pretrain_mlm(model, tok, TEXTS * 4, TEXTS, TrainConfig(steps=150, batch_size=16, lr=3e-3, progress=False,
                                                                 device="cpu"), block_length=16)
    assert res.metrics["loss"] < 0.6 * before["loss"]
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.2
    assert len(res.history.loss) == 150 and res.history.eval_steps[-1] == 150


def test_next_token_pretraining_lowers_perplexity(tok, cfg):
    torch.manual_seed(0)
    res = pretrain_clm(CausalLM(cfg), tok, TEXTS * 4, TEXTS, TrainConfig(steps=100, batch_size=16, lr=3e-3,
                                                                         progress=False, device="cpu"), block_length=16)
    assert res.metrics["perplexity"] < 0.2 * len(tok)


def test_heads_warm_start_copies_the_encoder(cfg):
    mlm = MaskedLM(cfg)
    for cls, kw in ((SequenceClassifier, {"num_labels": 3}), (TokenClassifier, {"num_labels": 5}), (QuestionAnswerer, {})):
        head = cls.from_pretrained(mlm, **kw)
        for k, v in mlm.encoder.state_dict().items():
            assert torch.equal(head.encoder.state_dict()[k], v)
        scratch = cls.from_pretrained(None, cfg, **kw)
        assert not torch.equal(scratch.encoder.embeddings.token.weight, mlm.encoder.embeddings.token.weight)
    with pytest.raises(ValueError, match="id2label has 1 names for num_labels=2"):
        SequenceClassifier(cfg, 2, {0: "x"})
    s2s = warm_start_seq2seq(mlm)
    assert torch.equal(s2s.encoder.layers[0].ff.up.weight, mlm.encoder.layers[0].ff.up.weight)
    assert torch.equal(s2s.decoder.layers[0].attn.query.weight, mlm.encoder.layers[0].attn.query.weight)


def test_classifier_fine_tuning_fits_a_separable_task(tok, cfg):
    texts = [t for t in TEXTS if " is " in t]
    labels = [int(any(w in t for w in ("good", "great"))) for t in texts]
    split = datasets.Dataset.from_dict({"text": texts, "label": labels},
                                       features=datasets.Features({"text": datasets.Value("string"),
                                                                   "label": datasets.ClassLabel(names=["neg", "pos"])}))
    data = datasets.DatasetDict(train=split, validation=split, test=split)
    torch.manual_seed(0)
    model = SequenceClassifier(cfg, 2, {0: "neg", 1: "pos"})
    res = finetune_classifier(model, tok, data, TrainConfig(steps=120, batch_size=16, lr=3e-3, progress=False, device="cpu"))
    assert res.metrics["accuracy"] == 1.0


def test_subsample_is_class_balanced_and_seeded():
    split = datasets.Dataset.from_dict({"label": [0] * 90 + [1] * 10})
    a = subsample(split, 10, seed=0, label_column="label")
    assert sorted(a["label"]) == [0] * 5 + [1] * 5
    assert a["label"] == subsample(split, 10, seed=0, label_column="label")["label"]


def test_align_labels_marks_only_first_word_pieces(tok):
    enc = align_labels(tok, [["the", "greenphone", "is", "good"]], [[0, 1, 0, 2]])
    labels, word_ids = enc["labels"][0], enc["word_ids"][0]
    assert labels[0] == -100 and labels[-1] == -100  # [CLS], [SEP]
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [labels[i] for i in firsts] == [0, 1, 0, 2]
    assert sum(label != -100 for label in labels) == 4  # "greenphone" splits into several pieces


def test_pad_and_join_cjk():
    ids, mask = pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert join_cjk("今 天 天 气 怎 么 样 ？") == "今天天气怎么样？"
    assert join_cjk("我 在 paris 工 作") == "我在paris工作"


def test_model_folders_round_trip_and_fail_clearly(tok, cfg, tmp_path):
    model = SequenceClassifier(cfg, 2, {0: "negative", 1: "positive"}).eval()
    save_model(model, tok, tmp_path / "m", card="# card")
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not list((tmp_path / "m").glob("*.bin"))
    back, tok2 = load_model(tmp_path / "m")
    x = torch.tensor([tok("the red phone is good")["input_ids"]])
    assert torch.allclose(back(x).logits, model(x).logits, atol=1e-6) and back.id2label[1] == "positive"
    assert tok2("今天")["input_ids"] == tok("今天")["input_ids"]

    with pytest.raises(ModelFolderError, match="does not exist.*labkit build"):
        load_hf_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="no config.json"):
        load_hf_model(tmp_path / "empty")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFolderError, match="corrupt"):
        load_hf_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(ModelFolderError, match="corrupt"):
        load_hf_model(tmp_path / "m")


def test_cli_bad_input_gives_one_line_errors(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=120)

    r = run("build", "--scale", "huge")
    assert r.returncode == 2 and "invalid choice: 'huge'" in r.stderr and "Traceback" not in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("build", "--scale", "ci", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "cannot write to" in r.stderr and "--out" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# Two-sentence documents (English and Chinese) for the sentence-pair tests.
COLOURS = ("red", "blue", "green", "small", "black", "white")
DOCS = [f"the {c} {thing} is here. the {c} {thing} is {adj}." for c in COLOURS
        for thing in ("phone", "car", "city") for adj in ("good", "bad", "great", "awful")]
DOCS += ["今天天气很好。我们去公园。", "他是老师。他在上海工作。"] * 4


def test_sentence_pairs_are_true_continuations_or_same_language_negatives():
    pairs = make_pairs(DOCS, seed=0)
    assert len(pairs) == len(DOCS) and 0.3 < sum(p.label for p in pairs) / len(pairs) < 0.7
    assert pairs == make_pairs(DOCS, seed=0) and pairs != make_pairs(DOCS, seed=1)
    for doc, p in zip(DOCS, pairs):
        if p.label == 0:  # the true continuation: the two halves give back the document
            assert p.first + ("" if "。" in doc else " ") + p.second == doc
        assert ("。" in p.first) == ("。" in p.second)  # negatives come from the same language
    assert split_sentences("A b. C d! 你好。再见？") == ["A b.", "C d!", "你好。", "再见？"]
    with pytest.raises(ValueError, match="at least two documents"):
        make_pairs(["one sentence only."], seed=0)


def test_hard_negatives_share_more_words_than_random_ones():
    import re

    def overlap(pairs):  # mean number of words a negative's second part shares with its first part
        words = [(set(re.findall(r"[a-z]+", p.first)), set(re.findall(r"[a-z]+", p.second))) for p in pairs if p.label]
        return sum(len(a & b) for a, b in words) / len(words)

    # two kinds of English documents that share no words, as a bio and a review share few
    docs = [f"the {c} {t} is here. the {c} {t} is {a}." for c in COLOURS for t in ("phone", "car") for a in ("good", "bad")]
    docs += [f"{n} was born in {y}. {n} works as a {j}." for n in ("anna", "tom", "li", "sara", "omar", "mia")
             for y in ("paris", "rome") for j in ("nurse", "pilot")]
    random_pairs, hard_pairs = make_pairs(docs, seed=0), make_pairs(docs, seed=0, candidates=8)
    assert [(p.first, p.label) for p in hard_pairs] == [(p.first, p.label) for p in random_pairs]  # same cuts
    assert [p for p in hard_pairs if not p.label] == [p for p in random_pairs if not p.label]  # same true pairs
    assert [p.second for p in hard_pairs if p.label] != [p.second for p in random_pairs if p.label]
    assert overlap(hard_pairs) > overlap(random_pairs) + 0.5  # the negative is mostly a document of the same kind
    with pytest.raises(ValueError, match="candidates"):
        make_pairs(docs, seed=0, candidates=0)


def test_next_sentence_pretraining_trains_cls_and_saves_as_bert_for_pretraining(cfg, tmp_path):
    tok = train_tokenizer(DOCS * 3, vocab_size=200, min_frequency=1)
    config = TransformerConfig(vocab_size=len(tok), d_model=32, n_layers=2, n_heads=2, d_ff=64, max_position=64,
                               dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = PreTrainingModel(config)
    pooler, nsp_head = model.encoder.pooler.weight.clone(), model.next_sentence.weight.clone()
    before = evaluate_mlm(model, tok, pack_blocks(tok, DOCS, 32))
    res = pretrain_mlm(model, tok, DOCS * 4, DOCS, TrainConfig(steps=120, batch_size=16, lr=3e-3, progress=False,
                                                               device="cpu"), block_length=32)
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.15
    assert "next_sentence_accuracy" in res.metrics  # that it is learnt is checked at ci scale (test_build)
    assert not torch.equal(pooler, model.encoder.pooler.weight)  # [CLS] → pooler now gets a training signal
    assert not torch.equal(nsp_head, model.next_sentence.weight)
    save_model(model, tok, tmp_path / "bert")
    assert json.loads((tmp_path / "bert" / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    back, _ = load_model(tmp_path / "bert")
    assert isinstance(back, PreTrainingModel)
    head = SequenceClassifier.from_pretrained(back, num_labels=2)  # the trained pooler comes along
    assert torch.equal(head.encoder.pooler.weight, model.encoder.pooler.weight)
    TokenClassifier.from_pretrained(back, num_labels=3)  # ...and a token head simply leaves it out
    fill = transformers.pipeline("fill-mask", model=str(tmp_path / "bert"), device="cpu")
    assert fill("the red car is [MASK].")[0]["token_str"] in {"here", "good", "bad", "great", "awful"}
