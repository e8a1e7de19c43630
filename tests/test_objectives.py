"""labkit.objectives: pretraining losses that add up over one encoding of a batch."""
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from labkit.heads import SequenceClassifier
from labkit.masking import IGNORE_INDEX
from labkit.objectives import ClsSalientWords, MaskedWords, NextSentence, Objective, PretrainingLoss, cls_word_loss
from labkit.pretrain import PretrainConfig, mlm_loss, pack_documents, pretrain_mlm, pretraining_batches
from labkit.training import TrainConfig
from labkit.transformer import MaskedLM, PreTrainingModel

from tiny import DOCS, TEXTS, config, doc_tokenizer, text_tokenizer

MOODS = ("good", "great", "bad", "awful")
ALL = (MaskedWords(), NextSentence(candidates=2), ClsSalientWords())


def train(**kw):
    return TrainConfig(**{"steps": 4, "batch_size": 8, "lr": 3e-3, "progress": False, "device": "cpu", **kw})


def draw(tok, texts, objectives, n=2, **kw):
    """The first n batches pretraining_batches gives for these objectives (16-token document rows)."""
    cfg = PretrainConfig(train=train(), objectives=objectives, block_length=16, salient_words=MOODS, **kw)
    it = pretraining_batches(tok, texts, cfg)
    return [next(it) for _ in range(n)]


def model_of(cls, tok, seed=0):
    torch.manual_seed(seed)
    return cls(config(tok, max_position=64)).eval()


def count_encodings(model):
    calls = []
    handle = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def test_pretraining_loss_encodes_once_and_is_the_sum_of_its_objectives():
    tok = doc_tokenizer()
    model = model_of(PreTrainingModel, tok)
    pairs = draw(tok, DOCS, (MaskedWords(), NextSentence(candidates=2)))[1]
    salient = torch.tensor(tok.convert_tokens_to_ids(list(MOODS)))
    labels = pairs["labels"].clone()
    labels[:, 3] = salient[torch.arange(len(labels)) % 4]  # make sure some masked words are salient
    salient_labels = torch.where(torch.isin(labels, salient), labels, IGNORE_INDEX)
    batch = {**pairs, "labels": labels, "salient_labels": salient_labels}
    loss = PretrainingLoss(ALL)
    calls, handle = count_encodings(model)
    with torch.no_grad():
        terms = loss.losses(model, batch)
        total = loss(model, batch)
    handle.remove()
    assert len(calls) == 2  # one encoding per call, whatever the number of objectives
    assert list(terms) == ["masked_lm", "next_sentence", "cls_salient_words"]
    with torch.no_grad():
        alone = {o.name: o.loss(model, model.encoder(batch["input_ids"], batch["attention_mask"],
                                                    batch["token_type_ids"]), batch) for o in ALL}
    assert all(torch.isfinite(v) and v > 0 for v in alone.values())
    assert {k: v.item() for k, v in terms.items()} == pytest.approx({k: v.item() for k, v in alone.items()}, rel=1e-6)
    assert total.item() == pytest.approx(sum(v.item() for v in alone.values()), rel=1e-6)


def test_masked_words_on_document_rows_is_the_masked_lm_loss():
    tok = text_tokenizer()
    model = model_of(MaskedLM, tok)
    batch = draw(tok, TEXTS, (MaskedWords(),), n=1, one_document_per_row=True, group_by_length=False)[0]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}  # short documents: padded rows
    assert (batch["labels"] != IGNORE_INDEX).any()
    with torch.no_grad():
        ours = PretrainingLoss((MaskedWords(),))(model, batch)
        plain = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        assert ours.item() == pytest.approx(plain.item(), rel=1e-5)
        assert mlm_loss(model, batch).item() == pytest.approx(plain.item(), rel=1e-5)
        unpadded = {k: v for k, v in draw(tok, TEXTS, (MaskedWords(),), n=1, one_document_per_row=False)[0].items()}
        assert "attention_mask" not in unpadded  # packed blocks have no padding
        assert (PretrainingLoss((MaskedWords(),))(model, unpadded).item()
                == pytest.approx(model(unpadded["input_ids"], labels=unpadded["labels"]).loss.item(), rel=1e-5))


