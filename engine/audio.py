"""Decode any media file to float32 PCM with PyAV, and say clearly why when we can't.

Two shapes come out of here: mono 16 kHz for voice activity detection and Whisper, and
stereo 44.1 kHz blocks for vocal separation. Decoding is streamed frame by frame into one
growing buffer sized from the container's declared duration, so an hour of audio is held
once (230 MB at 16 kHz mono), not as a list of frames plus a concatenated copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import (
    AudioDecodeError,
    EmptyAudioError,
    InputError,
    NotAudioError,
    SilentAudioError,
    TruncatedAudioError,
)

WHISPER_RATE = 16_000
SEPARATION_RATE = 44_100
# Peak below which a frame counts as digital silence (about -80 dBFS).
SILENCE_PEAK = 1e-4
# A file counts as truncated when it decodes to less than this share of its declared length
# (and at least TRUNCATION_SLACK_S seconds short): VBR estimates are rarely this far off.
TRUNCATION_RATIO = 0.9
TRUNCATION_SLACK_S = 1.0
# Corrupt packets tolerated (concealed by skipping) before the file is refused.
MAX_BAD_PACKETS = 8


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a probe learned about a file without decoding all of it."""

    path: str
    container: str
    codec: str
    sample_rate: int
    channels: int
    duration: float
    has_video: bool
    size_bytes: int


def _av():
    import av  # local import: keeps `import engine` fast for the server and unit tests

    return av


def _describe(path: Path) -> str:
    return f"'{path.name}'"


def _open(path: str | os.PathLike[str]):
    """Open a container, translating every way that can fail into one sentence."""
    av = _av()
    p = Path(path)
    if not p.exists():
        raise InputError(f"{_describe(p)} does not exist")
    if p.is_dir():
        raise InputError(f"{_describe(p)} is a directory, not an audio file")
    size = p.stat().st_size
    if size == 0:
        raise EmptyAudioError(f"{_describe(p)} is empty (0 bytes)")
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.error.EOFError as exc:
        raise TruncatedAudioError(
            f"{_describe(p)} ends before its first audio frame; the file looks truncated"
        ) from exc
    except (av.error.InvalidDataError, av.error.PatchWelcomeError, av.error.DemuxerNotFoundError,
            av.error.DecoderNotFoundError, av.error.UnknownError) as exc:
        raise NotAudioError(
            f"{_describe(p)} is not an audio or video file that can be decoded "
            "(it may be damaged or incomplete)"
        ) from exc
    except av.FFmpegError as exc:
        raise AudioDecodeError(f"{_describe(p)} could not be opened: {exc.strerror or exc}") from exc
    if not container.streams.audio:
        kinds = sorted({"an image" if s.type == "video" and s.frames <= 1 else s.type for s in container.streams})
        container.close()
        what = f" (it holds {' and '.join(kinds)}, no sound)" if kinds else ""
        raise NotAudioError(f"{_describe(p)} has no audio track{what}")
    return container


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


class _Buffer:
    """A growable float32 buffer of shape (channels, n): amortised doubling, one copy."""

    def __init__(self, channels: int, capacity: int) -> None:
        self._data = np.empty((channels, max(capacity, 1024)), dtype=np.float32)
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if self.size + n > self._data.shape[1]:
            grown = np.empty(
                (self._data.shape[0], max(self.size + n, int(self._data.shape[1] * 1.5))),
                dtype=np.float32,
            )
            grown[:, : self.size] = self._data[:, : self.size]
            self._data = grown
        self._data[:, self.size : self.size + n] = block
        self.size += n

    def result(self) -> np.ndarray:
        data = self._data[:, : self.size]
        # Give memory back if the estimate was far off; otherwise return a view.
        return data.copy() if self._data.shape[1] > self.size * 1.1 + 16_000 else data


def _frames(container, stream, p: Path) -> Iterator:
    """Decoded frames of one stream; corrupt packets are skipped up to MAX_BAD_PACKETS, then
    refused, and FFmpeg's errors become ours. A stream that ends early just ends (the
    callers judge its length)."""
    av = _av()
    bad = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except (av.error.InvalidDataError, av.error.DecoderNotFoundError) as exc:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise AudioDecodeError(f"{_describe(p)} is damaged: too many corrupt audio packets") from exc
                continue
            yield from frames
    except av.error.EOFError:
        return
    except av.FFmpegError as exc:
        raise AudioDecodeError(f"{_describe(p)} could not be decoded: {exc.strerror or exc}") from exc


