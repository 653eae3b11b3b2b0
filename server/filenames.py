"""The client's filename is metadata: shown back in job bodies and offered as the download
name, never used for anything on disk (uploads are ``<job id>.upload``, exports are
``transcript.<ext>`` in a directory named by the job and its attempt).

``sanitise`` makes it safe to store, log and echo: the last path component only, no control
or invisible formatting characters (NUL, newlines, bidi overrides that disguise an
extension), whitespace collapsed, at most ``MAX_CHARS`` characters with the extension kept.
``content_disposition`` offers it for download as RFC 6266 says: an ASCII ``filename=``
for old clients and the exact name in ``filename*=UTF-8''…``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

EXPORT_STEM = "transcript"  # every export on disk is <attempt directory>/transcript.<ext>
MAX_CHARS = 200
_DROP = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format (bidi, zero-width), surrogates, private, unassigned
_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._()+@ -]+")


def sanitise(raw: str | None, *, fallback: str = "upload") -> str:
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROP)
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_CHARS:
        suffix = PurePosixPath(name).suffix
        suffix = suffix if 1 < len(suffix) <= 16 else ""
        name = name[: MAX_CHARS - len(suffix)].rstrip(" .") + suffix
    return name or fallback


def stem(filename: str) -> str:
    """The name without its extension, for ``<stem>.<format>`` downloads."""
    return PurePosixPath(sanitise(filename)).stem or "transcript"


def content_disposition(name_stem: str, extension: str, *, disposition: str = "attachment") -> str:
    """``attachment; filename="<ascii>.<ext>"`` plus ``filename*=`` when the name is not plain ASCII."""
    exact_stem = sanitise(name_stem, fallback="transcript")
    decomposed = unicodedata.normalize("NFKD", exact_stem)  # é -> e + combining accent
    ascii_stem = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    ascii_stem = _ASCII_SAFE.sub("_", ascii_stem).strip(" ._") or "transcript"
    extension = _ASCII_SAFE.sub("_", extension).strip(" _") or "bin"
    exact, plain = f"{exact_stem}.{extension}", f"{ascii_stem}.{extension}"
    if plain == exact:
        return f'{disposition}; filename="{plain}"'
    return f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(exact, safe='')}"
