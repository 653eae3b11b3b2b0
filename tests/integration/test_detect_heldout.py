"""The speech/music detector on material its thresholds were not tuned on.

``tests/unit/test_detect.py`` is the development set the thresholds were chosen on. Here:
songs rendered by fluidsynth with a real GM soundfont (not the synthesiser the thresholds
saw), at every voice-to-band ratio from +6 to -12 dB, a real pop song, and speech the
detector never saw: every pytest-audioeval clip on its own, in languages outside the
development set, and long espeak-ng German and Spanish.
"""

import pytest

from engine import audio, detect

pytestmark = pytest.mark.music


@pytest.fixture(scope="module")
def songs(generated_dir):
    from corpus.songs import song_corpus

    return song_corpus(generated_dir / "songs", quick=True)


def test_constructed_songs_are_music(songs):
    wrong = []
    for song in songs:
        decision = detect.classify(audio.decode(song.path))
        if decision.audio_type != "music":
            wrong.append((song.name, song.ratio_db, dict(decision.evidence)))
    assert not wrong, wrong


def test_a_real_pop_song_is_music(tmp_path):
    from corpus.sung import real_sung_excerpt

    decision = detect.classify(audio.decode(real_sung_excerpt(tmp_path)))
    assert decision.audio_type == "music", dict(decision.evidence)


def test_held_out_speech_is_speech(clips, generated_dir):
    from corpus.speech import espeak

    held_out = [c for c in clips if c.language not in ("en", "es", "it")]
    cases = {f"{c.language}/{c.name}": audio.decode(c.path) for c in held_out}
    de = ("Der Zug nach Hamburg fährt um neun Uhr ab. Bitte denken Sie daran, Ihre Fahrkarte vorher zu kaufen, "
          "denn im Zug gibt es keinen Schalter mehr.")
    es = ("El mercado abre los sábados por la mañana. Los agricultores traen frutas, verduras y quesos de los "
          "pueblos cercanos, y la plaza se llena de gente.")
    cases["espeak-de"] = audio.decode(espeak(de, generated_dir / "heldout_de.wav", voice="de"))
    cases["espeak-es"] = audio.decode(espeak(es, generated_dir / "heldout_es.wav", voice="es"))
    wrong = {name: dict(d.evidence) for name, samples in cases.items()
             if (d := detect.classify(samples)).audio_type != "speech"}
    assert len(cases) >= 10
    assert not wrong, wrong
