"""labkit.pretrain: packing, masking, the PretrainConfig, the batches it draws, and pretraining runs
on a tiny corpus (masked LM, next sentence, [CLS] salient words, next token)."""
import json
import math

import pytest
import torch
import transformers

from labkit.folders import load_model, save_model
from labkit.heads import SequenceClassifier, TokenClassifier
from labkit.masking import IGNORE_INDEX
from labkit.objectives import ClsSalientWords, MaskedWords, NextSentence, PretrainingLoss, cls_word_loss
from labkit.pretrain import (PretrainConfig, clm_loss, evaluate_mlm, mask_batch, mask_salient, pack_blocks,
                             pack_documents, pretrain_clm, pretrain_mlm, pretraining_batches, salient_token_ids)
from labkit.training import TrainConfig
from labkit.transformer import CausalLM, MaskedLM, PreTrainingModel

from tiny import DOCS, TEXTS, config, doc_tokenizer, text_tokenizer

MOODS = ("good", "great", "bad", "awful")


@pytest.fixture(scope="module")
def tok():
    return text_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return config(tok, max_position=64)


def train(**kw):
    return TrainConfig(**{"steps": 150, "batch_size": 16, "lr": 3e-3, "progress": False, "device": "cpu", **kw})


def mlm_only(**kw):
    """Masked LM alone on 16-token rows, without salient masking unless asked."""
    return PretrainConfig(**{"train": train(), "objectives": (MaskedWords(),), "block_length": 16,
                             "salient_probability": 0.0, **kw})


# ---- packing and masking ---------------------------------------------------------------------
def test_pack_blocks_frames_every_block(tok):
    blocks = pack_blocks(tok, TEXTS, block_length=16)
    assert blocks.shape[1] == 16 and len(blocks) > 3
    assert (blocks[:, 0] == tok.cls_token_id).all() and (blocks[:, -1] == tok.sep_token_id).all()
    with pytest.raises(ValueError, match="fewer than one block"):
        pack_blocks(tok, ["hi"], block_length=64)
    with pytest.raises(ValueError, match="at least 8"):
        pack_blocks(tok, TEXTS, block_length=4)


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
    with pytest.raises(ValueError, match="no tokens"):
        pack_documents(tok, [""], block_length=16)


def test_salient_masking_masks_lexicon_words_more_often(tok):
    blocks = pack_blocks(tok, TEXTS * 200, 16)
    good = tok.convert_tokens_to_ids("good")  # about 2,400 occurrences
    g = torch.Generator().manual_seed(0)
    plain = mask_batch(tok, blocks, g, 0.15)
    salient = mask_salient(tok, blocks, mask_batch(tok, blocks, torch.Generator().manual_seed(0), 0.15),
                           torch.tensor([good]), 0.5, g)
    is_good = blocks == good
    rate_plain = (plain.labels[is_good] != IGNORE_INDEX).float().mean().item()
    rate_salient = (salient.labels[is_good] != IGNORE_INDEX).float().mean().item()
    assert rate_plain == pytest.approx(0.15, abs=0.03) and rate_salient == pytest.approx(0.575, abs=0.04)
    others = ~is_good  # other tokens keep BERT's masking, and every new target is a [MASK] with its label
    assert torch.equal(salient.labels[others], plain.labels[others])
    assert torch.equal(salient.input_ids[others], plain.input_ids[others])
    new = (salient.labels != IGNORE_INDEX) & (plain.labels == IGNORE_INDEX)
    assert (salient.input_ids[new] == tok.mask_token_id).all() and (salient.labels[new] == good).all()


def test_salient_token_ids_are_the_word_pieces_of_the_words_sorted(tok):
    ids = salient_token_ids(tok, ["great", "good", "good"])
    assert ids.tolist() == sorted(tok.convert_tokens_to_ids(["good", "great"])) and ids.dtype == torch.long
    from labkit.data.corpus import polarity_lexicon

    assert torch.equal(salient_token_ids(tok), salient_token_ids(tok, polarity_lexicon()))  # default: the lexicon
    assert len(salient_token_ids(tok)) > 0


