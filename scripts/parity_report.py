"""Print the measured max |difference| of each labkit-vs-reference parity check (float32, CPU).

    python scripts/parity_report.py
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, BertModel

from labkit.attention import MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention
from labkit.hf import from_hf, to_hf
from labkit.transformer import CausalLM, Seq2Seq, TransformerConfig


def main(seed: int = 0) -> None:
    torch.manual_seed(seed)
    rows: list[tuple[str, float]] = []
    q, k, v = (torch.randn(4, 8, 32, 64) for _ in range(3))  # (B, nh, T, hs)
    am = torch.ones(4, 32, dtype=torch.long)
    am[1, 20:], am[2, 5:] = 0, 0
    for name, mask in [("none", None), ("causal", causal_mask(32)), ("padding", padding_mask(am))]:
        out, _ = scaled_dot_product_attention(q, k, v, mask=mask)
        rows.append((f"attention vs torch SDPA, mask={name}", (out - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max().item()))

    mha = MultiHeadAttention(128, 8).eval()
    ref = torch.nn.MultiheadAttention(128, 8, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.query.weight, mha.key.weight, mha.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.query.bias, mha.key.bias, mha.value.bias]))
        ref.out_proj.weight.copy_(mha.output.weight)
        ref.out_proj.bias.copy_(mha.output.bias)
    x = torch.randn(4, 32, 128)
    with torch.no_grad():
        for path in (False, True):
            out, _ = mha(x, x, x, mask=causal_mask(32), need_weights=path)
            theirs, _ = ref(x, x, x, attn_mask=~causal_mask(32))
            rows.append((f"MultiHeadAttention ({'teaching' if path else 'fast'} path) vs nn.MultiheadAttention", (out - theirs).abs().max().item()))

    cfg = dict(vocab_size=8000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
    ids = torch.randint(1, 8000, (4, 64))
    am = torch.ones(4, 64, dtype=torch.long)
    am[1, 40:], am[3, 9:] = 0, 0
    with torch.no_grad():
        for cls, attr in [(BertModel, "last_hidden_state"), (BertForMaskedLM, "logits")]:
            hf = cls(BertConfig(**cfg)).eval()
            ours = from_hf(hf).eval()
            a = getattr(ours(ids, am), attr)
            b = getattr(hf(input_ids=ids, attention_mask=am), attr)
            rows.append((f"from_hf({cls.__name__}) vs transformers, padded batch", (a - b).abs().max().item()))
        tcfg = TransformerConfig(d_model=128, n_layers=4, n_decoder_layers=4, n_heads=4, d_ff=512)
        for cls in (CausalLM, Seq2Seq):
            ours = cls(tcfg).eval()
            hf = to_hf(ours).eval()
            if cls is Seq2Seq:
                a = ours(ids, am, decoder_input_ids=ids[:, :20]).logits
                b = hf(input_ids=ids, attention_mask=am, decoder_input_ids=ids[:, :20]).logits
            else:
                a, b = ours(ids, am).logits, hf(input_ids=ids, attention_mask=am).logits
            rows.append((f"to_hf({cls.__name__}) -> {type(hf).__name__}, padded batch", (a - b).abs().max().item()))
    width = max(len(r[0]) for r in rows)
    for name, err in rows:
        print(f"{name:<{width}}  max |diff| = {err:.2e}")


if __name__ == "__main__":
    main()
