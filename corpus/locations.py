"""Where generated and fetched material lives, so `tft bench` works from any directory.

``$TFT_BENCH_DATA`` when set (the Makefile and the test suite point it at ``tests/data`` in a
checkout, shared with the tests' fixtures), else the user's cache: ``$XDG_CACHE_HOME/tft/bench``
or ``~/.cache/tft/bench``. Never the installed package's own directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def data_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    configured = environ.get("TFT_BENCH_DATA")
    if configured:
        return Path(configured).expanduser()
    cache = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(cache).expanduser() / "tft" / "bench"


def generated_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Synthesised audio (espeak-ng speech, tracks, random-weight models): rebuilt when missing."""
    path = data_root(environ) / "generated"
    path.mkdir(parents=True, exist_ok=True)
    return path


def audioeval_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The pytest-audioeval clips, fetched from PyPI on first use."""
    return data_root(environ) / "audioeval"
