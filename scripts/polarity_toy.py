"""Can the lab's mini-BERT learn, by masked LM alone, that opinion words agree in polarity?

A toy corpus of one-sentence reviews, "The screen is great, really superb.", where both opinion
words always share a polarity. After training, the script scores the blank of "The screen is
{word}, really [MASK]." by log P(positive words) - log P(negative words) and prints the mean
separation between positive and negative {word}s (0 = the context's polarity is ignored).
It compares, for several seeds, one review per training sequence against reviews packed into
64-token blocks (as the lab's pretraining does), and transformers' BertForMaskedLM on the
one-review sequences. Chapter 05 cites its output.

    python scripts/polarity_toy.py            # about 4 minutes on 2 CPU cores
"""
from __future__ import annotations

import argparse
import random

import torch
from transformers import BertConfig, BertForMaskedLM

from labkit.data.sentiment import opinion_words
from labkit.training import pad
from labkit.pretrain import mask_batch, pack_blocks
from labkit.tokenization import train_tokenizer
from labkit.training import TrainConfig, batches, fit, seeded
from labkit.transformer import MaskedLM, TransformerConfig

ASPECTS = ("screen", "battery", "price", "design", "staff", "plot")
PROBES = (("great", "awful"), ("superb", "dreadful"), ("nice", "poor"))


def toy_reviews(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pools = [opinion_words(p, False) + opinion_words(p, True) for p in ("positive", "negative")]
    docs = []
    for _ in range(n):
        words = rng.choice(pools)
        docs.append(f"The {rng.choice(ASPECTS)} is {rng.choice(words)}, really {rng.choice(words)}.")
    return docs


def train(kind: str, packed: bool, seed: int, docs: list[str], tokenizer, steps: int):
    """Train a fresh masked LM ("labkit" or "transformers") and return it."""
    cfg = TransformerConfig(vocab_size=len(tokenizer), d_model=64, n_layers=2, n_heads=2, d_ff=256, max_position=128,
                            dropout=0.0, attention_dropout=0.0, pad_token_id=tokenizer.pad_token_id)
    with seeded(seed):
        if kind == "labkit":
            model = MaskedLM(cfg)
        else:
            model = BertForMaskedLM(BertConfig(vocab_size=cfg.vocab_size, hidden_size=64, num_hidden_layers=2,
                                               num_attention_heads=2, intermediate_size=256, max_position_embeddings=128,
                                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                               pad_token_id=tokenizer.pad_token_id))
    g = torch.Generator().manual_seed(seed)
    if packed:
        blocks = pack_blocks(tokenizer, docs, 64)  # (N, 64): several reviews per block

        def stream():
            for idx in batches(len(blocks), 64, seed=seed):
                m = mask_batch(tokenizer, blocks[idx], g, 0.15)
                yield {"input_ids": m.input_ids, "attention_mask": torch.ones_like(m.input_ids), "labels": m.labels}
    else:
        ids = tokenizer(docs)["input_ids"]  # one [CLS] review [SEP] per sequence

        def stream():
            for idx in batches(len(ids), 64, seed=seed):
                x, mask = pad([ids[i] for i in idx], tokenizer.pad_token_id)
                m = mask_batch(tokenizer, x, g, 0.15)
                yield {"input_ids": m.input_ids, "attention_mask": mask, "labels": m.labels}

    # both models take the same named batch and return their own loss
    fit(model, stream(), cfg=TrainConfig(steps=steps, batch_size=64, lr=3e-3, seed=seed, eval_every=10**9,
                                              progress=False, device="cpu"))
    return model


@torch.no_grad()
def separation(model, tokenizer) -> float:
    model.eval()
    pos, neg = (tokenizer.convert_tokens_to_ids(opinion_words(p, False) + opinion_words(p, True))
                for p in ("positive", "negative"))

    def score(word: str) -> float:
        b = tokenizer([f"The screen is {word}, really [MASK]."], return_tensors="pt")
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[0]  # (T, V)
        log_p = logits[b["input_ids"][0] == tokenizer.mask_token_id][0].float().log_softmax(-1)  # (V,)
        return (log_p[pos].logsumexp(0) - log_p[neg].logsumexp(0)).item()

    return sum(score(good) - score(bad) for good, bad in PROBES) / len(PROBES)


def main(argv: list[str] | None = None) -> list[float]:
    """Print one row per (model, layout, seed); return the separations in that order."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    separations = []
    docs = toy_reviews(20_000)
    tokenizer = train_tokenizer(docs, vocab_size=500, model_max_length=128)
    print(f"{'model':>12} {'sequences':>22} {'seed':>4} {'separation':>10}")
    for kind, packed in (("labkit", False), ("labkit", True), ("transformers", False)):
        for seed in range(args.seeds):
            sep = separation(train(kind, packed, seed, docs, tokenizer, args.steps), tokenizer)
            separations.append(sep)
            layout = "packed 64-token blocks" if packed else "one review each"
            print(f"{kind:>12} {layout:>22} {seed:>4} {sep:>+10.2f}", flush=True)
    return separations


if __name__ == "__main__":
    main()
