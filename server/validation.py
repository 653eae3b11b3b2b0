"""Request validation with pydantic, answering in the contract's (FastAPI's) 422 shape:
``{"detail": [{"type", "loc", "msg", "input", "ctx"?}]}``."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.transcription import known_language_codes

EXPORT_FORMATS = ("txt", "srt", "lrc", "json", "vtt", "lrc_plain")
STATUSES = ("pending", "processing", "done", "error")
EVENTS = ("job.done", "job.error")


class RequestInvalid(Exception):
    """Carries ready-made 422 ``detail`` items."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail


MAX_ECHO = 1000  # characters of the offending input echoed back in a 422


def _jsonable(value: Any) -> Any:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return str(value)[:MAX_ECHO] if not isinstance(value, (dict, list)) else "(not shown)"
    return value if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def detail_from(exc: ValidationError, location: str) -> list[dict[str, Any]]:
    items = []
    for err in exc.errors(include_url=False):
        item = {"type": err["type"], "loc": [location, *err["loc"]], "msg": err["msg"], "input": _jsonable(err.get("input"))}
        if err.get("ctx"):
            item["ctx"] = {k: _jsonable(v) for k, v in err["ctx"].items()}
        items.append(item)
    return items


def error(location: list[str | int], msg: str, type_: str = "value_error", value: Any = None) -> RequestInvalid:
    return RequestInvalid([{"type": type_, "loc": location, "msg": msg, "input": _jsonable(value)}])


def parse(model: type[BaseModel], data: dict[str, Any], location: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid(detail_from(exc, location)) from None


class CreateForm(BaseModel):
    """The multipart fields of POST /api/v1/transcriptions (besides the file)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    pinyin: bool = False
    vintage: bool = False
    timestamps: Literal["auto", "required", "none"] = "auto"
    language: str | None = None
    audio_type: Literal["auto", "speech", "music"] | None = None
    separator: Literal["auto", "spleeter", "htdemucs"] | None = None
    lyrics: str | None = None  # local extension: the song's lyric sheet makes the job an alignment

    @field_validator("lyrics", mode="before")
    @classmethod
    def _lyrics(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if isinstance(value, str):
            from engine.errors import InvalidLyricsError
            from engine.lyrics import parse_sheet

            try:
                parse_sheet(value)
            except InvalidLyricsError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if not isinstance(value, str):
            return value
        code = value.strip().lower()
        if code not in known_language_codes():
            raise ValueError(f"'{value}' is not a language code Whisper knows; use an ISO 639-1 code such as en, fr or zh")
        return code

    @field_validator("audio_type", "timestamps", "separator", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=200)
    status: Literal["pending", "processing", "done", "error"] | None = None


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["txt", "srt", "lrc", "json", "vtt", "lrc_plain"]


class RegisterWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, max_length=2048)
    events: list[Literal["job.done", "job.error"]] = Field(default_factory=lambda: ["job.done"], min_length=1)
