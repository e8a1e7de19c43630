"""The environment the lab runs in: library versions and the device it will use."""
from __future__ import annotations

import platform

import torch


def best_device() -> torch.device:
    """cuda → mps → cpu: the fastest device present."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def environment_report() -> dict[str, str]:
    """Versions of the lab's main libraries and the chosen device, as strings."""
    import datasets
    import tokenizers
    import transformers

    device = best_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "datasets": datasets.__version__,
        "device": f"{device.type} ({name})",
        "bf16": str(device.type == "cuda" and torch.cuda.is_bf16_supported()),
        "cpu threads": str(torch.get_num_threads()),
    }
