"""The length limit holds whatever a header says, while decoding; the probe's work is bounded.

Files come from corpus.flac: hours of audio in a few hundred KB, with STREAMINFO's sample
count honest or blanked (0: unknown), as a red-team pass used them against the server.
"""

import tracemalloc

import pytest

from corpus import flac
from engine import audio
from engine.errors import AudioTooLongError, SilentAudioError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("limits")
    point = audio.PROBE_SCAN_S + (36000 - audio.PROBE_SCAN_S) / audio.PROBE_POINTS * 7.5 + 0.1
    return {
        "blanked_2h": flac.write(d / "blanked_2h.flac", 2 * 3600, sound_at=[0.0, 60.0], declared_samples=0),
        "silent_10h": flac.write(d / "silent_10h.flac", 10 * 3600),
        "blanked_silent_2h": flac.write(d / "blanked_silent_2h.flac", 2 * 3600, declared_samples=0),
        "sound_at_a_probe_point": flac.write(d / "late_sound.flac", 10 * 3600, sound_at=[point]),
        "short": flac.write(d / "short.flac", 90, sound_at=[1.0]),
    }


def test_decoding_stops_at_the_limit_with_memory_for_the_limit_only(files):
    limit = 300.0
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLongError, match=r"'blanked_2h.flac' is longer than 5 minutes"):
            audio.decode(files["blanked_2h"], max_seconds=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    samples = limit * audio.WHISPER_RATE * 4  # float32
    print(f"\nblanked 2 h FLAC, 5-minute limit: decoding stopped; peak {peak / 1e6:.0f} MB traced "
          f"(the limit's samples: {samples / 1e6:.0f} MB; the whole file: {samples * 24 / 1e6:.0f} MB)")
    assert peak < 1.6 * samples  # growth overshoot only: never the old and new buffer at once


def test_a_header_over_the_limit_is_refused_before_decoding(files):
    with pytest.raises(AudioTooLongError, match="600 minutes long; this installation accepts at most 240 minutes"):
        audio.decode(files["silent_10h"], max_seconds=4 * 3600)
    with pytest.raises(AudioTooLongError, match="600 minutes long"):
        audio.probe(files["silent_10h"], require_sound=True, max_seconds=4 * 3600)


def test_within_the_limit_nothing_changes(files):
    assert audio.decode(files["short"], max_seconds=90).size == audio.decode(files["short"]).size
    assert audio.probe(files["short"], max_seconds=90).duration == pytest.approx(89.9, abs=0.2)


def test_the_probe_scans_a_bounded_stretch_then_samples_the_rest(files):
    with pytest.raises(SilentAudioError, match="only silence in its first 30 minutes and at 16 points"):
        audio.probe(files["silent_10h"], require_sound=True)
    found = audio.probe(files["sound_at_a_probe_point"], require_sound=True)
    assert found.duration == pytest.approx(36000, abs=1)


def test_a_silent_file_of_unknown_length_is_left_to_the_decoder(files):
    """Not proven silent (the scan stopped, and with no length there is nothing to sample):
    accepted, and the decoder enforces the limit as it goes."""
    info = audio.probe(files["blanked_silent_2h"], require_sound=True)
    assert info.duration == pytest.approx(audio.PROBE_SCAN_S, abs=1)
    with pytest.raises(AudioTooLongError, match="longer than 60 minutes"):
        audio.probe(files["blanked_silent_2h"], require_sound=True, max_seconds=3600, scan_seconds=7200)
