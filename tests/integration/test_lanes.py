"""The packed decoder's lanes: on a CPU, two decoders (one thread each) share the streams of
windows and run side by side. The real tiny.en model on a minute of real speech."""

import subprocess
import sys
import threading
import time

import pytest

from engine import vad
from engine.audio import decode
from engine.errors import Cancelled
from engine.transcription import DecodeOptions, load_model, packed_lanes, transcribe
from engine.windows import pack

pytestmark = pytest.mark.model


def _lane_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tft-lane-")]


@pytest.fixture(scope="module")
def speech(long_speech):
    path, text = long_speech
    audio = decode(path)
    return audio, vad.detect_speech(audio, vad.SPEECH), text


def test_two_lanes_hear_what_one_hears_in_order(tiny, speech):
    audio, spans, text = speech
    assert packed_lanes("cpu", 2) == 2 and packed_lanes("cpu", 1) == 1 and packed_lanes("cuda", 16) == 1
    one, two = load_model(tiny.name, tiny.path, lanes=1), load_model(tiny.name, tiny.path, lanes=2)
    assert len(one.lanes) == 1 and len(two.lanes) == 2 and two.lanes[1] is not two.lanes[0]
    options = DecodeOptions(language="en", batch_size=2)  # windows in two streams: one per lane
    assert len(pack(audio, spans)) >= 2
    seen: list[tuple[float, str]] = []
    single = transcribe(one, audio, spans, options)
    both = transcribe(two, audio, spans, options, on_segment=lambda s: seen.append((s.start, threading.current_thread().name)))
    from benchmarks.metrics import wer

    assert len(both.segments) >= 2 and [s.id for s in both.segments] == list(range(len(both.segments)))
    starts = [s.start for s in both.segments]
    assert starts == sorted(starts) and [t for t, _ in seen] == starts
    assert all(name == threading.current_thread().name for _, name in seen)  # handed on by the caller
    heard = {name: " ".join(s.text for s in d.segments) for name, d in (("one", single), ("two", both))}
    assert wer(text, heard["two"]) <= wer(text, heard["one"]) + 0.03 and wer(text, heard["two"]) < 0.15, heard
    assert not _lane_threads()


def test_a_cancel_stops_every_lane(tiny, speech):
    audio, spans, _ = speech
    two = load_model(tiny.name, tiny.path, lanes=2)

    def stop(_segment):
        raise Cancelled("job cancelled")

    with pytest.raises(Cancelled):
        transcribe(two, audio, spans, DecodeOptions(language="en", batch_size=2), on_segment=stop)
    deadline = time.monotonic() + 5
    while _lane_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _lane_threads()


_SAMPLED_PACKED = """
from engine import vad
from engine.audio import decode
from engine.transcription import DecodeOptions, load_model, transcribe
from models import ModelStore, default_store_dir, resolve_whisper

w = resolve_whisper("tiny.en", ModelStore(default_store_dir()))
model = load_model(w.name, w.path, lanes=2)
audio = decode({path!r})
spans = vad.detect_speech(audio, vad.SPEECH)
sampled = DecodeOptions(language="en", batch_size=2, temperatures=(1.0,))  # every window sampled
print(" | ".join(" ".join(s.text for s in transcribe(model, audio, spans, sampled).segments) for _ in range(2)))
"""


def test_lanes_sample_the_same_way_on_every_run(tiny, long_speech):
    """Each lane is its own model on its own thread, so a sampled window always meets the
    same random generator: the same command gives the same transcript."""
    script = _SAMPLED_PACKED.format(path=str(long_speech[0]))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           timeout=300).stdout.strip() for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].strip(" |")
