"""What every separator shares: options, the model record, file-level streaming and the cache.

A file is decoded once into a float32 memory-mapped file (44.1 kHz stereo), a backend
streams it through its network and hands finished blocks of the vocal stem to a sink, and
the sink resamples them to 16 kHz mono (VAD and Whisper's rate). RAM holds only the blocks
in flight, whatever the track's length. The stem is cached on disk by the file's content
hash, the separator and its weights, so a re-run with other options does not separate again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

import numpy as np

from ..audio import SEPARATION_RATE, iter_blocks
from ..errors import InvalidOptionError

WHISPER_RATE = 16_000
ChunkProgress = Callable[[int, int], None]  # (units done, units total); may raise Cancelled
Sink = Callable[[np.ndarray], None]  # finished (channels, samples) blocks at 44.1 kHz, in order
SEPARATOR_CHOICES = ("auto", "spleeter", "htdemucs")
SeparatorKind = Literal["spleeter", "demucs"]


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def validate_choice(choice: str) -> str:
    if choice not in SEPARATOR_CHOICES:
        raise InvalidOptionError(f"separator must be one of {', '.join(SEPARATOR_CHOICES)}, not '{choice}'")
    return choice


@dataclass(frozen=True, slots=True)
class SeparatorModel:
    """Weights a backend can load: resolved by ``models``, used by the engine.

    name: what users and the JSON call it ('spleeter-2stems', 'htdemucs', ...).
    kind: which backend runs it.
    path: the directory holding the weights.
    load_name: the model to load from that directory (demucs repositories hold bags).
    """

    name: str
    kind: SeparatorKind
    path: Path
    load_name: str = ""


@dataclass(frozen=True, slots=True)
class SeparationOptions:
    """How to run a separator.

    batch_size: segments (demucs) or 512-frame patches (spleeter) per forward pass; 0 picks
        per backend and device (a batch only adds memory on CPU, where the cores are
        already busy inside each convolution).
    overlap: demucs only: fraction of each segment shared with the next, as apply_model.
    device: 'auto' (CUDA when torch sees it), 'cpu' or 'cuda'.
    precision: 'float32', or 'bfloat16' autocast on CUDA.
    compile: torch.compile the network (a long one-time cost; pays off on long GPU jobs).
    threads: torch CPU threads (0: leave torch's default).
    mask_exponent: spleeter only: the stems' ratio mask is v^p / (v^p + a^p). Spleeter's own
        is 2 (its published SDR); 1, a softer mask that keeps more of the voice, is what
        Whisper hears best (English songs, base: 15.6% WER at 0 dB on the p=2 stem, 10.1% on
        the p=1 stem; benchmarks.suite_songs).
    """

    batch_size: int = 0
    overlap: float = 0.25
    device: str = "auto"
    precision: Literal["float32", "bfloat16"] = "float32"
    compile: bool = False
    stem: str = "vocals"
    threads: int = 0
    mask_exponent: float = 1.0

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_batch(self, device: str, *, gpu: int, cpu: int = 1) -> int:
        if self.batch_size > 0:
            return self.batch_size
        return gpu if device.startswith("cuda") else cpu


@dataclass(frozen=True, slots=True)
class StemResult:
    """The vocal stem of one file, and how it was obtained."""

    audio: np.ndarray  # 16 kHz mono float32
    cached: bool
    cache_path: Path | None
    seconds: float
    units: int  # segments or patches the network ran on (0 when cached)
    device: str


class Backend(Protocol):
    """One separation network family (``spleeter``, ``demucs``)."""

    def load(self, model: SeparatorModel, device: str, options: SeparationOptions): ...

    def separate(self, loaded, mix: np.ndarray, *, stats: "MixStats", options: SeparationOptions, sink: Sink,
                 progress: ChunkProgress | None) -> int:
        """Stream ``mix`` (channels, samples at 44.1 kHz; may be a writable memmap) through the
        network, hand finished stem blocks to ``sink`` in order, return the units run."""


def backend_for(kind: SeparatorKind) -> Backend:
    if kind == "spleeter":
        from . import spleeter

        return spleeter.BACKEND
    from . import demucs

    return demucs.BACKEND


# -- the cache ------------------------------------------------------------------------------


def model_fingerprint(directory: Path) -> str:
    """Identify weights by name, size and mtime of their files (cheap, no hashing)."""
    items = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in directory.glob("*") if p.is_file())
    return hashlib.sha1(json.dumps(items).encode()).hexdigest()[:16]


def cache_key(file_hash: str, model: SeparatorModel, options: SeparationOptions) -> str:
    relevant = {"overlap": options.overlap, "stem": options.stem, "precision": options.precision,
                "mask_exponent": options.mask_exponent}
    blob = json.dumps({"file": file_hash, "model": model.name, "load": model.load_name,
                       "files": model_fingerprint(model.path), **relevant}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class SharedStems(Protocol):
    """A second tier behind the local stem cache that other machines see (the server's blob
    store, when nodes share no directory). Best effort: a failure is a miss, never an error."""

    def fetch(self, name: str, dest: Path) -> bool:
        """Write the stem called ``name`` to ``dest`` (whole, or not at all); False if absent."""
        ...

    def share(self, name: str, path: Path) -> None:
        """Offer the stem at ``path`` to the other machines."""
        ...


def _read_cache(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).astype(np.float32, copy=False)
    except (OSError, ValueError):
        path.unlink(missing_ok=True)  # a damaged entry is just recomputed
        return None


# -- decoding and resampling ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MixStats:
    mean: float
    std: float


def decode_to_memmap(path: str | os.PathLike[str], workdir: Path) -> tuple[np.memmap, MixStats]:
    """Decode stereo 44.1 kHz into a disk-backed (samples, 2) array, with the mix's mean and std."""
    raw = workdir / "mix.f32"
    total, s1, s2 = 0, 0.0, 0.0
    with open(raw, "wb") as fh:
        for block in iter_blocks(path, sample_rate=SEPARATION_RATE, channels=2):
            ref = block.mean(axis=0, dtype=np.float64)
            s1 += float(ref.sum())
            s2 += float(np.square(ref).sum())
            total += block.shape[1]
            fh.write(np.ascontiguousarray(block.T, dtype=np.float32).tobytes())  # interleaved
    mean = s1 / max(total, 1)
    std = float(np.sqrt(max(s2 / max(total, 1) - mean * mean, 0.0)) * np.sqrt(total / max(total - 1, 1)))
    return np.memmap(raw, dtype=np.float32, mode="r+", shape=(total, 2)), MixStats(mean, std)


def stem_length(mix_samples: int) -> int:
    """Samples of the 16 kHz stem of a 44.1 kHz mix of ``mix_samples`` samples."""
    return int(round(mix_samples * WHISPER_RATE / SEPARATION_RATE))


class Resample:
    """Stateful 44.1 kHz stereo -> 16 kHz mono conversion across block boundaries (PyAV),
    written into ``out``, preallocated at the stem's length (a file-backed memmap when the
    stem goes to the cache): the stem is held once, never as parts plus their concatenation
    (three copies, 700 MB of the process's own memory for an hour)."""

    def __init__(self, channels: int, out: np.ndarray) -> None:
        import av

        self._av = av
        self.layout = "stereo" if channels == 2 else "mono"
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=WHISPER_RATE)
        self.out = out
        self.filled = 0

    def push(self, block: np.ndarray | None) -> None:
        if block is None:
            frames = self.resampler.resample(None)
        else:
            frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp",
                                                     layout=self.layout)
            frame.sample_rate = SEPARATION_RATE
            frames = self.resampler.resample(frame)
        for f in frames:
            samples = f.to_ndarray().reshape(-1)
            take = min(samples.size, self.out.size - self.filled)
            self.out[self.filled: self.filled + take] = samples[:take]
            self.filled += take

    def result(self) -> np.ndarray:
        self.out[self.filled:] = 0.0  # the resampler's delay can leave the last few samples short
        return self.out


