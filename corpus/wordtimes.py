"""Where each word of an espeak-ng line starts, from the synthesiser itself.

The corpus's voice lines come from the ``espeak-ng`` command. The same library, driven
through its C API (``libespeak-ng``), reports a word event with the audio position of each
word it speaks. Synthesised with the same voice and rate, the samples are the command's
samples (checked; the command only adds trailing silence), so those positions, shifted by the corpus's trim, are the true word
onsets of the line in the song: ground truth for word-level timing, not another aligner's
guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re

import numpy as np

from .errors import CorpusError, ToolMissing
from .voices import ESPEAK_VOICES, FRAME_S, RATE, _espeak, _to_rate, active_frames

_SYNCHRONOUS, _CHARS_UTF8, _SSML, _POS_CHARACTER, _RATE_PARAM = 2, 1, 0x10, 1, 1
_EVENT_END_OF_LIST, _EVENT_WORD = 0, 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@functools.cache
def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise ToolMissing("libespeak-ng is not installed: apt-get install espeak-ng (`make install` does)") from exc


def _synthesise_here(text: str, voice: str, wpm: int | None, ssml: bool) -> tuple[np.ndarray, list[tuple[int, float]], int]:
    """Samples (float32), [(character offset, seconds)] of each word event, sample rate."""
    lib = _library()
    samples: list[np.ndarray] = []
    events: list[tuple[int, float]] = []

    def callback(wav, count, event_ptr) -> int:
        if count > 0:
            samples.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0)
        i = 0
        while event_ptr[i].type != _EVENT_END_OF_LIST:
            e = event_ptr[i]
            if e.type == _EVENT_WORD:
                events.append((e.text_position - 1, e.audio_position / 1000.0))
            i += 1
        return 0

    keep = _CALLBACK(callback)
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
    if rate <= 0:
        raise ToolMissing("libespeak-ng failed to initialise")
    lib.espeak_SetSynthCallback(keep)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise CorpusError(f"espeak-ng has no voice {voice!r}")
    if wpm is not None:
        lib.espeak_SetParameter(_RATE_PARAM, wpm, 0)
    data = text.encode("utf-8")
    lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | (_SSML if ssml else 0), None, None)
    lib.espeak_Synchronize()
    audio = np.concatenate(samples) if samples else np.zeros(0, np.float32)
    return audio, events, rate


def _synthesise(text: str, voice: str, wpm: int | None, ssml: bool) -> tuple[np.ndarray, list[tuple[int, float]], int]:
    """``_synthesise_here`` in a fresh process: the synthesiser keeps state from one utterance to
    the next (its waveform generator), so only a first utterance sounds like the command's."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="tft-words-") as tmp:
        out = Path(tmp) / "audio.npy"
        args = json.dumps({"text": text, "voice": voice, "wpm": wpm, "ssml": ssml, "out": str(out)})
        root = str(Path(__file__).resolve().parent.parent)
        proc = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                               "from corpus.wordtimes import _child; _child(sys.argv[2])", root, args],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise CorpusError(f"word timing synthesis failed: {proc.stderr.strip()[-300:]}")
        meta = json.loads(proc.stdout)
        return np.load(out), [tuple(e) for e in meta["events"]], meta["rate"]  # type: ignore[misc]


def _child(args: str) -> None:
    import json

    a = json.loads(args)
    audio, events, rate = _synthesise_here(a["text"], a["voice"], a["wpm"], a["ssml"])
    np.save(a["out"], audio)
    print(json.dumps({"events": events, "rate": rate}))


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def word_onsets(text: str, language: str, *, ssml: str | None = None) -> list[float | None]:
    """Onset of each whitespace-separated word of ``text``, in seconds from the start of the
    trimmed line as the corpus stores it (``corpus.voices.trim``); None for a word espeak
    gave no event. ``ssml``: the markup the sung voice reads instead of ``text``."""
    if language not in ESPEAK_VOICES:
        raise CorpusError(f"no espeak-ng voice for language {language!r}")
    voice, wpm = ESPEAK_VOICES[language]
    source = ssml if ssml is not None else text
    audio, events, rate = _synthesise(source, voice, None if ssml is not None else wpm, ssml is not None)
    reference = _espeak(["-m", "-v", voice, ssml] if ssml is not None else ["-v", voice, "-s", str(wpm), text])
    ours = _to_rate(audio, rate)
    n = min(ours.size, reference.size)
    tail = np.abs(np.concatenate([ours[n:], reference[n:]]))
    if not np.allclose(ours[:n], reference[:n], atol=2e-3) or (tail.size and tail.max() > 1e-4):
        raise CorpusError("libespeak-ng and the espeak-ng command disagree; word times would not match the corpus")
    offset = float(np.flatnonzero(active_frames(ours))[0]) * FRAME_S
    positions = _text_positions(source, text, ssml is not None)
    onsets: list[float | None] = []
    for a, b in _word_spans(text):
        hits = [t for pos, t in events if a <= positions.get(pos, -1) < b]
        onsets.append(max(0.0, min(hits) - offset) if hits else None)
    return onsets


def _text_positions(source: str, text: str, ssml: bool) -> dict[int, int]:
    """Map character offsets in what espeak read to offsets in ``text`` (identity for plain text)."""
    if not ssml:
        return {i: i for i in range(len(text))}
    out, k = {}, 0
    inside = False
    for i, ch in enumerate(source):  # SSML: text characters outside tags, in order
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            while k < len(text) and text[k].isspace() and not ch.isspace():
                k += 1
            if k < len(text) and (ch == text[k] or (ch.isspace() and text[k].isspace())):
                out[i] = k
                k += 1
    return out


def song_word_onsets(manifest: "Path | str") -> list[list[float | None]] | None:
    """True onsets (seconds in the song) of every word of every sung line of a corpus song, or
    None for songs whose voice is a recording (pytest-audioeval clips carry no word times)."""
    import json
    from pathlib import Path

    from . import midi
    from .songs import sung_seed
    from .voices import sung_ssml

    data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    spec = data["spec"]
    if spec["voice"] not in ("espeak", "sung"):
        return None
    out = []
    for line in data["lines"]:
        ssml = None
        if spec["voice"] == "sung":
            style = midi.STYLES[spec["style"]]
            ssml = sung_ssml(line["text"], spec["language"], key=style.key, scale=style.scale,
                             seed=sung_seed(spec["seed"], line["text"]))
        rel = word_onsets(line["text"], spec["language"], ssml=ssml)
        out.append([None if r is None else round(line["start"] + r, 4) for r in rel])
    return out
