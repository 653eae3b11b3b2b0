"""A file answer that a DELETE cannot break.

Starlette's ``FileResponse`` looks the path up when it starts answering and opens it again
for the body, so a job deleted in between (or by the retention sweep) turned a download into
a 500 or a body cut short. ``open_held`` opens the file first, in the request: a file
already gone is the caller's 404/410, and once open, removing its name changes nothing for
this answer (the open file keeps its bytes until the answer is sent, Range requests
included).
"""

from __future__ import annotations

import os
import stat
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import anyio
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send


class HeldFileResponse(FileResponse):
    """``FileResponse`` over a file descriptor opened before the answer starts."""

    def __init__(self, fd: int, path: Path, **kwargs) -> None:
        super().__init__(path, stat_result=os.fstat(fd), **kwargs)
        self._fd = fd

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        # Each body (one per range) reads through its own duplicate of the held descriptor.
        file = anyio.wrap_file(os.fdopen(os.dup(self._fd), "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope.get("extensions", {}).get("http.response.pathsend"):
                scope = {**scope, "extensions": {k: v for k, v in scope["extensions"].items()
                                                 if k != "http.response.pathsend"}}  # a path may be gone
            await super().__call__(scope, receive, send)
        finally:
            os.close(self._fd)


def open_held(path: Path) -> int | None:
    """An open descriptor for ``path``, or None when it is gone (or not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
