"""Decoding real container formats, and a typed error with one clear sentence for each kind of bad input."""

import numpy as np
import pytest

from corpus import media, synth
from engine import audio
from engine.errors import (
    AudioDecodeError,
    EmptyAudioError,
    InputError,
    NotAudioError,
    SilentAudioError,
    TruncatedAudioError,
)

TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 6) / 16000)).astype(np.float32)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    files = {ext: media.encode(d / f"tone.{ext}", TONE) for ext in media.FORMATS}
    files["mp4"] = media.video_with_audio(d / "tone.mp4", TONE)
    return files


@pytest.mark.parametrize("ext", list(media.FORMATS) + ["mp4"])
def test_every_format_decodes_to_16k_mono(encoded, ext):
    out = audio.decode(encoded[ext])
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size / 16000 - 6.0) < 0.1, out.size / 16000
    # the tone survives the codec: dominant frequency 440 Hz
    spectrum = np.abs(np.fft.rfft(out[16000:32000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2
    info = audio.probe(encoded[ext])
    assert abs(info.duration - 6.0) < 0.1 and info.has_video == (ext == "mp4")


def test_stereo_44k_for_separation(encoded):
    out = audio.decode(encoded["flac"], sample_rate=44100, channels=2)
    assert out.shape[0] == 2 and abs(out.shape[1] / 44100 - 6.0) < 0.1


def _message(exc):
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and len(text) < 300
    return text


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(EmptyAudioError) as e:
        audio.decode(p)
    assert "is empty (0 bytes)" in _message(e.value)


def test_truncated_mp3(tmp_path, encoded):
    p = media.truncate(encoded["mp3"], tmp_path / "cut.mp3", 0.5)
    with pytest.raises(TruncatedAudioError) as e:
        audio.decode(p)
    assert "truncated" in _message(e.value)
    with pytest.raises(TruncatedAudioError):
        audio.probe(p)


def test_mp3_cut_before_its_first_frame(tmp_path, encoded):
    p = media.truncate(encoded["mp3"], tmp_path / "stub.mp3", 0.002)
    with pytest.raises(AudioDecodeError) as e:
        audio.decode(p)
    _message(e.value)


def test_text_renamed_to_wav(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("these are my meeting notes, not audio\n" * 40)
    with pytest.raises(NotAudioError) as e:
        audio.decode(p)
    assert "not an audio or video file" in _message(e.value)


def test_png_and_zip_are_not_audio(tmp_path):
    import zipfile

    png = tmp_path / "cover.mp3"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    z = tmp_path / "album.wav"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.txt", "hello")
    for p in (png, z):
        with pytest.raises(NotAudioError):
            audio.decode(p)


def test_video_without_audio_track(tmp_path):
    p = media.video_without_audio(tmp_path / "silent_film.mp4")
    with pytest.raises(NotAudioError) as e:
        audio.decode(p)
    assert "no audio track" in _message(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        audio.decode(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="is a directory"):
        audio.decode(tmp_path)


def test_probe_refuses_pure_silence_but_decode_allows_it(tmp_path):
    p = synth.write_wav(tmp_path / "quiet.wav", synth.silence(5))
    with pytest.raises(SilentAudioError, match="only silence"):
        audio.probe(p, require_sound=True)
    assert audio.decode(p).size == 5 * 16000


def test_probe_stops_early_on_normal_audio(encoded):
    info = audio.probe(encoded["wav"], require_sound=True)
    assert info.sample_rate == 16000 and info.channels == 1 and info.codec == "pcm_s16le"


def test_long_decode_holds_one_copy(tmp_path):
    """20 minutes at 16 kHz is 76.8 MB as float32; decoding must not hold several copies."""
    import tracemalloc

    long = media.encode(tmp_path / "long.flac", np.tile(TONE, 200))  # 1200 s
    tracemalloc.start()
    out = audio.decode(long)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.size == 1200 * 16000
    assert peak < 1.25 * out.nbytes, f"peak {peak / 1e6:.0f} MB for {out.nbytes / 1e6:.0f} MB of audio"
