"""The multipart fields of `/v1/audio/transcriptions` and `/v1/audio/translations`, as
OpenAI's clients send them, plus our extras (the SDK's ``extra_body``). Fields nobody here
knows are ignored, as OpenAI's own clients expect."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..validation import CreateForm, error, parse

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
SEPARATORS = ("auto", "spleeter", "htdemucs")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() == "" else value


class AudioForm(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    model: str = Field(min_length=1)
    language: str | None = None
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    timestamp_granularities: list[Literal["word", "segment"]] = Field(default_factory=list)
    stream: bool = False
    # extras
    audio_type: Literal["auto", "speech", "music"] = "auto"
    vintage: bool = False
    pinyin: bool = False
    timestamps: Literal["auto", "required", "none"] | None = None
    separator: Literal["auto", "spleeter", "htdemucs"] | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return CreateForm._language(value)  # the same codes, the same message as /api/v1

    @field_validator("prompt", "timestamps", "separator", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @property
    def words(self) -> bool:
        return "word" in self.timestamp_granularities

    @property
    def segments(self) -> bool:
        """verbose_json carries segments unless only word timestamps were asked for."""
        return "segment" in self.timestamp_granularities or not self.timestamp_granularities

    def job_options(self, *, model: str, task: str) -> dict:
        """The job's options, in the same vocabulary as `/api/v1` plus what `/v1` adds."""
        timestamps = "required" if self.words else (self.timestamps or "auto")
        return {"pinyin": self.pinyin, "vintage": self.vintage, "timestamps": timestamps, "language": self.language,
                "audio_type": self.audio_type, "model": model, "task": task, "prompt": self.prompt,
                "temperature": self.temperature, "stream": self.stream, "api": "openai",
                **({"separator": self.separator} if self.separator else {})}


def parse_form(fields: dict[str, str], repeated: dict[str, list[str]]) -> AudioForm:
    """Form fields to an AudioForm; a 400 (via RequestInvalid) naming the bad field."""
    data: dict[str, Any] = {k: v for k, v in fields.items() if not k.endswith("[]")}
    granularities = repeated.get("timestamp_granularities[]", []) + repeated.get("timestamp_granularities", [])
    data["timestamp_granularities"] = [g.strip() for g in granularities if g.strip()]
    for key in ("response_format", "audio_type", "temperature", "stream"):
        if key in data and _blank_to_none(data[key]) is None:
            del data[key]  # an empty field means the default
    if "model" not in data:
        raise error(["body", "model"], "you must provide a model parameter (for example whisper-1)", "missing")
    return parse(AudioForm, data, "body")
