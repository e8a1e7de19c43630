"""EN→ZH translation with an encoder–decoder whose encoder is the pretrained mini-BERT.

Decoding is greedy or beam search (labkit.generate). Fine-tuning (teacher forcing) and
scoring (corpus BLEU on Chinese characters) are ``labkit.tasks.TranslationTask``.
"""
from __future__ import annotations

import re
from typing import Sequence

import torch

from .generate import beam_search, greedy_decode
from .training import evaluating
from .transformer import MaskedLM, Seq2Seq, TransformerConfig

__all__ = ["warm_start_seq2seq", "translate", "join_cjk"]

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
    device = next(model.parameters()).device
    kw = dict(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
              pad_token_id=tokenizer.pad_token_id, max_new_tokens=max_new_tokens)
    out: list[str] = []
    with evaluating(model):
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            x, m = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            ids = greedy_decode(model, x, m, **kw) if num_beams == 1 else beam_search(model, x, m, num_beams=num_beams, **kw)
            out.extend(join_cjk(t) for t in tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True))
    return out
