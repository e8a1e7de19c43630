"""Edge export (labkit.compress.export): an ONNX classifier run by ONNX Runtime gives PyTorch's logits at any
batch and length, the lab's metrics take it as is, and its int8 variant stays close."""
from __future__ import annotations

import functools

import pytest
import torch

from labkit.compress.export import OnnxClassifier, export_classifier, quantize_onnx
from labkit.finetune import finetune
from labkit.heads import SequenceClassifier
from labkit.tasks import TASKS
from labkit.training import TrainConfig
from labkit.transformer import TransformerConfig

from tiny import sentiment_data, text_tokenizer


@functools.cache
def _exported(tmp):
    tok, data = text_tokenizer(), sentiment_data()
    cfg = TransformerConfig(vocab_size=len(tok), d_model=64, n_layers=2, n_heads=4, d_ff=128, max_position=32)
    torch.manual_seed(0)
    model = SequenceClassifier(cfg, 2, id2label={0: "negative", 1: "positive"})
    finetune(TASKS["sentiment"], model, tok, data,
             TrainConfig(steps=60, batch_size=8, lr=3e-3, eval_every=60, progress=False, device="cpu"))
    path = export_classifier(model.eval(), tmp / "sentiment.onnx")
    return tok, data, model, path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _exported(tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("batch,length", [(1, 3), (4, 11), (7, 32)])
def test_onnx_runtime_gives_pytorchs_logits_at_any_batch_and_length(exported, batch, length):
    _, _, model, path = exported
    edge = OnnxClassifier(path)
    ids = torch.randint(1, model.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(length))
    mask = torch.ones_like(ids)
    mask[0, max(1, length // 2):] = 0  # padding
    with torch.no_grad():
        reference = model(ids, mask).logits
    torch.testing.assert_close(edge(ids, mask).logits, reference, atol=1e-4, rtol=1e-4)


def test_the_labs_metrics_take_the_exported_model_and_its_int8_variant(exported, tmp_path):
    tok, data, model, path = exported
    task = TASKS["sentiment"]
    edge = OnnxClassifier(path, id2label=model.id2label)
    assert task.evaluate(edge, tok, data["test"])[0] == task.evaluate(model, tok, data["test"])[0]
    small = OnnxClassifier(quantize_onnx(path, tmp_path / "sentiment-int8.onnx"))
    ids = tok(list(data["test"]["text"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(ids["input_ids"], ids["attention_mask"]).logits
    int8 = small(ids["input_ids"], ids["attention_mask"]).logits
    # int8 activations on a per-batch grid move the logits by a few percent, not the answers
    assert (int8 - reference).abs().max() < 0.15 * reference.abs().max()
    assert torch.equal(int8.argmax(-1), reference.argmax(-1))
    assert small.num_labels == 2


def test_bad_arguments_say_what_to_do(exported, tmp_path):
    _, _, model, _ = exported
    with pytest.raises(ValueError, match=r"\.onnx"):
        export_classifier(model, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="export_classifier"):
        OnnxClassifier(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="export_classifier"):
        quantize_onnx(tmp_path / "missing.onnx", tmp_path / "out.onnx")


def test_the_translation_models_encoder_exports_with_its_hidden_states(tmp_path):
    import onnxruntime as ort

    from labkit.compress.export import export_encoder
    from labkit.transformer import Seq2Seq

    cfg = TransformerConfig(vocab_size=120, d_model=32, n_layers=2, n_decoder_layers=1, n_heads=2, d_ff=64,
                            max_position=40)
    torch.manual_seed(0)
    model = Seq2Seq(cfg).eval()
    session = ort.InferenceSession(str(export_encoder(model, tmp_path / "encoder.onnx")),
                                   providers=["CPUExecutionProvider"])
    ids = torch.randint(1, 120, (3, 13), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    memory = session.run(["last_hidden_state"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        reference = model.encoder(ids, mask).last_hidden_state  # (B, T, C): what the decoder attends to
    torch.testing.assert_close(torch.from_numpy(memory), reference, atol=1e-4, rtol=1e-4)
