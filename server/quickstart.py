"""`make serve`: start on 127.0.0.1 with the embedded SQLite store and the bundled offline
model, and print a ready token and a curl line that works."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sample_clip() -> Path:
    from corpus.speech import audioeval_clips

    return next(c.path for c in audioeval_clips("en") if c.name == "quick_brown_fox")


def main() -> int:
    from .main import create_token, serve

    os.environ.setdefault("TFT_DATA_DIR", str(REPO / "var"))
    token = create_token("quickstart", label="make serve")
    clip = sample_clip()

    def banner(settings) -> None:
        base = f"http://{settings.host}:{settings.port}"
        auth = f"Authorization: Bearer {token}"
        print(f"""
TextFromTrack v1 API (offline) on {base}  model: {settings.model}  data: {settings.data_dir}

Personal access token for user 'quickstart' (shown once; `tft token create` makes more):
  {token}

Studio page: {base}/  (paste the token there once)

Try it:
  curl -s -H {shlex.quote(auth)} -F file=@{shlex.quote(str(clip))} {base}/api/v1/transcriptions
  curl -s -H {shlex.quote(auth)} {base}/api/v1/transcriptions/JOB_ID
  curl -s -H {shlex.quote(auth)} '{base}/api/v1/transcriptions/JOB_ID/export?format=srt'
""", flush=True)

    return serve(banner=banner)


if __name__ == "__main__":
    sys.exit(main())
