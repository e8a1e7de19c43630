"""Small language models trained from scratch for an audit experiment: one call per corpus variant.

Every audit that turns a knob of the corpus (the gender-occupation skew, canaries, deduplication)
trains the same mini-GPT on the changed corpus with the same seed, so that the knob is the only
difference between two models.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from ..gpt import GPT, GPTConfig
from ..pretrain import evaluate_clm, pack_blocks, pretrain_clm
from ..training import TrainConfig, seeded

__all__ = ["LMRecipe", "train_gpt", "train_mlm", "perplexity_on"]


@dataclass(frozen=True, kw_only=True)
class LMRecipe:
    """The mini-GPT every audit model uses, and how long it trains (defaults: the ci scale's)."""

    gpt: GPTConfig = field(default_factory=lambda: GPTConfig(d_model=64, n_layers=2, n_heads=4, d_ff=256,
                                                             max_position=128, dropout=0.0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=300, batch_size=32, lr=3e-3,
                                                                   eval_every=300, progress=False))
    block_length: int = 64

    def __post_init__(self):
        if not isinstance(self.gpt, GPTConfig) or not isinstance(self.train, TrainConfig):
            raise ValueError("LMRecipe needs gpt=GPTConfig(...) and train=TrainConfig(...)")
        if not 8 <= self.block_length <= self.gpt.max_position:
            raise ValueError(f"block_length must be in [8, gpt.max_position={self.gpt.max_position}], "
                             f"got {self.block_length}")


def _config(recipe: LMRecipe, tokenizer) -> GPTConfig:
    return replace(recipe.gpt, vocab_size=len(tokenizer), bos_token_id=tokenizer.cls_token_id,
                   eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)


def train_gpt(tokenizer, train_texts: Sequence[str], val_texts: Sequence[str], recipe: LMRecipe, *,
              progress: bool = False, desc: str | None = None) -> tuple[GPT, dict[str, float]]:
    """A fresh mini-GPT (seeded by ``recipe.train.seed``) pretrained on ``train_texts``; returns the model in
    eval mode on the CPU and its validation metrics (perplexity, next-token accuracy)."""
    if not train_texts:
        raise ValueError("train_texts is empty")
    cfg = replace(recipe.train, progress=progress)
    with seeded(cfg.seed):
        model = GPT(_config(recipe, tokenizer))
    result = pretrain_clm(model, tokenizer, list(train_texts), list(val_texts), cfg, block_length=recipe.block_length)
    return model.cpu().eval(), dict(result.metrics)


def perplexity_on(model, tokenizer, texts: Sequence[str], block_length: int = 64) -> float:
    """Perplexity of ``model`` on ``texts`` packed into blocks as in training (at most 512 blocks)."""
    blocks = pack_blocks(tokenizer, list(texts), block_length)[:512]
    if len(blocks) == 0:
        raise ValueError("texts are too short to fill one block")
    return float(evaluate_clm(model, blocks)["perplexity"])


def train_mlm(tokenizer, train_texts: Sequence[str], val_texts: Sequence[str], recipe: LMRecipe, *,
              progress: bool = False):
    """A fresh masked LM of the recipe's GPT's sizes (width, depth, heads), pretrained by masked-word prediction
    alone on ``train_texts`` with the recipe's steps, batch and learning rate; returns (model in eval mode on
    the CPU, validation metrics)."""
    from ..objectives import MaskedWords
    from ..pretrain import PretrainConfig, pretrain_mlm
    from ..transformer import MaskedLM, TransformerConfig

    if not train_texts:
        raise ValueError("train_texts is empty")
    g = recipe.gpt
    cfg = TransformerConfig(vocab_size=len(tokenizer), d_model=g.d_model, n_layers=g.n_layers, n_heads=g.n_heads,
                            d_ff=g.d_ff, max_position=g.max_position, dropout=0.0, attention_dropout=0.0,
                            pad_token_id=tokenizer.pad_token_id)
    pc = PretrainConfig(train=replace(recipe.train, progress=progress), objectives=(MaskedWords(),),
                        salient_probability=0.0, block_length=recipe.block_length)
    with seeded(recipe.train.seed):
        model = MaskedLM(cfg)
    result = pretrain_mlm(model, tokenizer, list(train_texts), list(val_texts), pc)
    return model.cpu().eval(), dict(result.metrics)
