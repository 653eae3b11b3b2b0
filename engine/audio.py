"""Decode any media file to float32 PCM with PyAV, and say clearly why when we can't.

Two shapes come out of here: mono 16 kHz for voice activity detection and Whisper, and
stereo 44.1 kHz blocks for vocal separation. Decoding is streamed frame by frame into one
buffer grown in place, so an hour of audio is held once (230 MB at 16 kHz mono), not as a
list of frames plus a concatenated copy.

Headers lie (a FLAC whose STREAMINFO sample count is blanked declares nothing, then holds
hours), so a length limit is enforced on what is decoded, not on what is declared: decoding
stops with ``AudioTooLongError`` as soon as it passes the limit, and the buffer never grows
past it. The probe's work is bounded the same way (see ``probe``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import (
    AudioDecodeError,
    AudioTooLongError,
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
# The probe listens for sound over at most this much audio from the start, then at
# PROBE_POINTS short windows spread over the rest: its cost is bounded whatever the length.
PROBE_SCAN_S = 1800.0
PROBE_POINTS = 16
PROBE_WINDOW_S = 1.0


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


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    whole = minutes >= 10 or abs(minutes - round(minutes)) < 0.05
    return f"{minutes:.0f} minutes" if whole else f"{minutes:.1f} minutes"


def too_long(p: Path, limit_s: float, *, declared: float | None = None) -> AudioTooLongError:
    """The file passed the limit: by its header (``declared``) or while being decoded."""
    length = f"{_minutes(declared)} long" if declared is not None else f"longer than {_minutes(limit_s)}"
    return AudioTooLongError(
        f"{_describe(p)} is {length}; this installation accepts at most {_minutes(limit_s)} of audio"
    )


class _Buffer:
    """Float32 samples, frame-major (n, channels), in one buffer grown in place.

    The buffer grows with ``ndarray.resize``, a ``realloc``: for large buffers the C library
    remaps the pages rather than copying them, so growing never holds the old and the new
    buffer at once, and the result is trimmed in place too. Memory peaks at about the
    audio's own size, whatever the header said, and decoding stopped at a length limit holds
    no more than the limit's worth of samples.
    """

    def __init__(self, channels: int, capacity: int) -> None:
        self.channels = channels
        self._data = np.empty((max(capacity, 16_000), channels), dtype=np.float32)
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if self.size + n > self._data.shape[0]:
            grown = max(self.size + n, int(self._data.shape[0] * 1.5))
            self._data.resize((grown, self.channels), refcheck=False)
        self._data[self.size : self.size + n] = block.T
        self.size += n

    def result(self) -> np.ndarray:
        """Shape (channels, n): a view of the trimmed buffer (contiguous for mono)."""
        self._data.resize((self.size, self.channels), refcheck=False)
        return self._data.T


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
    path: str | os.PathLike[str],
    *,
    sample_rate: int,
    channels: int,
    via_s16: bool = False,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield float32 blocks of shape (channels, n) at ``sample_rate``, in order.

    ``via_s16`` resamples to 16-bit integers and scales by 1/32768, exactly as Whisper's and
    faster-whisper's loaders do: the model was trained on that, and some clips decode
    differently (temperature fallbacks, other words) on a 1e-5 difference in the samples.

    ``max_seconds``: raise ``AudioTooLongError`` before yielding the block that passes it
    (and at once when the header already declares more), whatever the header says.

    Raises typed errors for undecodable input; corrupt packets are skipped up to
    MAX_BAD_PACKETS and then refused, so a damaged file never decodes to garbage silently.
    """
    av = _av()
    p = Path(path)
    container = _open(p)
    try:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        limit = None if max_seconds is None else int(max_seconds * sample_rate)
        declared = _declared_duration(container, stream)
        if max_seconds is not None and declared is not None and declared > max_seconds + TRUNCATION_SLACK_S:
            raise too_long(p, max_seconds, declared=declared)
        resampler = av.AudioResampler(
            format="s16p" if via_s16 else "fltp", layout="mono" if channels == 1 else "stereo", rate=sample_rate
        )
        produced = 0

        def converted(frame) -> Iterator[np.ndarray]:
            nonlocal produced
            for out in resampler.resample(frame):
                arr = _as_float(out.to_ndarray())
                produced += arr.shape[1]
                if limit is not None and produced > limit:
                    raise too_long(p, max_seconds)  # type: ignore[arg-type]
                yield arr

        for frame in _frames(container, stream, p):
            yield from converted(frame)
        yield from converted(None)
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
    path: str | os.PathLike[str],
    *,
    sample_rate: int = WHISPER_RATE,
    channels: int = 1,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode a whole file. Mono returns shape (n,), stereo returns (2, n); float32 in [-1, 1].

    Mono at 16 kHz (Whisper's input) goes through 16-bit samples like Whisper's own loader.
    With ``max_seconds``, decoding stops with ``AudioTooLongError`` as soon as the decoded
    audio passes the limit, and memory stays within the limit's worth of samples.
    """
    declared = 0.0
    container = _open(path)
    try:
        declared = _declared_duration(container, container.streams.audio[0]) or 0.0
    finally:
        container.close()
    # Reserve what the header declares, but never more than the limit (or four hours): a
    # header that lies upwards must not reserve gigabytes, one that lies downwards only
    # makes the buffer grow.
    cap_s = min(declared, max_seconds if max_seconds is not None else 4 * 3600)
    buf = _Buffer(channels, int(cap_s * sample_rate) + sample_rate)
    whisper_input = channels == 1 and sample_rate == WHISPER_RATE
    blocks = iter_blocks(path, sample_rate=sample_rate, channels=channels, via_s16=whisper_input,
                         max_seconds=max_seconds)
    for block in blocks:
        buf.append(block)
    data = buf.result()
    return data[0] if channels == 1 else data


def _peak(frame) -> float:
    arr = frame.to_ndarray()
    if not arr.size:
        return 0.0
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        centre = 0 if arr.dtype.kind == "i" else (info.max + 1) // 2  # unsigned PCM is offset
        return float(np.abs(arr.astype(np.float64) - centre).max()) / float(info.max - centre)
    return float(np.abs(arr).max())


def probe(
    path: str | os.PathLike[str],
    *,
    require_sound: bool = False,
    max_seconds: float | None = None,
    scan_seconds: float = PROBE_SCAN_S,
) -> AudioInfo:
    """Check a file is decodable audio and report its format, cheaply and with bounded work.

    It decodes only until it hears something: the first loud-enough frame of normal audio
    ends the scan, so a probe costs milliseconds. The scan for sound covers at most
    ``scan_seconds`` of audio from the start, then ``PROBE_POINTS`` short windows spread over
    the rest of the declared length; a file silent everywhere it was checked is refused when
    ``require_sound`` is set. A file whose length is unknown and that is silent for the whole
    scan is left to the decoder, which enforces the length limit as it goes.

    ``max_seconds``: a header that declares more, or a scan that passes it, raises
    ``AudioTooLongError`` at once. Truncation is detected by seeking near the declared end
    and demanding a frame there.
    """
    p = Path(path)
    container = _open(p)
    try:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        declared = _declared_duration(container, stream)
        if max_seconds is not None and declared is not None and declared > max_seconds + TRUNCATION_SLACK_S:
            raise too_long(p, max_seconds, declared=declared)
        info_codec = ctx.name or "unknown"
        rate = int(ctx.sample_rate or 0)
        channels = int(ctx.channels or 0)
        heard, complete, samples = False, True, 0
        budget = scan_seconds if max_seconds is None else min(scan_seconds, max_seconds + TRUNCATION_SLACK_S)
        for frame in _frames(container, stream, p):
            samples += frame.samples
            rate = rate or frame.sample_rate
            if _peak(frame) > SILENCE_PEAK:
                heard = True
                break
            if samples > budget * max(rate, 1):
                complete = False
                break
        if samples == 0:
            raise EmptyAudioError(f"{_describe(p)} contains no audio samples")
        scanned = samples / max(rate, 1)
        if not complete and max_seconds is not None and scanned > max_seconds:
            raise too_long(p, max_seconds)
        sampled = None
        if not heard and not complete and declared is not None:
            sampled = _listen_at_points(container, stream, p, start=scanned, end=declared)
            heard = bool(sampled)
        if require_sound and not heard:
            if complete:
                raise SilentAudioError(f"{_describe(p)} contains only silence; there is nothing to transcribe")
            if sampled is False:
                raise SilentAudioError(
                    f"{_describe(p)} contains only silence in its first {_minutes(scanned)} and at "
                    f"{PROBE_POINTS} points through the rest; there is nothing to transcribe")
        if complete and not heard:
            duration = scanned  # scanned to the end
        else:
            duration = declared if declared is not None else scanned
            if heard and declared is not None and declared > TRUNCATION_SLACK_S * 2:
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


def _listen_at_points(container, stream, p: Path, *, start: float, end: float) -> bool | None:
    """Whether any of PROBE_POINTS short windows between ``start`` and ``end`` holds sound;
    None when the stream cannot be sampled that way (no time base, seeking fails)."""
    av = _av()
    if stream.time_base is None or end <= start:
        return None
    step = (end - start) / PROBE_POINTS
    for i in range(PROBE_POINTS):
        at = start + step * (i + 0.5)
        try:
            container.seek(int(at / stream.time_base), stream=stream, any_frame=False, backward=True)
            decoded = 0.0
            for frame in _frames(container, stream, p):
                if _peak(frame) > SILENCE_PEAK:
                    return True
                decoded += frame.samples / max(frame.sample_rate, 1)
                if (frame.time is not None and frame.time >= at + PROBE_WINDOW_S) or decoded > 30 * PROBE_WINDOW_S:
                    break
        except av.FFmpegError:
            return None
    return False


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
