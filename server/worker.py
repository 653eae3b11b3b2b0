"""Workers: claim a job with a lease, run the engine, write exports atomically, finish the job.

A worker heartbeats its lease while it works (a separate thread, so a long decode cannot
starve it). If the process dies, the lease runs out and another worker reclaims the job;
the attempt count stops a file that kills its worker every time from looping forever.

Exports are written to a hidden staging directory, fsynced, and renamed into place before
the job is marked done in the same step that checks the lease is still ours, so a job is
done exactly once, with one complete set of exports.

Cancellation is real: DELETE sets a flag; the heartbeat sees it and the pipeline's progress
callback raises ``Cancelled`` at its next checkpoint (between segments or separation
chunks). Graceful shutdown uses the same checkpoint to release the job back to the queue.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from engine.errors import Cancelled, EngineError, InputError, ModelError
from engine.pipeline import PipelineOptions, Resources, run
from engine.transcription import LoadedModel
from engine.types import Segment
from engine.writers import FORMATS, write_files

from .modelcache import ModelCache, weights_bytes
from .settings import Settings
from .store import Job, SQLiteStore

log = logging.getLogger("tft.worker")


class EngineContext:
    """Per-process engine state: models resolved once per name, Whisper models held in a
    cache (idle unload, memory budget) shared by every worker thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str], Resources] = {}
        self.models: ModelCache[LoadedModel] = ModelCache(
            self._load_model, ttl_seconds=settings.model_ttl_seconds, budget_bytes=settings.model_memory_bytes,
            unload=_unload)

    def store(self):
        from models import ModelStore, default_store_dir

        return ModelStore(self.settings.models_dir or default_store_dir())

    def resources(self, model: str | None = None, separator: str | None = None) -> Resources:
        """Models for a job: its Whisper model and separator (default: the server's)."""
        name = model or self.settings.model
        choice = separator or self.settings.separator
        with self._lock:
            if (name, choice) not in self._resources:
                from models import resolve_separator, resolve_whisper

                store = self.store()
                whisper = resolve_whisper(name, store)
                found = resolve_separator(choice, store, demucs_model=self.settings.demucs_model)
                self._resources[(name, choice)] = Resources(
                    whisper_name=whisper.name,
                    whisper_path=whisper.path,
                    separator=found.model,
                    separator_missing=found.missing,
                    cache_dir=self.settings.cache_dir,
                )
            return self._resources[(name, choice)]

    def _load_model(self, name: str) -> tuple[LoadedModel, int]:
        from engine.transcription import load_model

        r = self.resources(name)
        s = self.settings
        loaded = load_model(r.whisper_name, r.whisper_path, device=s.device, compute_type=s.compute_type,
                            cpu_threads=s.cpu_threads, parallel=max(1, s.workers), cached=False)
        return loaded, weights_bytes(r.whisper_path)

    def model(self, name: str | None = None):
        """``with engine.model(name) as model:`` the Whisper model, loaded on first use and
        held until the block ends (the cache may unload it afterwards)."""
        return self.models.use(name or self.settings.model)

    def options_for(self, job: Job) -> PipelineOptions:
        s = self.settings
        o = job.options
        return PipelineOptions(
            language=o.get("language"),
            audio_type=o.get("audio_type") or "auto",
            timestamps=o.get("timestamps", "auto"),
            auto_timestamps=s.default_timestamps,  # type: ignore[arg-type]
            pinyin=bool(o.get("pinyin")),
            vintage=bool(o.get("vintage")),
            device=s.device,
            compute_type=s.compute_type,
            cpu_threads=s.cpu_threads,
            separation="always" if s.force_vocal_separation else "auto",
            separator=o.get("separator") or s.separator,
            max_duration_s=s.max_audio_seconds,
            task=o.get("task") or "transcribe",
            initial_prompt=o.get("prompt") or None,
        )


def _unload(model: LoadedModel) -> None:
    """Free the weights now rather than whenever the last reference goes."""
    unload = getattr(getattr(model.whisper, "model", None), "unload_model", None)
    if unload is not None:
        unload()


