"""HTTP-facing errors, in the project's one exception tree (engine.errors.EngineError).

The API turns each into its status code and a JSON body; the message is one sentence a
person can act on.
"""

from __future__ import annotations

from engine.errors import EngineError


class ServerError(EngineError):
    status: int = 400
    code = "bad_request"


class Unauthorized(ServerError):
    status, code = 401, "unauthorized"


class InsufficientCredits(ServerError):
    status, code = 402, "insufficient_credits"

    def __init__(self, message: str, *, top_up_url: str | None, balance: int, price: int) -> None:
        super().__init__(message)
        self.top_up_url = top_up_url
        self.balance = balance
        self.price = price


class NotFound(ServerError):
    status, code = 404, "not_found"


class Conflict(ServerError):
    status, code = 409, "conflict"


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"


class Gone(ServerError):
    status, code = 410, "gone"


class PayloadTooLarge(ServerError):
    status, code = 413, "payload_too_large"


class RequestTimeout(ServerError):
    status, code = 408, "request_timeout"


class RateLimited(ServerError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsupportedMedia(ServerError):
    status, code = 415, "unsupported_media_type"


class StoreUnavailable(ServerError):
    """The database cannot be reached (PostgreSQL restarting, the network down): try again."""

    status, code = 503, "database_unavailable"


class BlobError(ServerError):
    """The blob store (the shared directory or the S3 bucket) cannot be read or written."""

    status, code = 503, "storage_unavailable"


class BlobNotFound(BlobError):
    """No blob under that key: for a download, the file is gone (410)."""

    status, code = 410, "blob_not_found"