def test_masked_words_and_next_sentence_on_sentence_pairs_is_berts_loss():
    tok = doc_tokenizer()
    model = model_of(PreTrainingModel, tok)
    objectives = (MaskedWords(), NextSentence())
    rows, pairs = draw(tok, DOCS, objectives)
    assert "next_sentence_label" not in rows
    assert {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"} == set(pairs)
    assert (pairs["token_type_ids"] == 1).any() and (pairs["labels"] != IGNORE_INDEX).any()
    with torch.no_grad():
        ours = PretrainingLoss(objectives)(model, pairs)
        bert = model(**pairs).loss  # BertForPreTraining's loss: masked LM + next sentence
    assert ours.item() == pytest.approx(bert.item(), rel=1e-5)


def test_an_objective_whose_labels_the_batch_lacks_adds_nothing():
    tok = doc_tokenizer()
    model = model_of(PreTrainingModel, tok)
    rows = draw(tok, DOCS, (MaskedWords(), NextSentence()), n=1)[0]
    with torch.no_grad():
        terms = PretrainingLoss(ALL).losses(model, rows)  # no next_sentence_label, no salient_labels
        assert list(terms) == ["masked_lm"]
        assert PretrainingLoss(ALL)(model, rows).item() == PretrainingLoss((MaskedWords(),))(model, rows).item()
        unlabelled = {"input_ids": rows["input_ids"]}
        with pytest.raises(ValueError, match="holds labels for none"):
            PretrainingLoss(ALL)(model, unlabelled)


def test_objectives_appear_once_and_at_least_one_is_needed():
    with pytest.raises(ValueError, match="once"):
        PretrainingLoss((MaskedWords(), MaskedWords()))
    with pytest.raises(ValueError, match="once"):
        PretrainingLoss((NextSentence(), NextSentence(candidates=8)))  # one name, whatever the settings
    with pytest.raises(ValueError, match="at least one"):
        PretrainingLoss(())
    tok = text_tokenizer()
    cfg = PretrainConfig(train=train(), objectives=(MaskedWords(), MaskedWords()), block_length=16,
                         salient_probability=0.0)
    with pytest.raises(ValueError, match="once"):
        pretrain_mlm(model_of(MaskedLM, tok), tok, TEXTS, TEXTS, cfg)


def test_every_objective_has_a_name_a_label_field_and_a_description():
    kinds = Objective.__subclasses__()
    assert {MaskedWords, NextSentence, ClsSalientWords} <= set(kinds)
    names = [k.name for k in kinds]
    assert len(set(names)) == len(names)
    for kind in kinds:
        o = kind()
        assert isinstance(o.name, str) and o.name and isinstance(o.needs, str) and o.needs
        assert isinstance(o.describe(), str) and len(o.describe()) > 20
    assert "8" in NextSentence(candidates=8).describe() and "most similar" not in NextSentence().describe()
    with pytest.raises(ValueError, match="candidates"):
        NextSentence(candidates=0)
    with pytest.raises(TypeError):
        NextSentence(8)  # noqa: objectives are keyword-only


def test_objectives_check_the_model_they_train():
    tok = text_tokenizer()
    plain, classifier = MaskedLM(config(tok)), SequenceClassifier(config(tok), num_labels=2)
    with pytest.raises(ValueError, match="PreTrainingModel"):
        NextSentence().check(plain)
    for o in (MaskedWords(), ClsSalientWords()):
        o.check(plain)
        with pytest.raises(ValueError, match="masked-LM head"):
            o.check(classifier)
    for o in ALL:
        o.check(PreTrainingModel(config(tok)))


def test_next_sentence_on_a_plain_masked_lm_is_refused_before_training():
    tok = doc_tokenizer()
    model = model_of(MaskedLM, tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = PretrainConfig(train=train(), objectives=(MaskedWords(), NextSentence()), block_length=16,
                         salient_probability=0.0)
    with pytest.raises(ValueError, match="next-sentence prediction needs a PreTrainingModel"):
        pretrain_mlm(model, tok, DOCS, DOCS, cfg)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_cls_word_loss_is_the_mean_log_probability_of_each_rows_masked_salient_words():
    tok = text_tokenizer()
    model = model_of(MaskedLM, tok)
    rows = pack_documents(tok, TEXTS[:3], 16)  # (3, 16)
    good, bad = tok.convert_tokens_to_ids(["good", "bad"])
    labels = torch.full_like(rows, IGNORE_INDEX)
    labels[0, 3], labels[0, 5], labels[2, 4], labels[1, 2] = good, bad, bad, good  # row 1: a masked word, not salient
    salient_labels = labels.clone()
    salient_labels[1] = IGNORE_INDEX
    with torch.no_grad():
        h = model.encoder(rows).last_hidden_state  # (3, 16, C)
        logp = torch.log_softmax(model.head(h[:, 0]), -1)  # (3, V): what [CLS] predicts
        expected = -((logp[0, good] + logp[0, bad]) / 2 + logp[2, bad]) / 2  # row 1 has no target and does not count
        assert cls_word_loss(model, h[:, 0], salient_labels).item() == pytest.approx(expected.item(), rel=1e-5)
        assert cls_word_loss(model, h[:, 0], torch.full_like(rows, IGNORE_INDEX)).item() == 0.0
        batch = {"input_ids": rows, "attention_mask": torch.ones_like(rows), "labels": labels,
                 "salient_labels": salient_labels}
        both = PretrainingLoss((MaskedWords(), ClsSalientWords()))(model, batch) - mlm_loss(model, batch)
    assert both.item() == pytest.approx(expected.item(), rel=1e-4)  # the two losses add up


def test_cls_word_loss_without_targets_keeps_the_graph():
    tok = text_tokenizer()
    model = MaskedLM(config(tok))
    cls = model.encoder(pack_documents(tok, TEXTS[:2], 16)).last_hidden_state[:, 0]
    loss = cls_word_loss(model, cls, torch.full((2, 16), IGNORE_INDEX))
    loss.backward()  # a batch without a salient word still trains (with zero gradient)
    assert loss.item() == 0.0 and model.encoder.embeddings.token.weight.grad is not None


# ---- a new objective is one class and one entry in a PretrainConfig ------------------------
CALLS: list[int] = []


@dataclass(frozen=True, kw_only=True)
class SmallCls(Objective):
    """Keep the final [CLS] vector short (a toy: it penalises its squared norm)."""

    name: ClassVar[str] = "small_cls"
    needs: ClassVar[str] = "labels"
    weight: float = 0.05

    def describe(self) -> str:
        return f"The final [CLS] vector is kept short (weight {self.weight} on its squared norm)."

    def loss(self, model, enc, batch):
        CALLS.append(1)
        return self.weight * enc.last_hidden_state[:, 0].float().pow(2).sum(-1).mean()


def test_a_new_objective_is_one_class_and_one_line_in_the_config():
    tok = text_tokenizer()
    rows = pack_documents(tok, TEXTS, 16)

    def cls_norm(model):
        with torch.no_grad():
            h = model.eval().encoder(rows, (rows != tok.pad_token_id).long()).last_hidden_state
            return h[:, 0].norm(dim=-1).mean().item()

    norms = {}
    for objectives in ((MaskedWords(),), (MaskedWords(), SmallCls(weight=0.5))):
        CALLS.clear()
        cfg = PretrainConfig(train=train(steps=30, batch_size=16), objectives=objectives, block_length=16,
                             salient_probability=0.0)
        model = model_of(MaskedLM, tok)
        res = pretrain_mlm(model, tok, TEXTS * 2, TEXTS, cfg)
        assert len(res.history.loss) == 30 and "masked_accuracy" in res.metrics
        norms[len(objectives)] = cls_norm(model)
        assert len(CALLS) == (30 if len(objectives) == 2 else 0)  # once per training batch
    assert norms[2] < 0.95 * norms[1]  # the new loss was minimised too (post-LN: only the gains can shrink)
    described = PretrainConfig(objectives=(MaskedWords(), SmallCls())).describe()
    assert "[CLS] vector is kept short" in described and MaskedWords().describe() in described  # for the model card