# ---- the config --------------------------------------------------------------------------------
def test_pretrain_config_is_keyword_only_and_checked():
    with pytest.raises(TypeError):
        PretrainConfig(TrainConfig())  # noqa
    for bad, message in [({"block_length": 7}, "block_length must be at least 8"),
                         ({"mask_probability": 0.0}, "mask_probability must be in"),
                         ({"mask_probability": 1.0}, "mask_probability must be in"),
                         ({"salient_probability": 1.5}, "salient_probability must be in"),
                         ({"salient_probability": 1.0}, "salient_probability must be in"),
                         ({"salient_probability": -0.1}, "salient_probability must be in"),
                         ({"objectives": ()}, "objectives must be a non-empty tuple"),
                         ({"objectives": ("masked_lm",)}, "objectives must be a non-empty tuple")]:
        with pytest.raises(ValueError, match=message):
            PretrainConfig(**bad)
    PretrainConfig(block_length=8, salient_probability=0.0, mask_probability=0.5)


def test_pretrain_mlm_takes_a_pretrain_config(tok, cfg):
    with pytest.raises(ValueError, match="cfg must be a PretrainConfig"):
        pretrain_mlm(MaskedLM(cfg), tok, TEXTS, TEXTS, train(steps=2))


def test_salient_options_need_salient_words(tok, cfg):
    """Salient masking or the [CLS] salient-word objective with no salient word is a mistake, said before
    training (the old pretrain_mlm refused it: "salient_probability > 0 and cls_salient need salient_ids")."""
    for bad in (dict(salient_words=(), salient_probability=0.5),
                dict(salient_words=(), salient_probability=0.0, objectives=(MaskedWords(), ClsSalientWords()))):
        with pytest.raises(ValueError, match="salient"):
            pretrain_mlm(MaskedLM(cfg), tok, TEXTS, TEXTS, mlm_only(**{"train": train(steps=2), **bad}))


def test_uses_salient_words_and_describe():
    assert not mlm_only().uses_salient_words
    assert mlm_only(salient_probability=0.5).uses_salient_words
    assert mlm_only(objectives=(MaskedWords(), ClsSalientWords())).uses_salient_words
    full = PretrainConfig()
    text = full.describe()
    assert all(o.describe() in text for o in full.objectives)
    assert "one document" in text and str(full.salient_probability) in text
    plain = mlm_only(one_document_per_row=False).describe()
    assert plain == MaskedWords().describe()  # nothing about a layout or salient words it does not use


def test_describe_names_the_salient_words_it_was_given():
    """A model card must not say the corpus's sentiment lexicon was masked more when other words were."""
    text = mlm_only(salient_words=("phone", "car"), salient_probability=0.5).describe()
    assert "0.5" in text and "sentiment lexicon" not in text


# ---- the batches -------------------------------------------------------------------------------
def test_pretraining_batches_follow_the_seed_and_the_objectives(tok):
    def first(cfg, n=4):
        it = pretraining_batches(tok, TEXTS, cfg)
        return [next(it) for _ in range(n)]

    cfg = mlm_only(one_document_per_row=True, salient_words=MOODS, salient_probability=0.5,
                   objectives=(MaskedWords(), ClsSalientWords()), train=train(batch_size=8))
    a, b = first(cfg), first(cfg)
    assert all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))
    c = first(mlm_only(one_document_per_row=True, salient_words=MOODS, salient_probability=0.5,
                       objectives=(MaskedWords(), ClsSalientWords()), train=train(batch_size=8, seed=1)))
    assert not torch.equal(a[0]["labels"], c[0]["labels"])  # another seed, other rows and masks
    moods = salient_token_ids(tok, MOODS)
    for batch in a:
        assert set(batch) - {"attention_mask"} == {"input_ids", "labels", "salient_labels"}  # a mask if padded
        assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] <= 16  # cut to its longest row
        chosen = batch["salient_labels"] != IGNORE_INDEX
        assert torch.equal(batch["salient_labels"][chosen], batch["labels"][chosen])  # a subset of the masked words...
        assert torch.isin(batch["salient_labels"][chosen], moods).all()  # ...that are salient
        assert torch.equal(chosen, torch.isin(batch["labels"], moods))  # ...and all of them
    assert any((batch["salient_labels"] != IGNORE_INDEX).any() for batch in a)
    assert all("salient_labels" not in x for x in first(mlm_only(salient_words=MOODS, salient_probability=0.5)))


