"""Make CUDA 12's cuBLAS and cuDNN 9 from pip visible to CTranslate2, before it needs them.

CTranslate2's wheel loads ``libcublas.so.12`` and ``libcudnn*.so.9`` by name when it first
runs on a GPU; a machine with only CUDA 13 (or no toolkit) has neither. The ``gpu`` extra
installs them as the pip packages ``nvidia-cublas-cu12`` and ``nvidia-cudnn-cu12``, whose
libraries sit in ``site-packages/nvidia/*/lib`` where the loader does not look. As
faster-whisper's README suggests, they are loaded here once, by path, with ``RTLD_GLOBAL``:
a later ``dlopen("libcublas.so.12")`` then finds the library already in the process.
``LD_LIBRARY_PATH`` cannot be used instead: the loader reads it only when the process starts.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Packages of the gpu extra, and the libraries to load from each, in dependency order.
PACKAGES = {
    "nvidia.cublas": ("libcublasLt.so.12", "libcublas.so.12"),
    "nvidia.cudnn": ("libcudnn.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9",
                     "libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9",
                     "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9"),
}


@dataclass(frozen=True, slots=True)
class Preload:
    """What ``prepare`` did: libraries loaded, and why any could not be."""

    loaded: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # packages of the gpu extra that are not installed
    failed: tuple[str, ...] = ()  # "library: reason"


def library_dirs(packages: tuple[str, ...] = tuple(PACKAGES)) -> dict[str, Path | None]:
    """The ``lib`` folder of each installed package (None when it is not installed)."""
    out: dict[str, Path | None] = {}
    for name in packages:
        try:
            spec = importlib.util.find_spec(name + ".lib")
        except ModuleNotFoundError:
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        out[name] = Path(locations[0]) if locations else None
    return out


def preload(dirs: dict[str, Path | None]) -> Preload:
    loaded, missing, failed = [], [], []
    for package, folder in dirs.items():
        if folder is None:
            missing.append(package)
            continue
        for library in PACKAGES.get(package, ()):
            path = folder / library
            if not path.exists():
                continue  # not every cuDNN 9 release splits into the same files
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                loaded.append(library)
            except OSError as exc:
                failed.append(f"{library}: {exc}")
    return Preload(tuple(loaded), tuple(missing), tuple(failed))


@functools.cache
def prepare() -> Preload:
    """Load the gpu extra's libraries once per process (a no-op without the extra)."""
    result = preload(library_dirs())
    if result.loaded:
        log.info("CUDA libraries from the gpu extra: %s", ", ".join(result.loaded))
    for failure in result.failed:
        log.info("could not load %s", failure)  # optional parts need the driver (libcuda)
    return result


def unusable_message(exc: BaseException) -> str:
    """One sentence for a person: why CUDA could not be used, and what fixes it."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = ""
    if "cublas" in reason.lower() or "cudnn" in reason.lower() or ".so" in reason:
        hint = ("; install the CUDA 12 libraries with pip install 'textfromtrack-local[gpu]' "
                "(nvidia-cublas-cu12, nvidia-cudnn-cu12 9)")
    return f"a CUDA device is present but unusable ({reason}){hint}"
