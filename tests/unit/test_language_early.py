"""A language an English-only model cannot transcribe is refused before anything runs: no
file is read, no model loads, no separation starts (on a long song with htdemucs, minutes)."""

import pytest

from engine.errors import InputError, UnsupportedLanguageError
from engine.pipeline import PipelineOptions, Resources, run


def test_french_with_tiny_en_fails_before_any_stage(tmp_path):
    stages = []
    missing = tmp_path / "never-read.mp3"  # not there: reading it would raise another error
    with pytest.raises(UnsupportedLanguageError, match="English-only"):
        run(missing, PipelineOptions(language="fr", audio_type="music"), Resources("tiny.en", str(tmp_path / "none")),
            progress=lambda p: stages.append(p.stage))
    assert stages == []


@pytest.mark.parametrize("model, language", [("base", "fr"), ("tiny.en", "en"), ("tiny.en", None)])
def test_what_the_model_can_transcribe_gets_past_the_check(tmp_path, model, language):
    with pytest.raises(InputError, match="'missing.wav' does not exist"):  # as far as reading the file
        run(tmp_path / "missing.wav", PipelineOptions(language=language), Resources(model, str(tmp_path / "none")))