def iter_blocks(
    path: str | os.PathLike[str], *, sample_rate: int, channels: int, via_s16: bool = False
) -> Iterator[np.ndarray]:
    """Yield float32 blocks of shape (channels, n) at ``sample_rate``, in order.

    ``via_s16`` resamples to 16-bit integers and scales by 1/32768, exactly as Whisper's and
    faster-whisper's loaders do: the model was trained on that, and some clips decode
    differently (temperature fallbacks, other words) on a 1e-5 difference in the samples.

    Raises typed errors for undecodable input; corrupt packets are skipped up to
    MAX_BAD_PACKETS and then refused, so a damaged file never decodes to garbage silently.
    """
    av = _av()
    p = Path(path)
    container = _open(p)
    try:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(
            format="s16p" if via_s16 else "fltp", layout="mono" if channels == 1 else "stereo", rate=sample_rate
        )
        produced = 0
        for frame in _frames(container, stream, p):
            for out in resampler.resample(frame):
                arr = _as_float(out.to_ndarray())
                produced += arr.shape[1]
                yield arr
        for out in resampler.resample(None):
            arr = _as_float(out.to_ndarray())
            produced += arr.shape[1]
            yield arr
        if produced == 0:
            raise EmptyAudioError(f"{_describe(p)} contains no audio samples")
        declared = _declared_duration(container, stream)
        decoded = produced / sample_rate
        if (
            declared is not None
            and decoded < declared * TRUNCATION_RATIO
            and declared - decoded > TRUNCATION_SLACK_S
        ):
            raise TruncatedAudioError(
                f"{_describe(p)} stops after {decoded:.1f} s but its header says {declared:.1f} s; "
                "the file looks truncated (an incomplete download or copy?)"
            )
    finally:
        container.close()


def _as_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    return arr


def decode(
    path: str | os.PathLike[str], *, sample_rate: int = WHISPER_RATE, channels: int = 1
) -> np.ndarray:
    """Decode a whole file. Mono returns shape (n,), stereo returns (2, n); float32 in [-1, 1].

    Mono at 16 kHz (Whisper's input) goes through 16-bit samples like Whisper's own loader.
    """
    declared = 0.0
    container = _open(path)
    try:
        declared = _declared_duration(container, container.streams.audio[0]) or 0.0
    finally:
        container.close()
    # Cap the up-front reservation: a lying header must not allocate gigabytes.
    capacity = int(min(declared, 4 * 3600) * sample_rate) + sample_rate
    buf = _Buffer(channels, capacity)
    whisper_input = channels == 1 and sample_rate == WHISPER_RATE
    for block in iter_blocks(path, sample_rate=sample_rate, channels=channels, via_s16=whisper_input):
        buf.append(block)
    data = buf.result()
    return data[0] if channels == 1 else data


def probe(path: str | os.PathLike[str], *, require_sound: bool = False) -> AudioInfo:
    """Check a file is decodable audio and report its format, cheaply.

    It decodes only until it hears something: the first loud-enough frame of normal audio
    ends the scan, so a probe costs milliseconds; a file of pure silence is scanned to the
    end and refused when ``require_sound`` is set. Truncation is detected by seeking near
    the declared end and demanding a frame there.
    """
    p = Path(path)
    container = _open(p)
    try:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        declared = _declared_duration(container, stream)
        info_codec = ctx.name or "unknown"
        rate = int(ctx.sample_rate or 0)
        channels = int(ctx.channels or 0)
        heard = False
        samples = 0
        for frame in _frames(container, stream, p):
            samples += frame.samples
            rate = rate or frame.sample_rate
            arr = frame.to_ndarray()
            if arr.dtype.kind in "iu":
                peak = np.abs(arr).max() / float(np.iinfo(arr.dtype).max) if arr.size else 0.0
            else:
                peak = float(np.abs(arr).max()) if arr.size else 0.0
            if peak > SILENCE_PEAK:
                heard = True
                break
        if samples == 0:
            raise EmptyAudioError(f"{_describe(p)} contains no audio samples")
        if require_sound and not heard:
            raise SilentAudioError(f"{_describe(p)} contains only silence; there is nothing to transcribe")
        if not heard:
            duration = samples / rate if rate else 0.0  # scanned to the end
        else:
            duration = declared if declared is not None else samples / max(rate, 1)
            if declared is not None and declared > TRUNCATION_SLACK_S * 2:
                _check_tail(p, container, stream, declared)
        return AudioInfo(
            path=str(p),
            container=container.format.name,
            codec=info_codec,
            sample_rate=rate,
            channels=channels,
            duration=float(duration),
            has_video=bool(container.streams.video),
            size_bytes=p.stat().st_size,
        )
    finally:
        container.close()


def _check_tail(p: Path, container, stream, declared: float) -> None:
    """Seek to just before the declared end and require decodable audio there.

    Seeking is approximate, so decoding continues from wherever the seek landed until a
    frame at or past the target appears (a file that ends first is truncated); a seek
    that lands far too early, or a stream that cannot seek, is left to the full decode.
    """
    av = _av()
    target = max(0.0, declared * TRUNCATION_RATIO - TRUNCATION_SLACK_S)
    try:
        container.seek(int(target / stream.time_base), stream=stream, any_frame=False, backward=True)
        first = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                if frame.time is None:
                    return
                first = frame.time if first is None else first
                if frame.time >= target - 0.5 or frame.time - first > 120:
                    return
    except (av.error.EOFError, av.error.PermissionError):
        pass
    except av.FFmpegError:
        return  # not seekable: the full decode in the worker will judge it
    raise TruncatedAudioError(
        f"{_describe(p)} has no audio near the {declared:.1f} s its header declares; "
        "the file looks truncated (an incomplete download or copy?)"
    )


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Content hash used to key caches (separated stems) by what a file holds, not its name."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
