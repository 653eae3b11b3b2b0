"""Encode test audio into real container formats with PyAV (mp3, m4a/aac, ogg/opus, flac,
wav, and an mp4 with a video track), and damage files in the ways users' files get damaged."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

FORMATS = {
    # suffix: (container format, audio codec, sample rate)
    "wav": ("wav", "pcm_s16le", 16_000),
    "flac": ("flac", "flac", 16_000),
    "mp3": ("mp3", "libmp3lame", 16_000),
    "m4a": ("ipod", "aac", 16_000),
    "ogg": ("ogg", "libopus", 48_000),
    "opus": ("opus", "libopus", 48_000),
    "webm": ("webm", "libopus", 48_000),
}


def _resample(audio: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return audio
    from scipy.signal import resample_poly

    g = np.gcd(src, dst)
    return resample_poly(audio, dst // g, src // g).astype(np.float32)


def encode(path: Path, audio: np.ndarray, rate: int = 16_000) -> Path:
    """Write mono float audio in the format named by ``path``'s suffix."""
    import av

    path = Path(path)
    fmt, codec, out_rate = FORMATS[path.suffix.lstrip(".").lower()]
    data = _resample(np.asarray(audio, dtype=np.float32), rate, out_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        _mux_audio(container, stream, data, out_rate)
    return path


def _mux_audio(container, stream, data: np.ndarray, rate: int) -> None:
    import av

    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    pts = 0
    for start in range(0, data.size, frame_size):
        chunk = data[start : start + frame_size]
        frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        pts += chunk.size
        if fmt != "fltp":
            for converted in av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame):
                converted.pts = frame.pts
                for packet in stream.encode(converted):
                    container.mux(packet)
            continue
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _video_stream(container, fps: int):
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def _mux_frames(container, video, count: int, fps: int) -> None:
    """A small grey picture that brightens frame by frame."""
    import av

    for i in range(count):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 7) % 255, dtype=np.uint8), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode(None):
        container.mux(packet)


def video_with_audio(path: Path, audio: np.ndarray, rate: int = 16_000, *, fps: int = 10) -> Path:
    """An mp4 with a small h264 video track and the audio as AAC: 'the audio track of a video'."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = audio.size / rate
    with av.open(str(path), "w", format="mp4") as container:
        video = _video_stream(container, fps)
        sound = container.add_stream("aac", rate=rate, layout="mono")
        _mux_frames(container, video, int(seconds * fps) + 1, fps)
        _mux_audio(container, sound, np.asarray(audio, dtype=np.float32), rate)
    return path


def video_without_audio(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    import av

    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        _mux_frames(container, _video_stream(container, fps), int(seconds * fps), fps)
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)
