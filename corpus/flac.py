"""Hand-built FLAC streams: hours of audio in a few hundred KB, with headers that lie.

An encoder will not write a STREAMINFO that disagrees with the audio, so hostile files are
built here bit by bit (FLAC format spec, xiph.org/flac/format.html): mono 16-bit frames of
4096 samples, each a CONSTANT subframe (digital silence, 3 bytes) or a VERBATIM one (a
440 Hz tone), with the frame header's CRC-8 and the frame's CRC-16. FFmpeg decodes them
like any encoder's output, at the usual cost per frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

BLOCK = 4096
_RATE_CODES = {8000: 0x4, 16000: 0x5, 22050: 0x6, 24000: 0x7, 32000: 0x8, 44100: 0x9, 48000: 0xA}


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        table.append(c)
    return table


_T16 = _crc16_table()


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _T16[(crc >> 8) ^ byte]
    return crc


def _coded_number(n: int) -> bytes:
    """The frame number in FLAC's UTF-8-like coding (UTF-8 for n < 2**21 is the same)."""
    return chr(n).encode("utf-8", "surrogatepass")


def write(
    path: str | Path,
    seconds: float,
    *,
    rate: int = 16_000,
    sound_at: Iterable[float] = (),
    declared_samples: int | None = None,
    damaged: tuple[float, float] | None = None,
) -> Path:
    """A mono FLAC of ``seconds`` of digital silence, with a 440 Hz tone in the frames that
    hold the times in ``sound_at`` (seconds). ``declared_samples`` overrides STREAMINFO's
    total-samples field: 0 means unknown (blanked), as some tools leave it. ``damaged``:
    frames between these times (seconds) carry a reserved subframe type, which a decoder
    must refuse (their CRCs are right, so nothing resynchronises past them)."""
    frames = int(seconds * rate) // BLOCK
    total = frames * BLOCK if declared_samples is None else declared_samples
    info = BLOCK.to_bytes(2, "big") * 2 + bytes(6)  # block sizes; frame sizes unknown
    info += ((rate << 44) | (0 << 41) | (15 << 36) | total).to_bytes(8, "big") + bytes(16)  # no MD5
    out = bytearray(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(BLOCK) / rate) * 32767).astype(">i2").tobytes()
    loud = {int(t * rate) // BLOCK for t in sound_at}
    bad = range(int(damaged[0] * rate) // BLOCK, int(damaged[1] * rate) // BLOCK) if damaged else range(0)
    # Header: sync + fixed blocking, 4096-sample blocks (0xC) at this rate, mono, 16-bit.
    lead = bytes([0xFF, 0xF8, 0xC0 | _RATE_CODES[rate], 0x08])
    for i in range(frames):
        head = lead + _coded_number(i)
        head += bytes([_crc8(head)])
        if i in bad:
            body = head + b"\x04" + tone  # subframe type 000010: reserved
        else:
            body = head + (b"\x02" + tone if i in loud else b"\x00\x00\x00")
        out += body + _crc16(body).to_bytes(2, "big")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path