def test_length_grouped_batches_carry_less_padding_and_are_cut_to_their_longest_row(tok):
    def padding_share(cfg, n=12):
        it = pretraining_batches(tok, TEXTS * 8, cfg)
        drawn = [next(it) for _ in range(n)]
        for batch in drawn:
            mask = batch.get("attention_mask", torch.ones_like(batch["input_ids"]))
            assert mask[:, -1].any() or not cfg.group_by_length  # grouped: no column of padding alone
        total = sum(b["input_ids"].numel() for b in drawn)
        return sum((b.get("attention_mask", torch.ones_like(b["input_ids"])) == 0).sum().item() for b in drawn) / total

    grouped = padding_share(mlm_only(one_document_per_row=True, train=train(batch_size=8)))
    plain = padding_share(mlm_only(one_document_per_row=True, group_by_length=False, train=train(batch_size=8)))
    assert grouped < plain / 2, (grouped, plain)


def test_with_next_sentence_rows_and_sentence_pairs_alternate():
    tok = doc_tokenizer()
    cfg = mlm_only(objectives=(MaskedWords(), NextSentence(candidates=2)), block_length=32, train=train(batch_size=8))
    it = pretraining_batches(tok, DOCS, cfg)
    batches = [next(it) for _ in range(6)]
    for rows, pairs in zip(batches[::2], batches[1::2]):
        assert "next_sentence_label" not in rows and "token_type_ids" not in rows
        assert set(pairs) == {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"}
        assert (pairs["labels"] != IGNORE_INDEX).any() and pairs["input_ids"].shape[1] <= 32
        assert len(pairs["next_sentence_label"]) == 8 and set(pairs["next_sentence_label"].tolist()) <= {0, 1}
        assert (pairs["input_ids"] == tok.mask_token_id).any()  # the pairs are masked too


# ---- pretraining runs --------------------------------------------------------------------------
def test_cls_salient_pretraining_teaches_cls_which_words_were_blanked(tok, cfg):
    """Each tiny document has one of four mood words, blanked here; with ClsSalientWords, [CLS] learns to
    spread its prediction over those four (ln 4 is the best it can do: nothing else tells which one)."""
    ids = tok.convert_tokens_to_ids(list(MOODS))
    docs = [t for t in TEXTS if any(w in t.split() for w in MOODS)]
    rows = pack_documents(tok, docs, 16)
    masked = torch.isin(rows, torch.tensor(ids))  # (N, T): blank every mood word
    inputs = rows.masked_fill(masked, tok.mask_token_id)
    salient_labels = torch.where(masked, rows, IGNORE_INDEX)

    def cls_nll(model):
        model.eval()
        with torch.no_grad():
            return cls_word_loss(model, model.encoder(inputs).last_hidden_state[:, 0], salient_labels).item()

    scores = {}
    for on in (False, True):
        torch.manual_seed(0)
        model = MaskedLM(cfg)
        objectives = (MaskedWords(), ClsSalientWords()) if on else (MaskedWords(),)
        pretrain_mlm(model, tok, docs * 8, docs, mlm_only(objectives=objectives, one_document_per_row=True,
                                                          salient_words=MOODS, salient_probability=0.5))
        scores[on] = cls_nll(model)
    assert scores[True] < 1.1 * math.log(4) < scores[False]


def test_one_document_per_row_pretraining_learns_the_tiny_corpus(tok, cfg):
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    before = evaluate_mlm(model, tok, pack_blocks(tok, TEXTS, 16))
    cfg_ = mlm_only(one_document_per_row=True, salient_words=("good", "great"), salient_probability=0.5)
    res = pretrain_mlm(model, tok, TEXTS * 4, TEXTS, cfg_)
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.2


def test_masked_lm_pretraining_learns_the_tiny_corpus(tok, cfg):
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    blocks = pack_blocks(tok, TEXTS, 16)
    before = evaluate_mlm(model, tok, blocks)
    res = pretrain_mlm(model, tok, TEXTS * 4, TEXTS, mlm_only(one_document_per_row=False))
    assert res.metrics["loss"] < 0.6 * before["loss"]
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.2
    assert len(res.history.loss) == 150 and res.history.eval_steps[-1] == 150
    assert set(res.metrics) == {"masked_accuracy", "loss", "perplexity"}  # no next-sentence objective, no accuracy
    assert model.training  # pretraining leaves the model in the mode it found


def test_two_pretraining_runs_with_one_seed_are_identical(tok):
    """Dropout, masking and batch order come from cfg.train.seed alone; the global stream is left alone."""
    conf = config(tok, max_position=64, dropout=0.1, attention_dropout=0.1)
    torch.manual_seed(0)
    start = MaskedLM(conf).state_dict()

    def run(seed, global_seed):
        model = MaskedLM(conf)
        model.load_state_dict(start)
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        res = pretrain_mlm(model, tok, TEXTS * 2, TEXTS, mlm_only(train=train(steps=12, seed=seed),
                                                                  salient_words=MOODS, salient_probability=0.5,
                                                                  objectives=(MaskedWords(), ClsSalientWords())))
        assert torch.equal(torch.get_rng_state(), state)
        return res.history.loss, model.state_dict()

    (loss_a, weights_a), (loss_b, weights_b), (loss_c, _) = run(0, 1), run(0, 2), run(1, 1)
    assert loss_a == loss_b and all(torch.equal(v, weights_b[k]) for k, v in weights_a.items())
    assert loss_a != loss_c


def test_next_token_pretraining_lowers_perplexity(tok, cfg):
    torch.manual_seed(0)
    res = pretrain_clm(CausalLM(cfg), tok, TEXTS * 4, TEXTS, train(steps=100), block_length=16)
    assert res.metrics["perplexity"] < 0.2 * len(tok)
    assert set(res.metrics) == {"next_token_accuracy", "loss", "perplexity"}


def test_clm_loss_is_the_models_own_next_token_loss(tok, cfg):
    torch.manual_seed(0)
    model = CausalLM(cfg).eval()
    blocks = pack_blocks(tok, TEXTS, 16)[:4]
    with torch.no_grad():
        logits = model(blocks).logits
        expected = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), blocks[:, 1:].flatten())
        ours = clm_loss(model, {"input_ids": blocks, "labels": blocks})
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)


