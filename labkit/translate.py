"""EN→ZH translation with an encoder–decoder whose encoder is the pretrained mini-BERT.

Training is teacher forcing: the decoder reads the target shifted right
(``[CLS] 今 天 …``) and predicts it shifted left (``今 天 … [SEP]``). Decoding is greedy
or beam search (labkit.generate); quality is corpus BLEU on Chinese characters.
"""
from __future__ import annotations

import re
from typing import Sequence

import torch

from . import metrics as M
from .finetune import FinetuneResult, _device, pad, subsample
from .generate import beam_search, greedy_decode
from .training import TrainConfig, batches, fit
from .transformer import MaskedLM, Seq2Seq, TransformerConfig

__all__ = ["warm_start_seq2seq", "finetune_translation", "translate", "join_cjk"]

_CJK_SPACE = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\s+|\s+(?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


def join_cjk(text: str) -> str:
    """Remove the spaces a WordPiece decoder puts around Chinese characters: "今 天 好" → "今天好"."""
    return _CJK_SPACE.sub("", text).strip()


def warm_start_seq2seq(pretrained: MaskedLM | None, config: TransformerConfig | None = None, *,
                       n_decoder_layers: int | None = None, init_decoder_from_encoder: bool = True) -> Seq2Seq:
    """A Seq2Seq whose encoder is a copy of the pretrained one.

    With ``init_decoder_from_encoder`` the decoder's embeddings, self-attention and
    feed-forward layers start from the encoder's too (the BERT-to-BERT warm start); only
    cross-attention starts from scratch. ``pretrained=None`` gives a random model.
    """
    if pretrained is None:
        if config is None:
            raise ValueError("pass a pretrained MaskedLM or, for random initialisation, a config")
        return Seq2Seq(config)
    cfg = pretrained.config
    if n_decoder_layers is not None:
        cfg = TransformerConfig(**{**cfg.to_dict(), "n_decoder_layers": n_decoder_layers})
    model = Seq2Seq(cfg)
    model.encoder.load_state_dict(pretrained.encoder.state_dict(), strict=False)  # no pooler in either
    if init_decoder_from_encoder:
        model.decoder.embeddings.load_state_dict(pretrained.encoder.embeddings.state_dict())
        for i, block in enumerate(model.decoder.layers):
            src = pretrained.encoder.layers[min(i, len(pretrained.encoder.layers) - 1)]
            for name in ("attn", "attn_norm", "ff", "ff_norm"):
                getattr(block, name).load_state_dict(getattr(src, name).state_dict())
        model.head.dense.load_state_dict(pretrained.head.dense.state_dict())
        model.head.norm.load_state_dict(pretrained.head.norm.state_dict())
        with torch.no_grad():
            model.head.bias.copy_(pretrained.head.bias)
    return model


@torch.no_grad()
def translate(model: Seq2Seq, tokenizer, texts: Sequence[str], *, num_beams: int = 1, max_new_tokens: int = 64,
              max_length: int = 64, batch_size: int = 64) -> list[str]:
    """Translate English texts to Chinese (greedy when num_beams == 1)."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        x, m = enc["input_ids"].to(_device(model)), enc["attention_mask"].to(_device(model))
        kw = dict(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                  pad_token_id=tokenizer.pad_token_id, max_new_tokens=max_new_tokens)
        ids = greedy_decode(model, x, m, **kw) if num_beams == 1 else beam_search(model, x, m, num_beams=num_beams, **kw)
        out.extend(join_cjk(t) for t in tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True))
    return out


def finetune_translation(model: Seq2Seq, tokenizer, data, cfg: TrainConfig, *, max_length: int = 64,
                         num_beams: int = 4, n_train: int | None = None, n_eval: int | None = 200,
                         n_beam_eval: int | None = 200) -> FinetuneResult:
    """Train EN→ZH with teacher forcing; metrics are char-level BLEU on the test split: greedy on all
    of it, beam search on its first ``n_beam_eval`` pairs (beam search is slow on a CPU)."""
    train = subsample(data["train"], n_train, cfg.seed)
    pairs = list(train["translation"])
    src = tokenizer([p["en"] for p in pairs], truncation=True, max_length=max_length)["input_ids"]
    tgt = tokenizer([p["zh"] for p in pairs], truncation=True, max_length=max_length + 1)["input_ids"]  # [CLS] zh [SEP]

    def stream():
        for idx in batches(len(src), cfg.batch_size, seed=cfg.seed):
            x, m = pad([src[i] for i in idx], tokenizer.pad_token_id)
            dec_in, dec_m = pad([tgt[i][:-1] for i in idx], tokenizer.pad_token_id)  # [CLS] y1 … yn
            labels, _ = pad([tgt[i][1:] for i in idx], value_for_pad=-100)  # y1 … yn [SEP]
            yield x, m, dec_in, dec_m, labels

    def loss_fn(model, batch):
        x, m, d, dm, y = (t.to(_device(model)) for t in batch)
        return model(x, m, decoder_input_ids=d, decoder_attention_mask=dm, labels=y).loss

    def bleu(split_name: str, limit: int | None, beams: int) -> float:
        split = data[split_name]
        if limit is not None:
            split = split.select(range(min(limit, len(split))))
        pairs = list(split["translation"])
        ref = [p["zh"] for p in pairs]
        hyp = translate(model, tokenizer, [p["en"] for p in pairs], num_beams=beams,
                        max_length=max_length, max_new_tokens=max_length)
        return M.corpus_bleu_zh(hyp, ref)

    history = fit(model, stream(), loss_fn, cfg, evaluate=lambda m: {"bleu_greedy": bleu("validation", n_eval, 1)},
                  desc=f"fine-tuning translation ({len(src)} pairs)")
    metrics = {"bleu_greedy": bleu("test", None, 1)}
    if num_beams > 1:
        metrics[f"bleu_greedy_first{n_beam_eval}"] = bleu("test", n_beam_eval, 1) if n_beam_eval else metrics["bleu_greedy"]
        metrics[f"bleu_beam{num_beams}_first{n_beam_eval}"] = bleu("test", n_beam_eval, num_beams)
    return FinetuneResult(history, metrics)
