"""Streamed multipart uploads: the file goes straight to disk in chunks, never into memory.

Limits are enforced while reading: a declared Content-Length over the maximum is refused
with 413 before a byte of the body is read; a body that grows past it is cut off at the
limit; a client that stops sending for ``idle_timeout`` seconds (slow-loris) gets 408.
Everything is async, so a slow client occupies a coroutine, not a worker thread. Every
malformed body (a boundary longer than RFC 2046's 70 characters, part headers larger than
``MAX_HEADER_BYTES``, broken framing) is a 422, whatever the parser raises.

The client's filename is kept only as sanitised metadata (``filenames.sanitise``); the file
goes to the path the caller chose, created 0600.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .errors import PayloadTooLarge, RequestTimeout
from .filenames import sanitise
from .validation import RequestInvalid, error

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
MAX_HEADER_BYTES = 8 * 1024  # one part header (name + value)
MAX_BOUNDARY = 70  # RFC 2046
FORM_OVERHEAD = 256 * 1024  # headers and small fields around the file


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)  # the last value of each field
    repeated: dict[str, list[str]] = field(default_factory=dict)  # every value, in order (``a[]=x&a[]=y``)
    path: Path | None = None
    filename: str | None = None
    size: int = 0


class _Collector:
    """python-multipart callbacks: file bytes to disk, small fields to memory."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.upload = Upload()
        self._headers: dict[bytes, bytes] = {}
        self._field_name = b""
        self._value = b""
        self._current_name: str | None = None
        self._current_is_file = False
        self._buffer = bytearray()
        self._fh = None
        self.error: Exception | None = None

    def _fail(self, exc: Exception) -> None:
        if self.error is None:  # the first problem is the one to report
            self.error = exc

    def on_part_begin(self) -> None:
        self._headers = {}
        self._buffer = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field_name += data[start:end]
        self._check_header()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._check_header()

    def _check_header(self) -> None:
        if len(self._field_name) + len(self._value) > MAX_HEADER_BYTES:
            self._field_name, self._value = b"", b""
            self._fail(error(["body"], f"a multipart part header is larger than {MAX_HEADER_BYTES // 1024} KB"))

    def on_header_end(self) -> None:
        self._headers[self._field_name.lower()] = self._value
        self._field_name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._current_name = name
        self._current_is_file = filename is not None and name == "file"
        if filename is not None and name != "file":
            self._fail(error(["body", "file"], f"Field required: send the audio in the multipart field 'file' "
                             f"(this request used '{name}')", "missing"))
            return
        if self._current_is_file:
            if self.upload.path is not None:
                self._fail(error(["body", "file"], "send exactly one file", "value_error"))
                self._current_is_file = False
                return
            self.upload.filename = sanitise(filename.decode("utf-8", "replace"))
            self.upload.path = self.dest
            self._fh = os.fdopen(os.open(self.dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_is_file and self._fh is not None:
            self._fh.write(data[start:end])
            self.upload.size += end - start
        elif self.error is None:
            self._buffer += data[start:end]
            if len(self._buffer) > MAX_FIELD_BYTES:
                self._fail(error(["body", self._current_name or ""], "form field too large (64 KB at most)"))

    def on_part_end(self) -> None:
        if self._current_is_file and self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self._current_name is not None:
            if sum(map(len, self.upload.repeated.values())) >= MAX_FIELDS:
                self._fail(error(["body"], "too many form fields"))
            value = bytes(self._buffer).decode("utf-8", "replace")
            self.upload.fields[self._current_name] = value
            self.upload.repeated.setdefault(self._current_name, []).append(value)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def receive(request: Request, dest: Path, *, max_bytes: int, idle_timeout: float) -> Upload:
    """Parse a multipart body into ``dest`` (the file) and the small fields."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise error(["body"], "send the audio as multipart/form-data with a 'file' field", "missing")
    if len(params[b"boundary"]) > MAX_BOUNDARY:
        raise error(["body"], f"the multipart boundary is {len(params[b'boundary'])} characters long; "
                    f"RFC 2046 allows at most {MAX_BOUNDARY}")
    limit = max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload is {int(declared) / 1e6:.0f} MB; this server accepts {max_bytes / 1e6:.0f} MB at most")
    collector = _Collector(dest)
    received = 0
    stream = request.stream().__aiter__()
    try:
        parser = MultipartParser(params[b"boundary"], callbacks={
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
        })
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), timeout=idle_timeout)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise RequestTimeout(f"the upload stalled: nothing received for {idle_timeout:.0f} s") from None
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"the upload exceeds the {max_bytes / 1e6:.0f} MB this server accepts")
            parser.write(chunk)
            if collector.error is not None:
                raise collector.error
        parser.finalize()
    except ClientDisconnect:
        raise error(["body"], "the client disconnected before the upload finished") from None
    except (RequestInvalid, PayloadTooLarge, RequestTimeout):
        raise
    except (FormParserError, ValueError, UnicodeError) as exc:  # malformed multipart, whatever the parser says
        raise error(["body"], f"malformed multipart body: {str(exc)[:200]}") from None
    finally:
        collector.close()
    if collector.error is not None:
        raise collector.error
    if collector.upload.path is None:
        raise error(["body", "file"], "Field required", "missing")
    if collector.upload.size > max_bytes:
        raise PayloadTooLarge(f"the file is {collector.upload.size / 1e6:.0f} MB; this server accepts {max_bytes / 1e6:.0f} MB at most")
    return collector.upload
