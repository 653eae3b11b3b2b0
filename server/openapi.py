"""Our OpenAPI document: the seed contract, unchanged where it speaks, plus real response
schemas, the error responses this server gives, and the ``vtt`` export format.

``/api/v1/openapi.json`` serves it; the seed itself ships beside this module
(``textfromtrack-openapi.json``) and the tests fuzz both.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources

SEED_FILE = "textfromtrack-openapi.json"


@lru_cache(maxsize=1)
def seed() -> dict:
    return json.loads(resources.files("server").joinpath(SEED_FILE).read_text(encoding="utf-8"))


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "Successful Response") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NULLABLE_STR = {"anyOf": [{"type": "string"}, {"type": "null"}]}
NULLABLE_NUM = {"anyOf": [{"type": "number"}, {"type": "null"}]}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "additionalProperties": True,
    },
    "JobCreated": {
        "type": "object",
        "required": ["job_id", "status", "credits_quoted"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending"]},
            "credits_quoted": {"type": "integer", "minimum": 0},
        },
    },
    "Word": {
        "type": "object",
        "required": ["start", "end", "word", "probability"],
        "properties": {"start": {"type": "number"}, "end": {"type": "number"}, "word": {"type": "string"},
                       "probability": {"type": "number"}, "pinyin": {"type": "string"}},
    },
    "Segment": {
        "type": "object",
        "required": ["id", "start", "end", "text", "words"],
        "properties": {
            "id": {"type": "integer"}, "start": {"type": "number"}, "end": {"type": "number"},
            "text": {"type": "string"}, "words": {"type": "array", "items": _ref("Word")},
            "avg_logprob": {"type": "number"}, "no_speech_prob": {"type": "number"},
            "compression_ratio": {"type": "number"}, "pinyin": {"type": "string"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["job_id", "status", "filename", "created_at", "options", "progress", "credits", "exports"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending", "processing", "done", "error"]},
            "filename": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "started_at": NULLABLE_STR,
            "finished_at": NULLABLE_STR,
            "options": {"type": "object"},
            "progress": {"type": "object", "required": ["stage", "fraction"],
                         "properties": {"stage": {"type": "string"}, "fraction": {"type": "number", "minimum": 0, "maximum": 1}}},
            "attempts": {"type": "integer"},
            "audio_duration": NULLABLE_NUM,
            "language": NULLABLE_STR,
            "language_probability": NULLABLE_NUM,
            "telemetry": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "error": {"anyOf": [{"type": "object", "required": ["code", "message"],
                                 "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                                {"type": "null"}]},
            "credits": {"type": "object", "properties": {"quoted": {"type": "integer"}, "charged": {"type": "integer"}}},
            "credits_quoted": {"type": "integer"},
            "exports": {"type": "object", "properties": {
                "formats": {"type": "array", "items": {"type": "string"}},
                "expires_at": NULLABLE_STR, "expired": {"type": "boolean"}}},
            "links": {"type": "object"},
        },
    },
    "JobList": {
        "type": "object",
        "required": ["items", "page", "per_page", "total"],
        "properties": {"items": {"type": "array", "items": _ref("Job")}, "page": {"type": "integer"},
                       "per_page": {"type": "integer"}, "total": {"type": "integer"}},
    },
    "Deleted": {
        "type": "object",
        "required": ["job_id", "status"],
        "properties": {"job_id": {"type": "string"}, "status": {"type": "string", "enum": ["cancelled", "deleted"]},
                       "credits_refunded": {"type": "integer"}},
    },
    "Segments": {
        "type": "object",
        "required": ["job_id", "segments"],
        "properties": {"job_id": {"type": "string"}, "language": NULLABLE_STR, "duration": {"type": "number"},
                       "segments": {"type": "array", "items": _ref("Segment")}},
    },
    "Me": {
        "type": "object",
        "required": ["user_id", "name", "credits", "unlimited", "top_up_url"],
        "properties": {"user_id": {"type": "string"}, "name": {"type": "string"},
                       "credits": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                       "credit_balance": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                       "unlimited": {"type": "boolean"}, "credits_per_job": {"type": "integer"},
                       "top_up_url": NULLABLE_STR, "created_at": {"type": "string"}, "jobs": {"type": "object"}},
    },
    "Capabilities": {
        "type": "object",
        "required": ["api_version", "formats", "timestamps", "audio_types", "features"],
        "properties": {
            "api_version": {"type": "string"}, "models": {"type": "object"},
            "languages": {"type": "array", "items": {"type": "string"}},
            "formats": {"type": "array", "items": {"type": "string"}},
            "timestamps": {"type": "array", "items": {"type": "string"}},
            "audio_types": {"type": "array", "items": {"type": "string"}},
            "separation": {"type": "object"}, "device": {"type": "object"},
            "max_upload_bytes": {"type": "integer"}, "max_audio_seconds": {"type": "number"},
            "features": {"type": "object"},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "created_at", "secret_preview", "active"],
        "properties": {"id": {"type": "string"}, "url": {"type": "string"},
                       "events": {"type": "array", "items": {"type": "string", "enum": ["job.done", "job.error"]}},
                       "created_at": {"type": "string"}, "secret_preview": {"type": "string"},
                       "secret": {"type": "string"}, "active": {"type": "boolean"}, "disabled": {"type": "boolean"},
                       "disabled_at": NULLABLE_STR, "disabled_reason": NULLABLE_STR, "failing_since": NULLABLE_STR},
    },
    "WebhookList": {"type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array", "items": _ref("Webhook")}}},
}

ERRORS = {
    "401": "Missing, malformed, invalid or revoked token (with WWW-Authenticate: Bearer)",
    "404": "No such job or webhook for this user",
    "429": "Too many failed authentication attempts (with Retry-After)",
}


def document(*, server_url: str | None = None) -> dict:
    doc = copy.deepcopy(seed())
    doc["info"]["title"] = "TextFromTrack API (local, offline)"
    doc["info"]["description"] = (doc["info"].get("description", "") + " This document describes a local, offline "
                                  "implementation: a superset of the public contract with response schemas, error "
                                  "responses and the vtt export format.")
    doc["servers"] = [{"url": server_url or "/", "description": "this server"}]
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(SCHEMAS)
    schemes = components.setdefault("securitySchemes", {})
    schemes["HTTPBearer"] = {"type": "http", "scheme": "bearer", "bearerFormat": "tft_pat_*"}
    paths = doc["paths"]
    error = _json(_ref("Error"), "Error")

    def respond(path: str, method: str, code: str, body: dict) -> None:
        paths[path][method].setdefault("responses", {})[code] = body

    base = "/api/v1/transcriptions"
    respond(base, "post", "201", _json(_ref("JobCreated")))
    for code, what in (("402", "Insufficient credits (body carries top_up_url)"), ("408", "Upload stalled"),
                       ("413", "Upload larger than the server accepts")):
        respond(base, "post", code, _json(_ref("Error"), what))
    respond(base, "get", "200", _json(_ref("JobList")))
    respond(f"{base}/{{job_id}}", "get", "200", _json(_ref("Job")))
    respond(f"{base}/{{job_id}}", "delete", "200", _json(_ref("Deleted")))
    respond(f"{base}/{{job_id}}/segments", "get", "200", _json(_ref("Segments")))
    for code, what in (("409", "The job is not done yet"), ("410", "Exports expired after the retention period")):
        respond(f"{base}/{{job_id}}/segments", "get", code, _json(_ref("Error"), what))
        respond(f"{base}/{{job_id}}/export", "get", code, _json(_ref("Error"), what))
    export = paths[f"{base}/{{job_id}}/export"]["get"]
    export["responses"]["200"] = {
        "description": "The export file, as an attachment",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
    for param in export.get("parameters", []):
        if param["name"] == "format":
            param["schema"] = {"type": "string", "enum": ["txt", "srt", "lrc", "json", "vtt", "lrc_plain"],
                               "title": "Format",
                               "description": "One of: txt, srt, lrc, json; vtt and lrc_plain are local additions. "
                                              "lrc is enhanced (a <mm:ss.xx> tag before every word) when word "
                                              "timings exist; lrc_plain is always one [mm:ss.xx] line per line"}
    _audio(paths, components["schemas"])
    _links(paths)
    _tighten(doc)
    _lyrics(components["schemas"])
    respond("/api/v1/me", "get", "200", _json(_ref("Me")))
    respond("/api/v1/capabilities", "get", "200", _json(_ref("Capabilities")))
    respond("/api/v1/webhooks", "get", "200", _json(_ref("WebhookList")))
    respond("/api/v1/webhooks", "post", "201", _json(_ref("Webhook"), "Registered; the secret is shown only here"))
    for code, what in (("409", "The user already has the most webhooks this server keeps (TFT_MAX_WEBHOOKS_PER_USER)"),
                       ("413", "Request body larger than 16 KB")):
        respond("/api/v1/webhooks", "post", code, _json(_ref("Error"), what))
    for path, item in paths.items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            for code, what in ERRORS.items():
                if code == "404" and "{" not in path:
                    continue
                responses.setdefault(code, {**error, "description": what})
            if method in ("post",) or op.get("parameters"):
                responses.setdefault("422", _json({"$ref": "#/components/schemas/HTTPValidationError"}, "Validation Error"))
    return doc


AUDIO_TYPES = ["audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/mp4", "audio/webm", "audio/aac",
               "audio/aiff", "audio/x-caf", "application/octet-stream"]


def _audio(paths: dict, schemas: dict) -> None:
    """The original-audio routes the web page uses (server/web.py): local extensions."""
    base = "/api/v1/transcriptions/{job_id}"
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid",
                                                                          "title": "Job Id"}}
    gone = _json(_ref("Error"), "The job's retention ended, it ended in error or was cancelled: its audio is not kept")
    binary = {"schema": {"type": "string", "format": "binary"}}
    schemas["AudioLink"] = {
        "type": "object", "required": ["url", "expires", "signature", "expires_at"],
        "properties": {"url": {"type": "string", "description": "Server-rooted path of the audio with the signed query"},
                       "expires": {"type": "integer"}, "signature": {"type": "string"},
                       "expires_at": {"type": "string", "format": "date-time"}},
    }
    paths[f"{base}/audio"] = {"get": {
        "tags": ["local"], "x-tft-extension": True,
        "summary": "Get the original audio",
        "description": "The file as uploaded, while the job is kept (until it is deleted or its retention ends). "
                       "Supports HTTP Range requests (206 Partial Content), so players stream and seek. "
                       "Authenticate with the Bearer token, or with the expires and signature query "
                       "parameters of a link from POST .../audio/link (for <audio src>, which cannot send headers).",
        "operationId": "get_transcription_audio_api_v1_transcriptions__job_id__audio_get",
        "security": [{"HTTPBearer": []}, {}],
        "parameters": [job_id,
                       {"name": "expires", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 0, "title": "Expires"},
                        "description": "From an audio link: when it stops working (Unix seconds)"},
                       {"name": "signature", "in": "query", "required": False,
                        "schema": {"type": "string", "title": "Signature"},
                        "description": "From an audio link: its HMAC signature"}],
        "responses": {"200": {"description": "The whole file", "content": {t: binary for t in AUDIO_TYPES}},
                      "206": {"description": "The requested byte range", "content": {t: binary for t in AUDIO_TYPES}},
                      "410": gone,
                      "416": _json(_ref("Error"), "The requested range is outside the file")},
    }}
    paths[f"{base}/audio/link"] = {"post": {
        "tags": ["local"], "x-tft-extension": True,
        "summary": "Issue a short-lived link to the original audio",
        "description": "A URL for <audio src> that carries a signature instead of the token: valid for this "
                       "job's audio only, for at most six hours and never past the job's retention.",
        "operationId": "create_transcription_audio_link_api_v1_transcriptions__job_id__audio_link_post",
        "security": [{"HTTPBearer": []}],
        "parameters": [job_id],
        "responses": {"201": _json(_ref("AudioLink"), "The signed link"), "410": gone},
    }}


def _links(paths: dict) -> None:
    """OpenAPI links, so stateful clients (and fuzzers) can follow ids from one call to the next."""
    base = "/api/v1/transcriptions"
    by_id = {
        "GetTranscription": "get_transcription_api_v1_transcriptions__job_id__get",
        "GetSegments": "get_transcription_segments_api_v1_transcriptions__job_id__segments_get",
        "GetExport": "get_transcription_export_api_v1_transcriptions__job_id__export_get",
        "DeleteTranscription": "delete_transcription_api_v1_transcriptions__job_id__delete",
        "GetAudio": "get_transcription_audio_api_v1_transcriptions__job_id__audio_get",
        "CreateAudioLink": "create_transcription_audio_link_api_v1_transcriptions__job_id__audio_link_post",
    }
    created = {name: {"operationId": op, "parameters": {"job_id": "$response.body#/job_id"}} for name, op in by_id.items()}
    listed = {name: {"operationId": op, "parameters": {"job_id": "$response.body#/items/0/job_id"}}
              for name, op in by_id.items()}
    paths[base]["post"]["responses"]["201"]["links"] = created
    paths[base]["get"]["responses"]["200"]["links"] = listed
    paths["/api/v1/webhooks"]["post"]["responses"]["201"]["links"] = {
        "DeleteWebhook": {"operationId": "delete_webhook_endpoint_api_v1_webhooks__hook_id__delete",
                          "parameters": {"hook_id": "$response.body#/id"}}}


def _tighten(doc: dict) -> None:
    """Request schemas as this server validates them (the seed leaves them loose)."""
    schemas = doc["components"]["schemas"]
    body = schemas["Body_create_transcription_api_v1_transcriptions_post"]["properties"]
    body["timestamps"] = {"type": "string", "enum": ["auto", "required", "none"], "default": "auto", "title": "Timestamps"}
    body["audio_type"] = {"anyOf": [{"type": "string", "enum": ["auto", "speech", "music"]}, {"type": "null"}],
                          "title": "Audio Type", "description": body["audio_type"].get("description", "")}
    hook = schemas["RegisterWebhookRequest"]["properties"]
    hook["url"] = {"type": "string", "format": "uri", "pattern": "^https?://", "minLength": 8, "maxLength": 2048,
                   "title": "Url", "examples": ["https://hooks.example.com/tft"]}
    hook["events"] = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["job.done", "job.error"]},
                      "default": ["job.done"], "title": "Events"}
    for item in doc["paths"]["/api/v1/transcriptions"]["get"]["parameters"]:
        if item["name"] == "status":
            item["schema"] = {"anyOf": [{"type": "string", "enum": ["pending", "processing", "done", "error"]},
                                        {"type": "null"}], "title": "Status", "description": item["schema"].get("description", "")}


def _lyrics(schemas: dict) -> None:
    """The ``lyrics`` form field: a local extension; without it a job is what the contract says."""
    body = schemas["Body_create_transcription_api_v1_transcriptions_post"]["properties"]
    body["lyrics"] = {
        "anyOf": [{"type": "string", "maxLength": 65536}, {"type": "null"}], "title": "Lyrics", "x-tft-extension": True,
        "description": "Local extension. The song's lyric sheet (plain text, one sung line per line, blank lines "
                       "between stanzas; [mm:ss.xx] tags count as hints). The job then aligns these lines instead "
                       "of transcribing: every export holds the sheet's lines with their times (lrc word by word), "
                       "and the json export lists every line under 'lines' with status 'matched' or 'unmatched' "
                       "(a line not found in the audio keeps no time)."}
