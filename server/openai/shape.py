"""OpenAI's response bodies, built from a finished job's exports (the same files `/api/v1`
serves), and the Server-Sent Events of a streamed transcription."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..jobfiles import read_export
from ..settings import Settings
from ..store import Job
from .catalog import language_name
from .form import AudioForm


@dataclass(frozen=True)
class Finished:
    """What a finished job's exports hold, read once."""

    transcript: dict  # the JSON export
    texts: dict  # format -> its export's text, for the formats read

    @classmethod
    def read(cls, job: Job, settings: Settings, formats: tuple[str, ...] = ()) -> "Finished":
        """The JSON export and ``formats``' exports, read now (from the blob store, off the
        event loop); FileNotFoundError when they are gone (deleted or expired as we read)."""

        def text(fmt: str) -> str:
            data = read_export(settings, job, fmt)
            if data is None:
                raise FileNotFoundError(f"the {fmt} export is gone")
            return data.decode("utf-8")

        return cls(json.loads(text("json")), {fmt: text(fmt) for fmt in formats})

    def export_text(self, fmt: str) -> str:
        return self.texts[fmt]

    @property
    def text(self) -> str:
        return self.transcript.get("text", "")

    @property
    def duration(self) -> float:
        return float(self.transcript.get("duration") or 0.0)


def usage(duration: float) -> dict:
    """OpenAI bills audio by the second, rounded up; so does this usage block."""
    return {"type": "duration", "seconds": math.ceil(duration)}


def segment(seg: dict) -> dict:
    return {
        "id": seg["id"],
        "seek": seg.get("seek", 0),
        "start": seg["start"],
        "end": seg["end"],
        "text": seg["text"],
        "tokens": seg.get("tokens", []),
        "temperature": seg.get("temperature") or 0.0,
        "avg_logprob": seg["avg_logprob"],
        "compression_ratio": seg["compression_ratio"],
        "no_speech_prob": seg["no_speech_prob"],
    }


def words(segments: list[dict]) -> list[dict]:
    return [{"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
            for s in segments for w in s.get("words", [])]


def verbose(done: Finished, form: AudioForm, task: str) -> dict:
    t = done.transcript
    segments = t.get("segments", [])
    body = {"task": task, "language": language_name("en" if task == "translate" else t.get("language")),
            "duration": done.duration, "text": done.text}
    if form.segments:
        body["segments"] = [segment(s) for s in segments]
    if form.words:
        body["words"] = words(segments)
    body["usage"] = usage(done.duration)
    return body


def response(done: Finished, form: AudioForm, task: str) -> Response:
    fmt = form.response_format
    if fmt == "json":
        return JSONResponse({"text": done.text, "usage": usage(done.duration)})
    if fmt == "verbose_json":
        return JSONResponse(verbose(done, form, task))
    if fmt == "text":
        return PlainTextResponse(done.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(done.export_text("srt"))
    return Response(done.export_text("vtt"), media_type="text/vtt")


# -- Server-Sent Events ----------------------------------------------------------------------


def sse(event: dict) -> bytes:
    return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


def delta(text: str) -> dict:
    return {"type": "transcript.text.delta", "delta": text}


def done_event(done: Finished) -> dict:
    return {"type": "transcript.text.done", "text": done.text, "usage": usage(done.duration)}


def error_event(message: str, type_: str = "server_error", code: str | None = None) -> dict:
    return {"type": "error", "error": {"message": message, "type": type_, "param": None, "code": code}}
