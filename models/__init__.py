"""Model registry and resolution: which weights exist locally, where from, and whether they verify.

Nothing in this package downloads unless the user asked for it (``tft models pull``).
"""

from .registry import ALL_MODELS, DEMUCS_MODELS, WHISPER_MODELS, ModelSpec, get_spec
from .resolve import ResolvedModel, default_store_dir, find_demucs, list_models, resolve_whisper
from .separators import SeparatorChoice, resolve_separator
from .store import ModelStore

__all__ = [
    "ALL_MODELS",
    "DEMUCS_MODELS",
    "WHISPER_MODELS",
    "ModelSpec",
    "ModelStore",
    "ResolvedModel",
    "default_store_dir",
    "find_demucs",
    "get_spec",
    "list_models",
    "resolve_separator",
    "resolve_whisper",
    "SeparatorChoice",
]
