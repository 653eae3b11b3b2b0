"""Vocal isolation with demucs, batched on GPU and streamed with bounded memory on CPU.

demucs' ``apply_model`` cuts a track into overlapping segments and runs them through the
network one at a time, holding every stem of the whole track in memory. Here the same
segments, padded exactly as ``TensorChunk.padded`` pads them, go through the network
``batch_size`` at a time, and the same triangular overlap-add weights are applied. Output
before the next segment's start is final, so it is handed to a sink and forgotten: memory
is O(batch x segment), whatever the track length, and only the vocal stem is kept.
``tests/`` prove the result equals ``apply_model(split=True, shifts=0)`` to float
tolerance.

The mix itself is decoded once into a float32 memory-mapped file (44.1 kHz stereo), and
normalised in place the way ``demucs.separate`` does, so RAM holds only the segments in
flight. The vocal stem comes out as 16 kHz mono (for VAD and Whisper), cached on disk by
the file's content hash so a re-run with other options does not separate again.

torch and demucs are imported lazily: they belong to the optional ``music`` extra.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from .audio import SEPARATION_RATE, iter_blocks
from .errors import ModelCorruptError, ModelNotAvailable, SeparationError

log = logging.getLogger(__name__)

WHISPER_RATE = 16_000
ChunkProgress = Callable[[int, int], None]  # (segments done, segments total); may raise Cancelled


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("demucs") is not None


@dataclass(frozen=True, slots=True)
class SeparationOptions:
    """How to run the separator.

    batch_size: segments per forward pass; 0 chooses 48 on CUDA and 1 on CPU (on CPU a
        batch only adds memory: the cores are already busy inside each convolution).
    overlap: fraction of each segment shared with the next, as in apply_model.
    device: 'auto' (CUDA when torch sees it), 'cpu' or 'cuda'.
    precision: 'float32', or 'bfloat16' autocast on CUDA (about 4x faster on Hopper).
    compile: torch.compile the model (long one-time cost; pays off on long GPU jobs).
    stem: the source to keep.
    """

    batch_size: int = 0
    overlap: float = 0.25
    device: str = "auto"
    precision: Literal["float32", "bfloat16"] = "float32"
    compile: bool = False
    stem: str = "vocals"
    threads: int = 0

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_batch(self, device: str) -> int:
        if self.batch_size > 0:
            return self.batch_size
        return 48 if device.startswith("cuda") else 1


@functools.lru_cache(maxsize=2)
def load_model(repo: str, name: str, device: str = "cpu", compile_model: bool = False):
    """Load a demucs model (or bag) from a local repository directory, once per process."""
    try:
        from demucs.pretrained import get_model
        from demucs.repo import ModelLoadingError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelNotAvailable(
            "vocal separation needs the music extra (torch and demucs): pip install '.[music]'"
        ) from exc
    root = Path(repo)
    if not root.is_dir():
        raise ModelNotAvailable(f"demucs repository {root} does not exist")
    try:
        model = get_model(name, repo=root)
    except ModelLoadingError as exc:
        raise ModelCorruptError(f"demucs model {name} in {root} failed to load: {exc}") from exc
    except (RuntimeError, OSError, KeyError, EOFError) as exc:
        raise ModelCorruptError(f"demucs model {name} in {root} failed to load ({exc})") from exc
    model.eval()
    model.to(device)
    if compile_model:
        import torch

        for sub in _submodels(model):
            sub.forward = torch.compile(sub.forward, dynamic=False)  # type: ignore[method-assign]
    return model


def _submodels(model) -> list:
    from demucs.apply import BagOfModels

    return list(model.models) if isinstance(model, BagOfModels) else [model]


def _bag_weights(model) -> list[list[float]]:
    from demucs.apply import BagOfModels

    if isinstance(model, BagOfModels):
        return [list(w) for w in model.weights]
    return [[1.0] * len(model.sources)]


class OverlapAdd:
    """The streaming half of apply_model's split path, for one output stem, on the model's device.

    Add each segment's output at its offset with the triangular weight; everything before
    ``finalise(upto)`` is divided by the summed weights and returned, then dropped. Keeping
    this on the GPU matters: done on the host it costs more than the network on an H200.
    """

    def __init__(self, channels: int, weight, capacity: int, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.weight = torch.as_tensor(weight, dtype=torch.float32, device=device)
        self.acc = torch.zeros((channels, capacity), dtype=torch.float32, device=device)
        self.wsum = torch.zeros(capacity, dtype=torch.float32, device=device)
        self.base = 0  # absolute sample index of acc[:, 0]

    def add(self, offset: int, block) -> None:
        n = block.shape[-1]
        lo = offset - self.base
        if lo + n > self.acc.shape[1]:
            grow = lo + n - self.acc.shape[1]
            self.acc = self.torch.nn.functional.pad(self.acc, (0, grow))
            self.wsum = self.torch.nn.functional.pad(self.wsum, (0, grow))
        self.acc[:, lo : lo + n] += self.weight[:n] * block
        self.wsum[lo : lo + n] += self.weight[:n]

    def finalise(self, upto: int):
        n = upto - self.base
        if n <= 0:
            return self.acc[:, :0].clone()
        if float(self.wsum[:n].min()) <= 0:
            raise SeparationError("internal error: a stretch of audio was covered by no segment")
        out = self.acc[:, :n] / self.wsum[:n]
        self.acc = self.torch.cat([self.acc[:, n:], self.torch.zeros_like(self.acc[:, :n])], dim=1)
        self.wsum = self.torch.cat([self.wsum[n:], self.torch.zeros_like(self.wsum[:n])])
        self.base = upto
        return out


def _segment_plan(model, length: int, overlap: float) -> tuple[int, int, list[int], np.ndarray]:
    """Segment length, stride, offsets and triangular weights, exactly as apply_model computes them."""
    sub = _submodels(model)[0]
    segment_length = int(sub.samplerate * float(sub.segment))
    stride = int((1 - overlap) * segment_length)
    offsets = list(range(0, length, stride))
    half = segment_length // 2
    weight = np.concatenate([np.arange(1, half + 1), np.arange(segment_length - half, 0, -1)]).astype(np.float64)
    return segment_length, stride, offsets, weight / weight.max()


def _valid_length(model, chunk_length: int) -> int:
    sub = _submodels(model)[0]
    return sub.valid_length(chunk_length) if hasattr(sub, "valid_length") else chunk_length


def _window_segments(mix: np.ndarray, offsets: list[int], segment_length: int, target: int, device: str):
    """The padded segments for ``offsets``, built on ``device`` from one host-to-device copy.

    Each segment is exactly TensorChunk(mix, offset, segment_length).padded(target): the
    audio around the segment where there is some, zeros past the ends of the track.
    """
    import torch
    import torch.nn.functional as F

    total = mix.shape[-1]
    starts = [off - (target - min(segment_length, total - off)) // 2 for off in offsets]
    lo, hi = max(0, min(starts)), min(total, max(start + target for start in starts))
    window = torch.from_numpy(np.ascontiguousarray(mix[:, lo:hi], dtype=np.float32)).to(device)
    pieces = []
    for start in starts:
        a, b = max(0, start), min(total, start + target)
        pieces.append(F.pad(window[:, a - lo : b - lo], (a - start, start + target - b)))
    return torch.stack(pieces)


def separate_array(
    model,
    mix: np.ndarray,
    *,
    options: SeparationOptions = SeparationOptions(),
    sink: Callable[[np.ndarray], None] | None = None,
    progress: ChunkProgress | None = None,
) -> np.ndarray | None:
    """Separate ``mix`` (channels, samples at the model's rate) and emit one stem in order.

    With a ``sink``, finalised blocks (numpy) are passed to it and nothing is returned
    (bounded memory); without one, the whole stem is returned as (channels, samples).
    """
    import torch
    from demucs.utils import center_trim

    device = options.resolved_device()
    batch_size = options.resolved_batch(device)
    subs = _submodels(model)
    weights = _bag_weights(model)
    try:
        stem_index = list(subs[0].sources).index(options.stem)
    except ValueError:
        raise SeparationError(f"the demucs model has no '{options.stem}' source") from None
    total_weight = sum(w[stem_index] for w in weights)
    channels, length = mix.shape
    segment_length, stride, offsets, weight = _segment_plan(model, length, options.overlap)
    for sub in subs[1:]:
        if int(sub.samplerate * float(sub.segment)) != segment_length:
            raise SeparationError("bags of demucs models with different segment lengths are not supported")
    ola = OverlapAdd(channels, weight, segment_length + batch_size * stride + stride, device)
    collected: list[np.ndarray] = []
    emit = sink if sink is not None else collected.append
    use_bf16 = options.precision == "bfloat16" and device.startswith("cuda")
    if options.threads:
        torch.set_num_threads(options.threads)
    done = 0
    for first in range(0, len(offsets), batch_size):
        # Segments padded to the same length share a forward pass (for HTDemucs that is
        # every segment; older demucs pads the short last one differently).
        groups: dict[int, list[int]] = {}
        for off in offsets[first : first + batch_size]:
            groups.setdefault(_valid_length(model, min(segment_length, length - off)), []).append(off)
        with torch.inference_mode():
            for target, group in groups.items():
                x = _window_segments(mix, group, segment_length, target, device)
                if options.compile and len(group) < batch_size:
                    # A compiled graph is specialised to its batch size: pad the last batch
                    # instead of compiling a second graph for it (the extra outputs are dropped).
                    x = torch.cat([x, x.new_zeros((batch_size - len(group), *x.shape[1:]))])
                combined = None
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    for sub, w in zip(subs, weights):
                        y = sub(x)[:, stem_index].float() * (w[stem_index] / total_weight)
                        combined = y if combined is None else combined + y
                assert combined is not None
                for i, off in enumerate(group):
                    ola.add(off, center_trim(combined[i], min(segment_length, length - off)))
                done += len(group)
            following = offsets[first + batch_size] if first + batch_size < len(offsets) else length
            emit(ola.finalise(following).cpu().numpy())
        if progress is not None:
            progress(done, len(offsets))
    if sink is None:
        return np.concatenate(collected, axis=1) if collected else np.zeros((channels, 0), np.float32)
    return None


# ----------------------------------------------------------------------------------------
# File-level separation: decode to a memmap, normalise, separate, resample, cache.


@dataclass(frozen=True)
class StemResult:
    audio: np.ndarray  # 16 kHz mono float32
    cached: bool
    cache_path: Path | None
    seconds: float
    segments: int


def cache_key(file_hash: str, model_name: str, model_files: str, options: SeparationOptions) -> str:
    relevant = {"overlap": options.overlap, "stem": options.stem, "precision": options.precision}
    blob = json.dumps({"file": file_hash, "model": model_name, "files": model_files, **relevant}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def model_fingerprint(repo: Path) -> str:
    """Identify the weights by name, size and mtime of their files (cheap, no hashing)."""
    items = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in repo.glob("*") if p.is_file())
    return hashlib.sha1(json.dumps(items).encode()).hexdigest()[:16]


class _Resample:
    """Stateful 44.1 kHz stereo -> 16 kHz mono conversion across block boundaries (PyAV)."""

    def __init__(self, channels: int) -> None:
        import av

        self._av = av
        self.layout = "stereo" if channels == 2 else "mono"
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=WHISPER_RATE)
        self.parts: list[np.ndarray] = []

    def push(self, block: np.ndarray | None) -> None:
        if block is None:
            frames = self.resampler.resample(None)
        else:
            frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp",
                                                     layout=self.layout)
            frame.sample_rate = SEPARATION_RATE
            frames = self.resampler.resample(frame)
        for f in frames:
            self.parts.append(f.to_ndarray().reshape(-1))

    def result(self) -> np.ndarray:
        return np.concatenate(self.parts).astype(np.float32) if self.parts else np.zeros(0, np.float32)


def decode_to_memmap(path: str | os.PathLike[str], workdir: Path) -> tuple[np.memmap, float, float]:
    """Decode stereo 44.1 kHz into a disk-backed array; return it with the mix mean and std."""
    raw = workdir / "mix.f32"
    blocks = 0
    total = 0
    s1 = 0.0
    s2 = 0.0
    with open(raw, "wb") as fh:
        for block in iter_blocks(path, sample_rate=SEPARATION_RATE, channels=2):
            ref = block.mean(axis=0, dtype=np.float64)
            s1 += float(ref.sum())
            s2 += float(np.square(ref).sum())
            total += block.shape[1]
            fh.write(np.ascontiguousarray(block.T, dtype=np.float32).tobytes())  # interleaved
            blocks += 1
    mean = s1 / max(total, 1)
    std = float(np.sqrt(max(s2 / max(total, 1) - mean * mean, 0.0)) * np.sqrt(total / max(total - 1, 1)))
    interleaved = np.memmap(raw, dtype=np.float32, mode="r+", shape=(total, 2))
    return interleaved, mean, std


def separate_file(
    path: str | os.PathLike[str],
    *,
    repo: Path,
    model_name: str,
    options: SeparationOptions = SeparationOptions(),
    cache_dir: Path | None = None,
    file_hash: str | None = None,
    progress: ChunkProgress | None = None,
) -> StemResult:
    """Vocal stem of a file as 16 kHz mono, from the cache when the same file was done before."""
    import time

    started = time.perf_counter()
    device = options.resolved_device()
    key_path = None
    if cache_dir is not None:
        from .audio import file_sha256

        digest = file_hash or file_sha256(path)
        key = cache_key(digest, model_name, model_fingerprint(repo), options)
        key_path = Path(cache_dir) / f"{key}.npy"
        if key_path.is_file():
            try:
                stem = np.load(key_path, mmap_mode=None)
                return StemResult(stem.astype(np.float32, copy=False), True, key_path, 0.0, 0)
            except (OSError, ValueError):
                key_path.unlink(missing_ok=True)  # a damaged cache entry is just recomputed
    model = load_model(str(repo), model_name, device, options.compile)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    # The decoded mix (1.3 GB per hour) goes next to the cache: /tmp is often a small tmpfs.
    with tempfile.TemporaryDirectory(prefix="tft-sep-", dir=cache_dir) as tmp:
        interleaved, mean, std = decode_to_memmap(path, Path(tmp))
        scale = std if std > 1e-8 else 1.0
        # Normalise in place in blocks, as demucs.separate does for the whole track.
        step = SEPARATION_RATE * 30
        for i in range(0, interleaved.shape[0], step):
            interleaved[i : i + step] = (interleaved[i : i + step] - mean) / scale
        mix = interleaved.T  # (2, n) view over the memmap: no copy
        resample = _Resample(mix.shape[0])
        segments = [0]

        def sink(block: np.ndarray) -> None:
            resample.push(block * scale + mean)

        def chunk_progress(done: int, total: int) -> None:
            segments[0] = total
            if progress is not None:
                progress(done, total)

        separate_array(model, mix, options=options, sink=sink, progress=chunk_progress)
        resample.push(None)
        stem = resample.result()
        del mix, interleaved
    if key_path is not None:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=key_path.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, stem)
        os.replace(tmp_name, key_path)
    return StemResult(stem, False, key_path, time.perf_counter() - started, segments[0])
