"""Which vocal separator to run: the user's choice (``auto|spleeter|htdemucs``) made concrete.

``auto`` takes the best separator present: htdemucs (vocals SDR about 8-9 dB on MUSDB)
when its weights were pulled, else Spleeter 2-stem (about 6.5 dB), which every install has.
Nothing here downloads; a missing separator comes back as None with the reason and the
command that installs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ModelNotAvailable
from engine.separation.base import SeparatorModel, validate_choice

from . import spleeter
from .resolve import find_demucs
from .store import ModelStore


@dataclass(frozen=True, slots=True)
class SeparatorChoice:
    """The separator to use (or None) and, when None, why not."""

    model: SeparatorModel | None
    missing: str = ""


def _spleeter(store: ModelStore) -> SeparatorChoice:
    path = spleeter.weights_dir(store)
    if path is None:
        return SeparatorChoice(None, f"the {spleeter.NAME} weights are not installed "
                                     f"(run 'tft models pull {spleeter.NAME}')")
    return SeparatorChoice(SeparatorModel(spleeter.NAME, "spleeter", path))


def _demucs(store: ModelStore, name_or_path: str) -> SeparatorChoice:
    found = find_demucs(name_or_path, store)
    if found is None:
        return SeparatorChoice(None, f"no {name_or_path} weights are installed (tft models pull htdemucs)")
    label = "htdemucs" if found.name == "htdemucs" or name_or_path == "htdemucs" else found.name
    return SeparatorChoice(SeparatorModel(label, "demucs", found.path, load_name=found.name))


def resolve_separator(choice: str, store: ModelStore, *, demucs_model: str = "htdemucs") -> SeparatorChoice:
    """The separator for ``choice``; ``demucs_model`` names (or points at) the demucs weights."""
    validate_choice(choice)
    if choice == "spleeter":
        return _spleeter(store)
    if choice == "htdemucs":
        return _demucs(store, demucs_model)
    demucs = _demucs(store, demucs_model)
    if demucs.model is not None:
        return demucs
    found = _spleeter(store)
    if found.model is None:
        return SeparatorChoice(None, f"no separator is installed: {found.missing}")
    return found


def require_separator(choice: str, store: ModelStore, *, demucs_model: str = "htdemucs") -> SeparatorModel:
    found = resolve_separator(choice, store, demucs_model=demucs_model)
    if found.model is None:
        raise ModelNotAvailable(found.missing)
    return found.model
