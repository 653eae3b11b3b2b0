"""Workers: claim a job under a fresh attempt token, run the engine, publish the exports
only while the attempt still holds the job, finish the job.

A worker heartbeats its lease while it works (``lease.Lease``, a separate thread, so a long
decode cannot starve it). If the process dies, the lease runs out and another worker
reclaims the job under a new token; the attempt count stops a file that kills its worker
every time from looping forever. A worker whose lease was lost stops at its next checkpoint
and touches none of the job's files: they belong to the new attempt.

The upload comes from the blob store (read in place on a directory, fetched into this node's
scratch space from S3: a worker needs nothing from the API node's disk). Exports are
written as one set under a prefix unique to the attempt (``jobfiles.publish_exports``) and
published by ``complete_job``, which checks the token in the same transaction that marks the
job done: a job is done exactly once, with one complete set of exports, and a stale attempt
can never replace them. Stored names never come from the client's filename.

A worker survives anything a job throws at it: an error in the engine fails that job (with
a refund) and the worker claims the next. Only what escapes on purpose (``SystemExit``)
ends the thread, which the supervisor notices (``supervisor.py``).

Cancellation is real: DELETE sets a flag; the heartbeat sees it and the pipeline's progress
callback raises ``Cancelled`` at its next checkpoint (between segments or separation
chunks). Graceful shutdown uses the same checkpoint to release the job back to the queue.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from engine.errors import Cancelled, EngineError
from engine.pipeline import PipelineOptions, Resources, run
from engine.transcription import LoadedModel
from engine.types import Segment
from engine.writers import FORMATS, write_files

from . import jobfiles
from .blobs import BlobError, BlobNotFound, blob_store
from .filenames import EXPORT_STEM
from .janitor import purge
from .lease import Lease
from .modelcache import ModelCache, weights_bytes
from .settings import Settings
from .stems import cache_ref, shared_stems
from .store import Job, JobStore, LeaseState
from .supervisor import ServiceThread, Supervisor

log = logging.getLogger("tft.worker")

STORAGE_RETRY_SECONDS = 5.0  # a worker that cannot fetch an upload waits this long before giving the job back

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

    def model_store(self):
        from models import ModelStore, default_store_dir

        return ModelStore(self.settings.models_dir or default_store_dir())

    def resources(self, model: str | None = None, separator: str | None = None) -> Resources:
        """Models for a job: its Whisper model and separator (default: the server's)."""
        name = model or self.settings.model
        choice = separator or self.settings.separator
        with self._lock:
            if (name, choice) not in self._resources:
                from models import resolve_separator, resolve_whisper

                store = self.model_store()
                whisper = resolve_whisper(name, store)
                found = resolve_separator(choice, store, demucs_model=self.settings.demucs_model)
                self._resources[(name, choice)] = Resources(
                    whisper_name=whisper.name,
                    whisper_path=whisper.path,
                    separator=found.model,
                    separator_missing=found.missing,
                    cache_dir=self.settings.cache_dir,
                    shared_stems=shared_stems(self.settings),
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




def _cache_files(transcript) -> list[str]:
    """The stem-cache file the pipeline used, as it records it in the transcript's options."""
    extra = (transcript.options or {}).get("extra") or {}
    separation = extra.get("separation") if isinstance(extra, dict) else None
    cache_file = separation.get("cache_file") if isinstance(separation, dict) else None
    return [str(cache_file)] if isinstance(cache_file, str) and cache_file else []


def _inject_faults(job: Job) -> None:
    """Testing only (the crash and hostile-input tests): behave like a native library that
    takes the whole process down on this file (a segfault), or that ends the thread."""
    crash_on = os.environ.get("TFT_FAULT_CRASH_ON")
    if crash_on and crash_on in job.filename:
        log.error("TFT_FAULT_CRASH_ON matched %s: killing this process", job.filename)
        os.kill(os.getpid(), 9)
    exit_on = os.environ.get("TFT_FAULT_EXIT_THREAD_ON")
    if exit_on and exit_on in job.filename:
        raise SystemExit(f"TFT_FAULT_EXIT_THREAD_ON matched {job.filename!r}")


class Worker(ServiceThread):
    """One transcription worker thread."""

    poll_seconds = 0.5

    def __init__(self, store: JobStore, settings: Settings, engine: EngineContext, *, name: str,
                 on_event=None) -> None:
        super().__init__(name)
        self.store = store
        self.settings = settings
        self.engine = engine
        self.worker_id = f"{os.getpid()}:{self.name}:{os.urandom(4).hex()}"
        self.abandon = threading.Event()  # give the running job back at the next checkpoint
        self.current: str | None = None
        self.on_event = on_event or (lambda *a: None)

    def stop(self, *, abandon: bool = False) -> None:
        self.stopping.set()
        if abandon:
            self.abandon.set()

    def serve(self) -> None:
        _lower_priority(self.settings.worker_nice)
        while not self.stopping.is_set():
            self.engine.models.sweep()
            signal = self.store.work_generation()  # read before claiming: a job queued meanwhile wakes us
            try:
                job = self.store.claim_job(self.worker_id, lease_seconds=self.settings.lease_seconds,
                                           max_attempts=self.settings.max_attempts)
            except Exception:  # a locked or broken database must not kill the thread
                log.exception("could not claim a job")
                self.stopping.wait(2.0)
                continue
            if job is None:
                self._idle(signal)
                continue
            self.current = job.id
            try:
                self.process(job)
            except Exception:  # even recording the outcome failed: the lease runs out, the job is retried
                log.exception("job %s: could not record its outcome; it will be retried when its lease expires", job.id)
            finally:
                self.current = None

    def _idle(self, signal: int) -> None:
        """Wait for work: woken as soon as the store hears of a claimable job, claiming again
        at least every ``idle_poll_seconds`` (a lease that ran out announces nothing), and
        looking at ``stopping`` every ``poll_seconds``."""
        deadline = time.monotonic() + getattr(self.store, "idle_poll_seconds", self.poll_seconds)
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self.store.wait_for_work(signal, min(left, self.poll_seconds)) != signal:
                return

    # -- one attempt -----------------------------------------------------------------------

    def process(self, job: Job) -> None:
        _inject_faults(job)
        lease = Lease(self.store, job, lease_seconds=self.settings.lease_seconds, abandon=self.abandon)
        try:
            self._attempt(job, lease)
        finally:
            lease.stop()

    def _attempt(self, job: Job, lease: Lease) -> None:
        started = time.monotonic()
        log.info("job %s: start (attempt %d) %s", job.id, job.attempts, job.filename)
        with ExitStack() as stack:
            try:
                upload = stack.enter_context(jobfiles.local_upload(self.settings, job, lease.token))
            except BlobNotFound as exc:
                log.warning("job %s: %s", job.id, exc)
                self._failed(job, lease, "upload_missing", f"the uploaded file '{job.filename}' is no longer in "
                             "storage; submit it again")
                return
            except BlobError as exc:  # storage unreachable: the job waits in the queue, not lost
                log.warning("job %s: could not fetch its upload (%s); giving it back to the queue", job.id, exc)
                self.stopping.wait(STORAGE_RETRY_SECONDS)
                self.store.release_job(job.id, lease.token)
                return
            self._run(job, lease, upload, started)

    def _run(self, job: Job, lease: Lease, upload: Path, started: float) -> None:
        model_name = job.options.get("model")
        try:
            options = self.engine.options_for(job)
            with self.engine.model(model_name) as model:
                resources = self.engine.resources(model_name, options.separator)
                if job.options.get("lyrics"):
                    transcript = align_job(str(upload), job.options["lyrics"], options, resources,
                                           progress=lease.checkpoint, model=model)
                else:
                    transcript = run(str(upload), options, resources, progress=lease.checkpoint, model=model,
                                     on_segment=self._publisher(job, lease))
        except Cancelled:
            self._stopped(job, lease)
            return
        except EngineError as exc:
            self._failed(job, lease, exc.code, self._for_user(job, upload, str(exc)))
            return
        except Exception as exc:  # a bug, or a library failing on this file: the job fails, the worker goes on
            log.exception("job %s failed unexpectedly in stage %s", job.id, lease.stage)
            if lease.stage in (None, "decode"):
                code, message = "undecodable_audio", (f"'{job.filename}' could not be decoded as audio "
                                                      f"({type(exc).__name__}); it may be damaged or use an unusual format")
            else:
                code, message = "internal_error", (f"transcription failed unexpectedly ({type(exc).__name__}); "
                                                   "the server log has details")
            self._failed(job, lease, code, message)
            return
        try:
            self._publish(job, lease, transcript, started)
        except BlobError as exc:
            log.warning("job %s: the exports could not be stored: %s", job.id, exc)
            self._failed(job, lease, "storage_unavailable", "the transcription finished but its exports could not be "
                         "stored (the file storage did not answer); submit it again")
        except Exception as exc:
            log.exception("job %s: the transcript could not be saved", job.id)
            self._failed(job, lease, "internal_error", f"the transcription finished but its exports could not be "
                         f"saved ({type(exc).__name__}); the server log has details")

    def _publisher(self, job: Job, lease: Lease):
        """For streamed (`/v1` stream=true) jobs: each segment, as decoded, into the store,
        where the streaming response (in whichever process) reads it; only while this
        attempt holds the job."""
        if not job.options.get("stream"):
            return None
        counter = iter(range(1 << 62))

        def publish(segment: Segment) -> None:
            try:
                self.store.publish_segment(job.id, lease.token, next(counter), segment.as_dict())
            except Exception:  # a reader missing a delta must not cost the job
                log.exception("job %s: could not publish a segment", job.id)

        return publish

    def _for_user(self, job: Job, upload: Path, message: str) -> str:
        """Engine messages name the stored file; the user knows it by the name they uploaded."""
        return message.replace(f"'{upload.name}'", f"'{job.filename}'")

    def _stopped(self, job: Job, lease: Lease) -> None:
        """The pipeline stopped at a checkpoint: cancelled, lease lost, or shutting down."""
        if lease.state is LeaseState.LOST:
            log.warning("job %s: lease lost (another worker holds the job now); stopped without touching its files",
                        job.id)
            return
        if lease.state is LeaseState.CANCELLED:
            self.store.acknowledge_cancel(job.id, lease.token)
            purge(self.store, self.settings, job)
            log.info("job %s: cancelled at a checkpoint", job.id)
            self.on_event("cancelled", job.id)
            return
        state = self.store.release_job(job.id, lease.token)
        if state is LeaseState.CANCELLED:
            purge(self.store, self.settings, job)
        log.info("job %s: %s", job.id, {LeaseState.HELD: "released for another worker (shutdown)",
                                        LeaseState.CANCELLED: "cancelled while the worker was shutting down",
                                        LeaseState.LOST: "lease lost during shutdown"}[state])

    def _failed(self, job: Job, lease: Lease, code: str, message: str) -> None:
        state = self.store.fail_job(job.id, lease.token, code=code, message=message)
        if state is LeaseState.LOST:
            log.warning("job %s: failed (%s) after its lease was lost; the job's files are left to its new owner",
                        job.id, code)
            return
        purge(self.store, self.settings, job)  # a failed or cancelled job keeps nothing
        if state is LeaseState.HELD:
            log.info("job %s: error %s: %s", job.id, code, message)
            self.on_event("error", job.id)
        else:
            log.info("job %s: cancelled (it failed after the cancellation: %s)", job.id, code)
            self.on_event("cancelled", job.id)

    def _publish(self, job: Job, lease: Lease, transcript, started: float) -> None:
        if not lease.held:
            self._stopped(job, lease)
            return
        final = jobfiles.publish_exports(self.settings, job, lease.token,
                                         lambda directory: write_files(transcript, directory, EXPORT_STEM, FORMATS))
        cache_files = [cache_ref(self.settings, f) for f in _cache_files(transcript)]
        state = self.store.complete_job(job.id, lease.token, result=summary(transcript.as_dict()),
                                        exports_dir=final, expires_at=time.time() + self.settings.retention_seconds,
                                        cache_files=cache_files)
        if state is LeaseState.HELD:
            log.info("job %s: done in %.1f s (%.1f s of audio)", job.id, time.monotonic() - started, transcript.duration)
            self.on_event("done", job.id)
            return
        own = jobfiles.exports_prefix(job.id, lease.token) + "/"  # this attempt's set: nobody else's files
        blob_store(self.settings).delete_prefix(own)
        if state is LeaseState.CANCELLED:
            self.store.acknowledge_cancel(job.id, lease.token)
            purge(self.store, self.settings, job, extra_cache=cache_files)
            log.info("job %s: finished, but it was cancelled meanwhile; its files are removed", job.id)
        else:
            log.warning("job %s: finished, but another worker holds the job now; its result is dropped", job.id)


class WorkerPool:
    """N supervised worker threads in this process; graceful stop with a deadline."""

    def __init__(self, supervisor: Supervisor, store: JobStore, settings: Settings, engine: EngineContext,
                 count: int) -> None:
        self.supervisor, self.store, self.settings, self.engine = supervisor, store, settings, engine
        self.names = [f"worker-{i}" for i in range(count)]

    def start(self) -> None:
        for name in self.names:
            self.supervisor.watch(lambda name=name: Worker(self.store, self.settings, self.engine, name=name))

    @property
    def workers(self) -> list[Worker]:
        return [self.supervisor.current(name) for name in self.names]  # type: ignore[misc]

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then release them."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        self.supervisor.retire(self.names)
        workers = self.workers
        for w in workers:
            w.stop()
        deadline = time.monotonic() + grace
        for w in workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in workers:
            if w.is_alive():
                w.stop(abandon=True)
        for w in workers:
            w.join(timeout=30)
