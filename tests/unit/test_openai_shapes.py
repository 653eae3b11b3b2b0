"""/v1 pieces that need no server: model names, form fields, language names, and errors
in OpenAI's shape with the statuses its clients map."""

import json

import pytest

from server.errors import InsufficientCredits, PayloadTooLarge, RateLimited, Unauthorized
from server.openai.catalog import Catalog, language_name
from server.openai.errors import ModelNotFound, error_response
from server.openai.form import parse_form
from server.validation import RequestInvalid


def test_model_names_and_aliases():
    cat = Catalog("tiny.en", ("tiny.en", "base"), 1)
    assert cat.resolve("base") == "base" and cat.resolve(" tiny.en ") == "tiny.en"
    for alias in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-2025-03-20",
                  "gpt-4o-mini-transcribe-2025-12-15", "GPT-4o-Transcribe"):
        assert cat.resolve(alias) == "tiny.en", alias
    for unknown in ("whisper-2", "gpt-4o", "large-v9", "small", ""):
        assert cat.resolve(unknown) is None, unknown
    ids = [m["id"] for m in cat.listing()["data"]]
    assert ids[:2] == ["tiny.en", "base"] and "whisper-1" in ids and cat.listing()["object"] == "list"


def test_language_names_as_openai_gives_them():
    assert language_name("en") == "english" and language_name("fr") == "french" and language_name("zh") == "chinese"
    assert language_name("mi") == "maori" and language_name(None) == "unknown"


def test_form_fields_as_the_sdk_sends_them():
    form = parse_form({"model": "whisper-1", "stream": "true", "temperature": "0.2", "response_format": "",
                       "language": "FR", "unknown_field": "ignored", "timestamp_granularities[]": "segment"},
                      {"timestamp_granularities[]": ["word", "segment"]})
    assert form.stream and form.temperature == 0.2 and form.response_format == "json" and form.language == "fr"
    assert form.words and form.segments
    options = form.job_options(model="tiny.en", task="transcribe")
    assert options["timestamps"] == "required"  # word granularity needs word timings
    assert options["model"] == "tiny.en" and "separator" not in options and options["stream"] is True
    words_only = parse_form({"model": "x"}, {"timestamp_granularities": ["word"]})
    assert words_only.words and not words_only.segments
    plain = parse_form({"model": "x", "timestamps": "none"}, {})
    assert plain.segments and not plain.words and plain.job_options(model="m", task="translate")["timestamps"] == "none"
    # a /v1 job is an ordinary job, exported in every format through /api/v1: it keeps its times
    # even when the response (json, text) shows none
    assert "times_needed" not in parse_form({"model": "x"}, {}).job_options(model="m", task="transcribe")


@pytest.mark.parametrize("fields, param", [
    ({}, "model"),
    ({"model": "x", "response_format": "mp3"}, "response_format"),
    ({"model": "x", "temperature": "2"}, "temperature"),
    ({"model": "x", "language": "klingon"}, "language"),
    ({"model": "x", "audio_type": "podcast"}, "audio_type"),
    ({"model": "x", "separator": "demucs"}, "separator"),
    ({"model": "x", "stream": "perhaps"}, "stream"),
])
def test_bad_fields_are_400s_naming_the_field(fields, param):
    with pytest.raises(RequestInvalid) as exc:
        parse_form(fields, {})
    r = error_response(exc.value)
    body = json.loads(r.body)
    assert r.status_code == 400 and body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"]


def test_errors_map_to_the_statuses_the_sdk_knows():
    cases = [
        (Unauthorized("invalid or revoked token"), 401, "invalid_api_key"),
        (ModelNotFound("large-v9"), 404, "model_not_found"),
        (PayloadTooLarge("too big"), 413, "file_too_large"),
        (RateLimited("slow down", retry_after=7), 429, "rate_limit_exceeded"),
        (InsufficientCredits("no credits", top_up_url="https://x.test/top-up", balance=0, price=1), 429,
         "insufficient_quota"),
        (RuntimeError("boom"), 500, "internal_error"),
    ]
    for exc, status, code in cases:
        r = error_response(exc)
        body = json.loads(r.body)["error"]
        assert r.status_code == status and body["code"] == code, (exc, r.status_code, body)
    assert error_response(RateLimited("x", retry_after=7)).headers["retry-after"] == "7"
    assert error_response(InsufficientCredits("x", top_up_url=None, balance=0, price=1)).headers["x-should-retry"] == "false"
    assert "boom" not in json.loads(error_response(RuntimeError("boom")).body)["error"]["message"]  # no internals