# -- file in, stem out ----------------------------------------------------------------------


def separate_file(
    path: str | os.PathLike[str],
    model: SeparatorModel,
    *,
    options: SeparationOptions = SeparationOptions(),
    cache_dir: Path | None = None,
    file_hash: str | None = None,
    progress: ChunkProgress | None = None,
    shared: SharedStems | None = None,
) -> StemResult:
    """Vocal stem of a file as 16 kHz mono, from the cache when the same file was done before
    (here, or on another machine: ``shared``)."""
    started = time.perf_counter()
    device = options.resolved_device()
    key_path = None
    if cache_dir is not None:
        from ..audio import file_sha256

        key_path = Path(cache_dir) / f"{cache_key(file_hash or file_sha256(path), model, options)}.npy"
        if shared is not None and not key_path.is_file():
            key_path.parent.mkdir(parents=True, exist_ok=True)
            shared.fetch(key_path.name, key_path)
        if key_path.is_file() and (stem := _read_cache(key_path)) is not None:
            os.utime(key_path)  # the cache's eviction is by last use
            return StemResult(stem, True, key_path, 0.0, 0, device)
    backend = backend_for(model.kind)
    loaded = backend.load(model, device, options)
    workdir = Path(cache_dir) if cache_dir is not None else None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    # The decoded mix (1.3 GB per hour) goes next to the cache: /tmp is often a small tmpfs.
    with tempfile.TemporaryDirectory(prefix="tft-sep-", dir=workdir) as tmp:
        interleaved, stats = decode_to_memmap(path, Path(tmp))
        mix = interleaved.T  # (2, n) view over the memmap: no copy
        pending = key_path.with_name(f"{key_path.stem}.{os.getpid()}.npy.tmp") if key_path is not None else None
        out = (np.lib.format.open_memmap(pending, mode="w+", dtype=np.float32, shape=(stem_length(mix.shape[1]),))
               if pending is not None else np.empty(stem_length(mix.shape[1]), np.float32))
        try:
            resample = Resample(mix.shape[0], out)
            units = backend.separate(loaded, mix, stats=stats, options=options, sink=resample.push, progress=progress)
            resample.push(None)
            stem = resample.result()
            del mix, interleaved
            if pending is not None:  # published whole, by rename, and read back as a mapping
                stem.flush()
                del stem, out, resample
                os.replace(pending, key_path)
                stem = np.load(key_path, mmap_mode="r", allow_pickle=False)
                if shared is not None:
                    shared.share(key_path.name, key_path)
        finally:
            if pending is not None:
                pending.unlink(missing_ok=True)
    return StemResult(stem, False, key_path, time.perf_counter() - started, units, device)