def test_next_sentence_pretraining_trains_cls_and_saves_as_bert_for_pretraining(tmp_path):
    tok = doc_tokenizer()
    config_ = config(tok, max_position=64)
    torch.manual_seed(0)
    model = PreTrainingModel(config_)
    pooler, nsp_head = model.encoder.pooler.weight.clone(), model.next_sentence.weight.clone()
    before = evaluate_mlm(model, tok, pack_blocks(tok, DOCS, 32))
    res = pretrain_mlm(model, tok, DOCS * 4, DOCS, mlm_only(objectives=(MaskedWords(), NextSentence()),
                                                            block_length=32, one_document_per_row=False,
                                                            train=train(steps=120)))
    assert res.metrics["masked_accuracy"] > before["masked_accuracy"] + 0.15
    assert 0 <= res.metrics["next_sentence_accuracy"] <= 1  # that it is learnt is checked at ci scale (test_build)
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


def test_pretraining_loss_of_a_pretrain_config_is_its_objectives(tok, cfg):
    """What pretrain_mlm minimises on a rows batch: the objectives' losses over one encoding."""
    c = mlm_only(objectives=(MaskedWords(), ClsSalientWords()), salient_words=MOODS, salient_probability=0.5,
                 one_document_per_row=True, train=train(batch_size=32))
    batch = next(pretraining_batches(tok, TEXTS, c))
    model = MaskedLM(cfg).eval()
    with torch.no_grad():
        terms = PretrainingLoss(c.objectives).losses(model, batch)
    assert set(terms) == {"masked_lm", "cls_salient_words"} and all(torch.isfinite(v) for v in terms.values())


def test_masked_lm_pretraining_leaves_the_corpus_pages_out_unless_asked(tok):
    """Pages (labkit.data.pages) teach the mini-GPT in-context learning; documents_only keeps them out of
    masked-LM training and validation: a run on documents plus pages equals the run on the documents."""
    conf = config(tok, max_position=64)
    pages = ["ratings . good tea : yes ; awful walk : no .", "quiz . lyon : france ; osaka : japan ."]

    def run(texts, **kw):
        torch.manual_seed(0)
        model = MaskedLM(conf)
        res = pretrain_mlm(model, tok, texts, texts, mlm_only(train=train(steps=6), **kw))
        return res.history.loss, res.metrics

    plain = run(TEXTS)
    assert run(TEXTS + pages) == plain  # the pages were dropped
    assert run(TEXTS + pages, documents_only=False) != plain  # ... and only because of documents_only
    assert PretrainConfig().documents_only
