"""htdemucs (and other demucs models) as a separator, batched on GPU and streamed with bounded memory.

demucs' ``apply_model`` cuts a track into overlapping segments and runs them through the
network one at a time, holding every stem of the whole track in memory. Here the same
segments, padded exactly as ``TensorChunk.padded`` pads them, go through the network
``batch_size`` at a time, and the same triangular overlap-add weights are applied. Output
before the next segment's start is final, so it is handed to a sink and forgotten: memory
is O(batch x segment), whatever the track length, and only the vocal stem is kept.
``tests/`` prove the result equals ``apply_model(split=True, shifts=0)`` to float
tolerance. The mix is normalised in place the way ``demucs.separate`` does.

torch and demucs are imported lazily: they belong to the optional ``music`` extra, and no
demucs weights ship with it (``tft models pull htdemucs`` on a connected machine).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelCorruptError, ModelNotAvailable, SeparationError
from .base import ChunkProgress, MixStats, SeparationOptions, SeparatorModel, Sink

log = logging.getLogger(__name__)


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
    batch_size = options.resolved_batch(device, gpu=48)
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


class _Backend:
    def load(self, model: SeparatorModel, device: str, options: SeparationOptions):
        return load_model(str(model.path), model.load_name or model.name, device, options.compile)

    def separate(self, loaded, mix: np.ndarray, *, stats: MixStats, options: SeparationOptions, sink: Sink,
                 progress: ChunkProgress | None) -> int:
        """Normalise the (writable, memory-mapped) mix in place as demucs.separate does, separate,
        and undo the normalisation on the way out."""
        scale = stats.std if stats.std > 1e-8 else 1.0
        step = 44_100 * 30
        for i in range(0, mix.shape[1], step):
            mix[:, i : i + step] = (mix[:, i : i + step] - stats.mean) / scale
        segments = [0]

        def count(done: int, total: int) -> None:
            segments[0] = total
            if progress is not None:
                progress(done, total)

        separate_array(loaded, mix, options=options, sink=lambda block: sink(block * scale + stats.mean),
                       progress=count)
        return segments[0]


BACKEND = _Backend()
