"""Small, fast and deployed (chapter 11, ``labkit bench``).

Modules: :mod:`labkit.compress.quantize` (weight-only int8/int4 written out, PyTorch's dynamic int8),
:mod:`labkit.compress.distill` (knowledge distillation), :mod:`labkit.compress.export` (ONNX, run by ONNX
Runtime), :mod:`labkit.compress.frameworks` (labkit against transformers on the same weights) and
:mod:`labkit.compress.bench`, which measures them side by side.
"""
