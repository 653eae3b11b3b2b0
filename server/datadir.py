"""The data directory holds user audio, transcripts and webhook secrets: only the server's
own user may read it. Directories are 0700, files 0600 (the server process runs with umask
077, and the database and uploads are created 0600 explicitly as well)."""

from __future__ import annotations

import os

from .settings import Settings

PRIVATE_UMASK = 0o077


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory and its parts 0700, tightening ones an older version made."""
    shared = () if settings.blob_url else (settings.shared_dir, settings.uploads_dir, settings.exports_dir)
    for path in (settings.data_dir, *shared, settings.cache_dir, settings.scratch_dir):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o700)


def private_umask() -> None:
    """For the processes that write the data directory (tft serve, tft worker, tft token)."""
    os.umask(PRIVATE_UMASK)
