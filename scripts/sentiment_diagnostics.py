"""Two measurements of what pretraining gives TinyWorld sentiment, and what the architecture can carry.

1. **Word level.** Do the pretrained input embeddings separate positive from negative opinion
   words? Leave-one-out nearest centroid over the 36 opinion words (cosine similarity):
   1.0 = every word lands nearer its own polarity's centroid, about 0.5 = no polarity.
2. **Capacity.** Can the same architecture read a review's polarity through its masked-LM
   head at all? A fresh model is trained on one target only: the blank of
   "Rated [MASK] out of 5. <review>", where the rating is 4 or 5 for the labelled positive
   training reviews and 1 or 2 for the negative ones. Its test score says whether the
   masked-LM head *can* carry sentiment when nothing else competes for the gradient.

    python scripts/sentiment_diagnostics.py --model artifacts/cpu/fill-mask   # about 2 minutes on 2 CPU cores
"""
from __future__ import annotations

import argparse
import random
from dataclasses import replace

import torch
import torch.nn.functional as F

from labkit.build import SCALES, default_output_dir
from labkit.data import load_task
from labkit.data.sentiment import opinion_words
from labkit.training import pad
from labkit.folders import load_model
from labkit.training import TrainConfig, batches, fit, seeded
from labkit.transformer import MaskedLM

PROMPT = "Rated [MASK] out of 5. {}"
HIGH, LOW = ("4", "5"), ("1", "2")


def embedding_polarity(model: MaskedLM, tokenizer) -> float:
    """Leave-one-out nearest-centroid accuracy of the opinion words' input embeddings."""
    words = [(w, 1) for w in opinion_words("positive", False) + opinion_words("positive", True)]
    words += [(w, 0) for w in opinion_words("negative", False) + opinion_words("negative", True)]
    ids = tokenizer.convert_tokens_to_ids([w for w, _ in words])
    kept = [(i, y) for i, (_, y) in zip(ids, words) if i != tokenizer.unk_token_id]  # whole-word pieces only
    if len({y for _, y in kept}) < 2 or min(sum(y == c for _, y in kept) for c in (0, 1)) < 2:
        raise ValueError("the tokenizer keeps too few opinion words whole to compare the two polarities")
    table = model.encoder.embeddings.token.weight.detach().float()  # (V, C)
    x = torch.nn.functional.normalize(table[[i for i, _ in kept]], dim=-1)  # (W, C)
    y = torch.tensor([label for _, label in kept])  # (W,)
    right = 0
    for j in range(len(kept)):
        others = torch.arange(len(kept)) != j
        centroids = torch.stack([x[others & (y == c)].mean(0) for c in (0, 1)])  # (2, C)
        right += int((centroids @ x[j]).argmax().item() == y[j].item())
    return right / len(kept)


def rating_readout(tokenizer, data, scale: str = "cpu", steps: int = 600, seed: int = 0, lr: float = 1e-3) -> float:
    """Train a fresh MaskedLM on the rating blank only; return its test accuracy (4/5 vs 1/2).

    The loss first sits at ln 4 (the blank learns the four digits' frequencies) until attention finds
    the opinion words; how long it sits there varies with the seed and the tokenizer. At lr 3e-3 and
    300 steps some ci-scale runs never leave it; at lr 1e-3 and 600 steps seeds 0-3 with two ci
    tokenizers reach a test accuracy of 0.92-0.96.

    Only the blank has a label, so the head runs on the blank's vector alone: the same loss and gradients
    as the masked-LM loss over every position (the others are ignored), without a (B, T, V) product.
    """
    digits = tokenizer.convert_tokens_to_ids(list(HIGH + LOW))
    if tokenizer.unk_token_id in digits:
        raise ValueError("the tokenizer has no single pieces for the digits 1, 2, 4 and 5")
    rng = random.Random(seed)
    train = data["train"]
    texts = [PROMPT.format(t) for t in train["text"]]
    targets = [rng.choice(HIGH if y else LOW) for y in train["label"]]
    ids = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    target_ids = tokenizer.convert_tokens_to_ids(targets)
    with seeded(seed):
        model = MaskedLM(replace(SCALES[scale].model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id))

    def blank_logits(x, mask):  # (B, T) ids with one [MASK] per row -> (B, V) scores at the blanks
        h = model.encoder(x, mask).last_hidden_state  # (B, T, C)
        return model.head(h[x == tokenizer.mask_token_id])  # (B, C) -> (B, V)

    def stream():
        for idx in batches(len(ids), 64, seed=seed):
            x, mask = pad([ids[i] for i in idx], tokenizer.pad_token_id)  # (B, T)
            yield {"input_ids": x, "attention_mask": mask, "labels": torch.tensor([target_ids[i] for i in idx])}

    def blank_loss(_, batch):
        return F.cross_entropy(blank_logits(batch["input_ids"], batch["attention_mask"]), batch["labels"])

    fit(model, stream(), blank_loss, TrainConfig(steps=steps, batch_size=64, lr=lr, seed=seed, eval_every=10**9,
                                                 progress=False, device="cpu"))
    model.eval()
    high, low = digits[:2], digits[2:]
    test = tokenizer([PROMPT.format(t) for t in data["test"]["text"]], truncation=True, max_length=128)["input_ids"]
    right = 0
    with torch.no_grad():
        for start in range(0, len(test), 100):
            x, mask = pad(test[start:start + 100], tokenizer.pad_token_id)  # (B, T)
            blank = blank_logits(x, mask)  # (B, V)
            says_high = blank[:, high].logsumexp(-1) > blank[:, low].logsumexp(-1)  # (B,)
            right += sum(int(h) == int(y) for h, y in zip(says_high.tolist(), data["test"]["label"][start:start + 100]))
    return right / len(data["test"])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="cpu", choices=sorted(SCALES), help="data size and model shape")
    parser.add_argument("--model", default=None, help="a fill-mask folder (default: the scale's build)")
    parser.add_argument("--steps", type=int, default=600, help="training steps of the rating read-out")
    args = parser.parse_args(argv)
    folder = args.model or default_output_dir(args.scale) / "fill-mask"
    model, tokenizer = load_model(folder)
    data = load_task("sentiment", size=args.scale)
    result = {"embedding_polarity": embedding_polarity(model, tokenizer),
              "rating_readout": rating_readout(tokenizer, data, args.scale, args.steps)}
    print(f"opinion-word embeddings, leave-one-out polarity accuracy: {result['embedding_polarity']:.3f} (0.5 = none)")
    print(f"masked-LM head trained on the rating blank only ({args.steps} steps), test accuracy: "
          f"{result['rating_readout']:.3f}")
    return result


if __name__ == "__main__":
    main()
