"""One connection that LISTENs for the store's notifications and hands them to a callback.

NOTIFY is not replayed: what was sent while this connection was down is lost. So after
every (re)connection the callback ``on_connect`` runs, and the store wakes every waiter to
look again; waiters also poll slowly on their own. A dead server is noticed by the socket
closing, a silent network by a ``SELECT 1`` every ``probe_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

import psycopg

log = logging.getLogger("tft.store")


class Listener:
    def __init__(self, url: str, channels: Iterable[str], *, on_notify: Callable[[str, str], None],
                 on_connect: Callable[[], None], on_disconnect: Callable[[], None] = lambda: None, retry_seconds: float = 0.5, probe_seconds: float = 10.0) -> None:
        self.url, self.channels = url, tuple(channels)
        self.on_notify, self.on_connect, self.on_disconnect = on_notify, on_connect, on_disconnect
        self.retry_seconds, self.probe_seconds = retry_seconds, probe_seconds
        self.connected = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    for channel in self.channels:
                        conn.execute(f"LISTEN {channel}")
                    if self.reconnects:
                        log.info("listening for job changes again")
                    self.reconnects += 1
                    self.connected.set()
                    self.on_connect()
                    self._listen(conn)
            except psycopg.Error as exc:
                self.on_disconnect()
                if self.connected.is_set():
                    log.warning("lost the connection that listens for job changes (%s); reconnecting",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                self.connected.clear()
                self._stop.wait(self.retry_seconds)

    def _listen(self, conn: psycopg.Connection) -> None:
        probed = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=1.0):
                self.on_notify(note.channel, note.payload)
                if self._stop.is_set():
                    return
            if time.monotonic() - probed > self.probe_seconds:
                conn.execute("SELECT 1")
                probed = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