def align_job(path: str, lyrics: str, options: PipelineOptions, resources: Resources, **kwargs):
    """A job with a lyric sheet: place its lines instead of transcribing freely (engine.align)."""
    from engine.align import AlignOptions, align
    from engine.lyrics import parse_sheet

    align_options = AlignOptions(language=options.language, separation=options.separation, separator=options.separator,
                                 device=options.device, compute_type=options.compute_type,
                                 cpu_threads=options.cpu_threads, max_duration_s=options.max_duration_s)
    return align(path, parse_sheet(lyrics), align_options, resources, **kwargs)


@dataclass
class _Live:
    stage: str | None = None
    fraction: float = 0.0


def summary(transcript_dict: dict) -> dict:
    """What the job row keeps: everything but the (large) segment lists, which live in the JSON export."""
    keep = {k: v for k, v in transcript_dict.items() if k not in ("segments", "removed", "speech", "text")}
    keep["segment_count"] = len(transcript_dict.get("segments", []))
    keep["removed_rules"] = [r["rule"] for r in transcript_dict.get("removed", [])]
    return keep


def _lower_priority(nice: int) -> None:
    """Run transcription at a lower CPU priority than the API's event loop.

    On Linux, ``setpriority`` on a thread id sets that thread's nice value, and threads it
    creates afterwards (CTranslate2's and torch's compute pools, created on first use)
    inherit it. So while a job runs, status polls are still answered promptly: the
    scheduler prefers the event loop whenever it has work, and gives the idle time to the
    model.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        log.debug("could not lower the worker thread's priority")


class Worker(threading.Thread):
    """One transcription worker thread."""

    poll_seconds = 0.5

    def __init__(self, store: SQLiteStore, settings: Settings, engine: EngineContext, *, name: str | None = None,
                 on_event=None) -> None:
        super().__init__(name=name or f"worker-{uuid.uuid4().hex[:6]}", daemon=True)
        self.store = store
        self.settings = settings
        self.engine = engine
        self.worker_id = f"{os.getpid()}:{self.name}:{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()  # stop claiming new jobs
        self.abandon = threading.Event()  # give the running job back at the next checkpoint
        self.current: str | None = None
        self.on_event = on_event or (lambda *a: None)

    def stop(self, *, abandon: bool = False) -> None:
        self.stopping.set()
        if abandon:
            self.abandon.set()

    def run(self) -> None:
        _lower_priority(self.settings.worker_nice)
        while not self.stopping.is_set():
            self.engine.models.sweep()
            try:
                job = self.store.claim_job(self.worker_id, lease_seconds=self.settings.lease_seconds,
                                           max_attempts=self.settings.max_attempts)
            except Exception:  # a locked or broken database must not kill the thread
                log.exception("could not claim a job")
                self.stopping.wait(2.0)
                continue
            if job is None:
                self.stopping.wait(self.poll_seconds)
                continue
            self.current = job.id
            try:
                self.process(job)
            finally:
                self.current = None

    # -- one job ----------------------------------------------------------------------------

    def process(self, job: Job) -> None:
        started = time.monotonic()
        crash_on = os.environ.get("TFT_FAULT_CRASH_ON")
        if crash_on and crash_on in job.filename:
            # Fault injection for the crash tests: behave like a native library that takes
            # the whole process down on this file (a segfault), with no chance to clean up.
            log.error("TFT_FAULT_CRASH_ON matched %s: killing this process", job.filename)
            os.kill(os.getpid(), 9)
        live = _Live()
        cancelled = threading.Event()
        done = threading.Event()
        interval = min(2.0, self.settings.lease_seconds / 4)

        def heartbeat() -> None:
            while not done.wait(interval):
                try:
                    if not self.store.heartbeat(job.id, self.worker_id, lease_seconds=self.settings.lease_seconds,
                                                stage=live.stage, fraction=live.fraction):
                        cancelled.set()
                        return
                except Exception:
                    log.exception("heartbeat failed for job %s", job.id)

        beat = threading.Thread(target=heartbeat, name=f"heartbeat-{job.id[:8]}", daemon=True)
        beat.start()

        def progress(p) -> None:
            live.stage, live.fraction = p.stage, p.fraction
            if cancelled.is_set():
                raise Cancelled("the job was cancelled")
            if self.abandon.is_set():
                raise Cancelled("the worker is shutting down")

        log.info("job %s: start (attempt %d) %s", job.id, job.attempts, job.filename)
        model_name = job.options.get("model")
        try:
            options = self.engine.options_for(job)
            with self.engine.model(model_name) as model:
                resources = self.engine.resources(model_name, options.separator)
                if job.options.get("lyrics"):
                    transcript = align_job(job.upload_path, job.options["lyrics"], options, resources,
                                           progress=progress, model=model)
                else:
                    transcript = run(job.upload_path, options, resources, progress=progress, model=model,
                                     on_segment=self._publisher(job))
        except Cancelled:
            done.set()
            if cancelled.is_set():
                self.store.acknowledge_cancel(job.id, self.worker_id)
                self._forget_upload(job)
                log.info("job %s: cancelled at a checkpoint", job.id)
                self.on_event("cancelled", job.id)
            else:
                self.store.release_job(job.id, self.worker_id)
                log.info("job %s: released for another worker (shutdown)", job.id)
            return
        except (InputError, ModelError, EngineError) as exc:
            done.set()
            self.store.fail_job(job.id, self.worker_id, code=exc.code, message=str(exc))
            self._forget_upload(job)
            log.info("job %s: error %s: %s", job.id, exc.code, exc)
            self.on_event("error", job.id)
            return
        except Exception as exc:  # a bug: record it for the user without leaking internals
            done.set()
            log.exception("job %s failed unexpectedly", job.id)
            self.store.fail_job(job.id, self.worker_id, code="internal_error",
                                message=f"transcription failed unexpectedly ({type(exc).__name__}); the server log has details")
            self._forget_upload(job)
            self.on_event("error", job.id)
            return
        finally:
            done.set()
            beat.join(timeout=5)
        final = self._write_exports(job, transcript)
        expires = time.time() + self.settings.retention_seconds
        if self.store.complete_job(job.id, self.worker_id, result=summary(transcript.as_dict()),
                                   exports_dir=str(final), expires_at=expires):
            # The upload stays: the web page plays it until the job is deleted or expires.
            log.info("job %s: done in %.1f s (%.1f s of audio)", job.id, time.monotonic() - started, transcript.duration)
            self.on_event("done", job.id)
        else:
            current = self.store.get_job(job.id)
            if current is not None and current.cancel_requested:
                shutil.rmtree(final, ignore_errors=True)
                self.store.acknowledge_cancel(job.id, self.worker_id)
                self._forget_upload(job)
            log.info("job %s: finished but no longer ours (cancelled or reclaimed)", job.id)

    def _publisher(self, job: Job):
        """For streamed (`/v1` stream=true) jobs: each segment, as decoded, into the store,
        where the streaming response (in whichever process) reads it."""
        if not job.options.get("stream"):
            return None
        counter = iter(range(1 << 62))

        def publish(segment: Segment) -> None:
            try:
                self.store.publish_segment(job.id, self.worker_id, next(counter), segment.as_dict())
            except Exception:  # a reader missing a delta must not cost the job
                log.exception("job %s: could not publish a segment", job.id)

        return publish

    def _write_exports(self, job: Job, transcript) -> Path:
        root = self.settings.exports_dir
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".{job.id}.{uuid.uuid4().hex[:8]}.tmp"
        stem = Path(job.filename).stem or "transcript"
        write_files(transcript, staging, stem, FORMATS)
        fd = os.open(staging, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = root / job.id
        if final.exists():  # left by an attempt that crashed between rename and commit
            old = root / f".{job.id}.{uuid.uuid4().hex[:8]}.old"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, final)
        return final

    def _forget_upload(self, job: Job) -> None:
        try:
            Path(job.upload_path).unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove upload %s", job.upload_path)


class WorkerPool:
    """N worker threads in this process; graceful stop with a deadline."""

    def __init__(self, store: SQLiteStore, settings: Settings, engine: EngineContext, count: int) -> None:
        self.workers = [Worker(store, settings, engine, name=f"worker-{i}") for i in range(count)]
        self.settings = settings

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then release them."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + grace
        for w in self.workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self.workers:
            if w.is_alive():
                w.stop(abandon=True)
        for w in self.workers:
            w.join(timeout=30)
