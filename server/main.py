"""Entry points behind `tft serve`, `tft worker` and `tft token`."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from dataclasses import replace

from .datadir import private_umask
from .settings import Settings

TOKEN_PATTERN = re.compile(r"tft_pat_[A-Za-z0-9_-]{4,}")


class RedactTokens(logging.Filter):
    """Defence in depth: no log line may carry a personal access token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "tft_pat_" in message:
            record.msg = TOKEN_PATTERN.sub("tft_pat_[redacted]", message)
            record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def open_store_or_exit(settings: Settings, *, listen: bool = True):
    """The configured store; an unreachable database is a one-line message and exit 1."""
    from .errors import ServerError
    from .store import open_store

    try:
        return open_store(settings, listen=listen)
    except ServerError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def check_blobs_or_exit(settings: Settings) -> str:
    """The blob store answers (an S3 bucket exists and the credentials work), or a one-line
    message and exit 1; returns its description for the start-up log."""
    from .blobs import blob_store
    from .errors import ServerError

    try:
        blobs = blob_store(settings)
        blobs.keys("uploads/.reachable")  # one small listing: it fails on a wrong bucket or credentials
    except ServerError as exc:
        print(f"tft: cannot use the file storage: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return blobs.describe()


def load_settings(**overrides) -> Settings:
    from engine.errors import EngineError

    try:
        settings = Settings.from_environ()
    except EngineError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def serve(host: str | None = None, port: int | None = None, workers: int | None = None, *, banner=None) -> int:
    import uvicorn

    from .app import create_app

    settings = load_settings(host=host, port=port, workers=workers)
    configure_logging()
    private_umask()
    store = open_store_or_exit(settings)
    check_blobs_or_exit(settings)
    app = create_app(settings, store)
    # Proxy headers are never applied by uvicorn (it would trust them from 127.0.0.1): the API
    # reads X-Forwarded-For itself, and only from TFT_TRUSTED_PROXIES.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=True,
                            timeout_keep_alive=5, timeout_graceful_shutdown=settings.shutdown_grace_seconds + 5,
                            lifespan="on", proxy_headers=False, forwarded_allow_ips="")
    server = uvicorn.Server(config)
    if banner is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                banner(settings)

        server.startup = startup  # type: ignore[method-assign]
    # uvicorn handles SIGTERM/SIGINT gracefully (stop accepting, drain, run the lifespan's
    # shutdown: workers finish or release their jobs), then re-raises the signal under the
    # handler that was installed before it. A handler that only notes the signal makes a
    # graceful stop exit 0, as a service manager expects.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    server.run()
    return 0 if server.started else 1


def run_workers(workers: int | None = None) -> int:
    """`tft worker`: transcription workers, a webhook dispatcher and the janitor against the shared store."""
    from .app import _event_payload
    from .datadir import prepare_data_dir
    from .dispatcher import Dispatcher
    from .janitor import Janitor
    from .supervisor import Supervisor
    from .worker import EngineContext, WorkerPool

    settings = load_settings(workers=workers)
    configure_logging()
    private_umask()
    prepare_data_dir(settings)
    store = open_store_or_exit(settings)
    files = check_blobs_or_exit(settings)
    supervisor = Supervisor(restart_limit=settings.thread_restart_limit)
    pool = WorkerPool(supervisor, store, settings, EngineContext(settings), max(1, settings.workers))
    stop = threading.Event()

    def on_signal(signum, frame):
        logging.getLogger("tft.worker").info("signal %d: finishing or releasing the running job", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.metrics and settings.metrics_port:
        from prometheus_client import start_http_server

        from .metrics import Metrics

        start_http_server(settings.metrics_port, addr=settings.host, registry=Metrics(store).registry)
    pool.start()
    supervisor.watch(lambda: Dispatcher(store, settings, payload_for=lambda d: _event_payload(store, d)))
    supervisor.watch(lambda: Janitor(store, settings))
    supervisor.start()
    logging.getLogger("tft.worker").info("%d worker(s) on %s, files in %s", len(pool.names), store.describe(),
                                         files)
    # A bounded wait: a signal the kernel hands to another thread (CTranslate2's, say) does not
    # interrupt an unbounded wait in the main thread, where Python runs the handler.
    while not stop.wait(0.5):
        pass
    pool.stop()
    supervisor.stop_all(5.0)
    return 0


def create_token(user: str, *, credits: int | None = None, label: str = "cli") -> str:
    from . import auth

    settings = load_settings()
    private_umask()
    store = open_store_or_exit(settings, listen=False)
    account = store.ensure_user(user, credits if credits is not None else settings.new_user_credits)
    if credits is not None and account.credits != credits:
        store.set_credits(account.id, credits)
    return auth.issue(store, account, label=label)


def revoke_tokens(user: str) -> int:
    settings = load_settings()
    store = open_store_or_exit(settings, listen=False)
    account = store.get_user_by_name(user)
    return store.revoke_tokens(account.id) if account else 0


def migrate() -> int:
    """`tft migrate`: bring the configured database's schema up to date (also done at start-up)."""
    settings = load_settings()
    private_umask()
    store = open_store_or_exit(settings, listen=False)
    print(f"{store.describe()}: schema version {store.schema_version()}")
    store.close()
    return 0


def store_check(as_json: bool = False) -> int:
    """`tft store check`: orphaned files and stuck jobs; exit 1 when there are any."""
    import json

    from .storecheck import check

    settings = load_settings()
    store = open_store_or_exit(settings, listen=False)
    check_blobs_or_exit(settings)
    try:
        report = check(store, settings)
    finally:
        store.close()
    print(json.dumps(report.as_dict(), indent=2) if as_json else report.text())
    return 0 if report.clean else 1
