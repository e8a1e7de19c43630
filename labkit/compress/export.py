"""Edge export (边缘部署): a lab classifier as an ONNX graph, run by ONNX Runtime without PyTorch.

``torch.onnx.export`` traces the model with ``torch.export`` into a graph of standard operators, with the
batch and sequence lengths left free; ONNX Runtime (the engine phones, browsers and servers embed) runs
it. :func:`quantize_onnx` writes the int8 variant with ONNX Runtime's own dynamic quantisation: int8
weights for every matrix product, activations quantised on the fly.

    path = export_classifier(model, "sentiment.onnx")
    edge = OnnxClassifier(path, id2label=model.id2label)
    TASKS["sentiment"].evaluate(edge, tokenizer, data["test"])   # the usual metrics, no PyTorch inside
    small = OnnxClassifier(quantize_onnx(path, "sentiment-int8.onnx"), id2label=model.id2label)

Shape letters: B texts in a batch, T word pieces, K labels.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..heads import ClassifierOutput

__all__ = ["export_classifier", "export_encoder", "OnnxClassifier", "quantize_onnx"]

_INPUTS = ("input_ids", "attention_mask")


class _Logits(nn.Module):
    """(input_ids, attention_mask) → logits: the plain tensors an exported graph takes and gives."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):  # (B, T), (B, T) -> (B, K)
        return self.model(input_ids, attention_mask).logits


class _Hidden(nn.Module):
    """(input_ids, attention_mask) → the encoder's last hidden states."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):  # (B, T), (B, T) -> (B, T, C)
        return self.encoder(input_ids, attention_mask).last_hidden_state


def export_classifier(model: nn.Module, path: str | Path, *, example_length: int = 16) -> Path:
    """Write ``model`` (a :class:`~labkit.heads.SequenceClassifier`, or anything whose ``forward(input_ids,
    attention_mask)`` returns ``.logits``) to ``path`` as ONNX, with free batch and sequence lengths."""
    return _export(_Logits(model), model, path, "logits", example_length)


def export_encoder(model: nn.Module, path: str | Path, *, example_length: int = 16) -> Path:
    """Write the encoder of ``model`` (a :class:`~labkit.transformer.Seq2Seq` such as the translation model, a
    classifier, or an :class:`~labkit.transformer.Encoder`) to ``path`` as ONNX: (input_ids, attention_mask) →
    ``last_hidden_state`` (B, T, C), the memory the decoder attends to."""
    encoder = getattr(model, "encoder", model)
    return _export(_Hidden(encoder), encoder, path, "last_hidden_state", example_length)


def _export(wrapper: nn.Module, model: nn.Module, path: str | Path, output: str, example_length: int) -> Path:
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"path must end in .onnx, got {path.name!r}")
    max_position = getattr(getattr(model, "config", None), "max_position", 512)
    if not 2 <= example_length <= max_position:
        raise ValueError(f"example_length must be in [2, {max_position}], got {example_length}")
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = wrapper.cpu().eval()
    ids = torch.full((2, example_length), 5, dtype=torch.long)  # any ids: only the shapes are traced
    mask = torch.ones_like(ids)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", min=2, max=max_position)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(wrapper, (ids, mask), input_names=list(_INPUTS), output_names=[output],
                                    dynamic_shapes={"input_ids": {0: batch, 1: length},
                                                    "attention_mask": {0: batch, 1: length}},
                                    dynamo=True, verbose=False)
    program.save(str(path))
    return path


def quantize_onnx(source: str | Path, target: str | Path) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of ``source`` (int8 weights, activations quantised per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(source), Path(target)
    if not source.is_file():
        raise ValueError(f"no ONNX model at {source}; write one with export_classifier first")
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its advice on pre-processing
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return target


class OnnxClassifier(nn.Module):
    """An exported classifier run by ONNX Runtime on the CPU, callable like the PyTorch model it came from
    (``model(input_ids, attention_mask).logits``), so the lab's metrics and ``predict_proba`` take it as is."""

    def __init__(self, path: str | Path, *, id2label: dict[int, str] | None = None, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no ONNX model at {path}; write one with export_classifier first")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if names != list(_INPUTS):
            raise ValueError(f"{path.name} takes inputs {names}, not {list(_INPUTS)}: export it with export_classifier")
        self.path, self.id2label = path, id2label
        self.num_labels = self.session.get_outputs()[0].shape[-1]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> ClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        feed = {"input_ids": np.asarray(input_ids.cpu(), dtype=np.int64),
                "attention_mask": np.asarray(attention_mask.cpu(), dtype=np.int64)}
        logits = torch.from_numpy(self.session.run(["logits"], feed)[0])  # (B, K)
        return ClassifierOutput(logits)
