"""JSON bodies the API returns: one function per resource, shared by responses and webhooks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .store import Job, JobStatus, User, Webhook

API = "/api/v1"


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z") if ts else None


def job_body(job: Job, *, formats: tuple[str, ...], now: float) -> dict[str, Any]:
    result = job.result or {}
    done = job.status is JobStatus.DONE
    expired = done and (job.exports_expired or (job.exports_expire_at is not None and job.exports_expire_at <= now))
    stages = result.get("timings", {})
    telemetry = None
    if result:
        telemetry = {
            "model": result.get("model"),
            "device": result.get("device"),
            "compute_type": result.get("compute_type"),
            "seconds_per_stage": stages,
            "seconds_total": round(sum(stages.values()), 3) if stages else None,
            "real_time_factor": result.get("real_time_factor"),
            "audio_type": result.get("audio_type"),
            "separation": result.get("separation"),
            "timestamps": result.get("timestamps"),
            "segments": result.get("segment_count"),
            "removed_segments": len(result.get("removed_rules", [])),
        }
    links = {"self": f"{API}/transcriptions/{job.id}"}
    if done and not expired:
        links["segments"] = f"{API}/transcriptions/{job.id}/segments"
        links["exports"] = {f: f"{API}/transcriptions/{job.id}/export?format={f}" for f in formats}
    return {
        "job_id": job.id,
        "status": job.status.value,
        "filename": job.filename,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "options": job.options,
        "progress": {
            "stage": job.progress_stage or ("queued" if job.status is JobStatus.PENDING else job.status.value),
            "fraction": round(1.0 if done else job.progress_fraction, 4),
        },
        "attempts": job.attempts,
        "audio_duration": result.get("duration", job.audio_duration),
        "language": result.get("language"),
        "language_probability": result.get("language_probability"),
        "telemetry": telemetry,
        "error": {"code": job.error_code, "message": job.error_message} if job.status is JobStatus.ERROR else None,
        "credits": {"quoted": job.credits_quoted, "charged": job.credits_charged},
        "credits_quoted": job.credits_quoted,
        "exports": {
            "formats": list(formats) if done and not expired else [],
            "expires_at": iso(job.exports_expire_at) if done else None,
            "expired": bool(expired),
        },
        "links": links,
    }


def created_body(job: Job) -> dict[str, Any]:
    return {"job_id": job.id, "status": job.status.value, "credits_quoted": job.credits_quoted}


def user_body(user: User, *, top_up_url: str | None, counts: dict[str, int], price: int) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "name": user.name,
        "credits": user.credits,
        "credit_balance": user.credits,
        "unlimited": user.unlimited,
        "credits_per_job": price,
        "top_up_url": top_up_url,
        "created_at": iso(user.created_at),
        "jobs": {s: counts.get(s, 0) for s in ("pending", "processing", "done", "error")},
    }


def webhook_body(hook: Webhook, *, include_secret: bool = False) -> dict[str, Any]:
    body = {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "created_at": iso(hook.created_at),
        "secret_preview": hook.secret[:8] + "…",
        "active": hook.disabled_at is None,
        "disabled": hook.disabled_at is not None,
        "disabled_at": iso(hook.disabled_at),
        "disabled_reason": hook.disabled_reason,
        "failing_since": iso(hook.failing_since),
    }
    if include_secret:
        body["secret"] = hook.secret
    return body
