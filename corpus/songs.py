"""Constructed songs: a fluidsynth band (``corpus.midi``) with voice lines of known text on top.

Every song has an instrumental intro, verse lines, an instrumental break, chorus lines and an
instrumental outro; lines start on the beat. Three aligned 44.1 kHz stereo FLAC files are
written (the mix, the clean voice, the band; mix = voice + band sample for sample), with a
``song.json`` manifest. Line times are where the voice actually sounds, instrumental stretches
are the exact section boundaries, and the voice-to-band ratio is measured over the voiced
samples. Builds are cached in ``out_dir`` by a hash of the spec and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import midi, voices
from .errors import CorpusError
from .lyrics import LYRICS

VERSION = 1  # bump when the same spec would render differently
RATE = midi.RATE
GAP_S = 0.6  # least silence after a line before the next one starts
TAIL_S = 3.0  # the last chord rings out
INTRO_S, BREAK_S, OUTRO_S = 7.0, 10.0, 4.0  # targets, rounded to whole bars
MIX_RMS_DB, MIX_PEAK = -16.0, 0.89  # level of the finished mix (at most -1 dBFS peak)
BAND_RMS = 0.1
RATIOS_DB = (6.0, 0.0, -6.0, -12.0)
INSTRUMENTAL = frozenset({"intro", "break", "outro"})


@dataclass(frozen=True)
class Line:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Song:
    name: str
    path: Path  # the mix
    voice_path: Path  # the clean voice, as loud as in the mix
    band_path: Path
    language: str
    ratio_db: float
    style: str
    bpm: float
    lines: tuple[Line, ...]
    instrumental: tuple[tuple[float, float], ...]
    unsung_lines: tuple[str, ...] = ()
    sheet: str = ""  # the lyric sheet a user would give `tft align`: unsung lines included

    @property
    def text(self) -> str:
        """The reference transcript: every sung line, in order."""
        return " ".join(line.text for line in self.lines)


@dataclass(frozen=True)
class Section:
    kind: str  # intro | verse | chorus | break | outro
    lines: tuple[str, ...] = ()  # sung sections
    seconds: float = 0.0  # instrumental sections: a target, rounded to whole bars


@dataclass(frozen=True)
class SongSpec:
    name: str
    style: str  # a key of corpus.midi.STYLES
    language: str  # ISO 639-1
    ratio_db: float  # voice against band over the voiced samples
    form: tuple[Section, ...]
    voice: str = "espeak"  # espeak | sung (held, sung-like espeak) | audioeval (lines are clip texts)
    seed: int = 0
    unsung: tuple[tuple[int, str], ...] = field(default=())  # (sheet position among sung lines, text)

    def key(self) -> str:
        """Changes with anything that changes the rendered files: the spec, the style, the voices."""
        style = midi.STYLES.get(self.style)
        payload = json.dumps({"spec": asdict(self), "style": asdict(style) if style else None, "version": VERSION,
                              "voices": [voices.ESPEAK_VOICES, voices.SUNG_RATE]}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --- building ---------------------------------------------------------------------------


def build_song(spec: SongSpec, out_dir: Path) -> Song:
    """Render ``spec`` into ``out_dir/<name>-<spec hash>/``, or load it if it is already there."""
    out_dir = Path(out_dir)
    final = out_dir / f"{spec.name}-{spec.key()}"
    if (final / "song.json").is_file():
        return load_song(final / "song.json")
    if spec.style not in midi.STYLES:
        raise CorpusError(f"unknown style {spec.style!r}; known: {sorted(midi.STYLES)}")
    style = midi.STYLES[spec.style]
    clips = {text: _voice_line(spec, style, text) for s in spec.form for text in s.lines}
    parts, slots, sections = _layout(spec, style, {t: c.size / RATE for t, c in clips.items()})
    n = int(round(sections[-1][2] * RATE))
    band = _band(style, parts, spec.seed, n, out_dir / "bands")
    voice = np.zeros(n, np.float64)
    for text, start in slots:
        s = int(round(start * RATE))
        voice[s : s + clips[text].size] += clips[text]
    voice_i16, band_i16, measured = _levels(voice, band, spec.ratio_db)
    lines = tuple(Line(round(t, 4), round(t + clips[text].size / RATE, 4), text) for text, t in slots)
    instrumental = tuple((round(a, 4), round(b, 4)) for kind, a, b in sections if kind in INSTRUMENTAL)
    sheet = _sheet(spec, slots)
    manifest = {
        "name": spec.name, "language": spec.language, "ratio_db": spec.ratio_db,
        "measured_ratio_db": round(measured, 3),
        "style": spec.style, "bpm": style.bpm, "lines": [asdict(l) for l in lines], "instrumental": instrumental,
        "unsung_lines": [t for _, t in spec.unsung], "sheet": sheet,
        "sections": [{"kind": k, "start": round(a, 4), "end": round(b, 4)} for k, a, b in sections],
        "files": {"path": "mix.flac", "voice_path": "voice.flac", "band_path": "band.flac"},
        "seconds": n / RATE, "rate": RATE, "spec": asdict(spec), "version": VERSION,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{final.name}."))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the corpus is shared
    try:
        _write_flac(tmp / "voice.flac", voice_i16)
        _write_flac(tmp / "band.flac", band_i16)
        _write_flac(tmp / "mix.flac", _sum16(voice_i16, band_i16))
        (tmp / "song.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, final)
    except OSError:
        if not (final / "song.json").is_file():  # not a lost race with another builder
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_song(final / "song.json")


def load_song(manifest: Path) -> Song:
    data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    here = Path(manifest).resolve().parent
    return Song(
        name=data["name"], path=here / data["files"]["path"], voice_path=here / data["files"]["voice_path"],
        band_path=here / data["files"]["band_path"], language=data["language"], ratio_db=data["ratio_db"],
        style=data["style"], bpm=data["bpm"], lines=tuple(Line(**l) for l in data["lines"]),
        instrumental=tuple((a, b) for a, b in data["instrumental"]), unsung_lines=tuple(data["unsung_lines"]),
        sheet=data["sheet"],
    )


def _voice_line(spec: SongSpec, style: midi.Style, text: str) -> np.ndarray:
    if spec.voice == "espeak":
        return voices.spoken_line(text, spec.language)
    if spec.voice == "sung":
        return voices.sung_line(text, spec.language, key=style.key, scale=style.scale, seed=sung_seed(spec.seed, text))
    if spec.voice == "audioeval":
        from .speech import audioeval_clips

        for clip in audioeval_clips(spec.language):
            if clip.text == text:
                return voices.clip_line(clip.path)
        raise CorpusError(f"no pytest-audioeval {spec.language} clip says {text!r}")
    raise CorpusError(f"unknown voice {spec.voice!r}: espeak, sung or audioeval")


def sung_seed(song_seed: int, text: str) -> int:
    """The melody seed of one sung line."""
    return int(hashlib.sha256(f"{song_seed}:{text}".encode()).hexdigest()[:8], 16)


def _bars(seconds: float, bar: float, least: int = 1) -> int:
    return max(least, round(seconds / bar))


def _layout(spec: SongSpec, style: midi.Style, durations: dict[str, float]):
    """Bars per section and the onset of every line: lines start on a half-bar, one after another."""
    bar = midi.bar_seconds(style)
    half = bar / 2
    parts, slots, sections = [], [], []
    at = 0  # in bars
    for i, section in enumerate(spec.form):
        if section.kind in INSTRUMENTAL:
            last = i == len(spec.form) - 1
            bars = _bars(section.seconds, bar, 2 if last else 1)
        else:
            halves = 0
            for text in section.lines:
                slots.append((text, (at * 2 + halves) * half))
                halves += math.ceil((durations[text] + GAP_S) / half)
            bars = math.ceil(halves / 2)
        parts.append(midi.Part(section.kind, bars))
        end = (at + bars) * bar + (TAIL_S if i == len(spec.form) - 1 else 0.0)
        sections.append((section.kind, at * bar, end))
        at += bars
    return tuple(parts), slots, sections


def _band(style: midi.Style, parts: tuple[midi.Part, ...], seed: int, n: int, cache: Path) -> np.ndarray:
    """The rendered band at ``BAND_RMS``, (n, 2) float64; cached as 24-bit FLAC (songs differing only
    in voice or ratio share it), and always read back from the cache so both paths agree."""
    import soundfile as sf

    sf2 = midi.find_soundfont()
    key = hashlib.sha256(json.dumps([asdict(style), [asdict(p) for p in parts], seed, n, VERSION,
                                     sf2.stat().st_size]).encode()).hexdigest()[:12]
    path = cache / f"{style.name}-{key}.flac"
    if not path.is_file():
        notes, beats = midi.arrange(style, parts, seed)
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".render-") as tmp:
            end = beats + TAIL_S / midi.beat_seconds(style)
            mid = midi.write_midi(style, notes, Path(tmp) / "band.mid", end_beat=end)
            audio = midi.render(mid, n / RATE, soundfont=sf2)
            rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
            audio = audio * (BAND_RMS / rms)
            if np.abs(audio).max() >= 1.0:
                raise CorpusError(f"the {style.name} band clips at its reference level")
            sf.write(Path(tmp) / "band.flac", audio, RATE, subtype="PCM_24", format="FLAC")
            os.replace(Path(tmp) / "band.flac", path)
    audio, _ = sf.read(path, dtype="float64", always_2d=True)
    return audio


def voiced_ratio_db(voice: np.ndarray, band: np.ndarray) -> float:
    """Voice RMS over its voiced frames against band RMS over the same samples, in dB."""
    frame = int(RATE * voices.FRAME_S)
    mask = np.repeat(voices.active_frames(voice), frame)[: voice.shape[0]]
    v = voice[mask].astype(np.float64)
    b = band[mask].astype(np.float64)
    return 20 * math.log10(math.sqrt(np.mean(v**2)) / math.sqrt(np.mean(b**2)))


def _levels(voice: np.ndarray, band: np.ndarray, ratio_db: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Scale the voice to ``ratio_db`` over its voiced samples, then master the sum; 16-bit stereo out."""
    voice = voice * 10 ** ((ratio_db - voiced_ratio_db(voice, band)) / 20)
    stereo = np.repeat(voice[:, None], 2, axis=1)
    mix = stereo + band
    gain = min(10 ** (MIX_RMS_DB / 20) / math.sqrt(np.mean(mix**2)), MIX_PEAK / np.abs(mix).max())
    v16 = np.round(stereo * gain * 32767).astype(np.int16)
    b16 = np.round(band * gain * 32767).astype(np.int16)
    return v16, b16, voiced_ratio_db(v16[:, 0].astype(np.float64), b16.astype(np.float64))


def _sum16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a.astype(np.int32) + b.astype(np.int32)
    if np.abs(total).max() > 32767:
        raise CorpusError("the mix would clip")  # cannot happen at MIX_PEAK < 1; guard anyway
    return total.astype(np.int16)


def _write_flac(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    sf.write(path, audio, RATE, subtype="PCM_16", format="FLAC")


def _sheet(spec: SongSpec, slots: list[tuple[str, float]]) -> str:
    """One line per sung line, a blank line between sections, the unsung lines where the spec puts them."""
    extra = dict(spec.unsung)
    stanzas, k = [], 0
    for section in spec.form:
        if not section.lines:
            continue
        stanza = []
        for text in section.lines:
            if k in extra:
                stanza.append(extra[k])
            stanza.append(text)
            k += 1
        stanzas.append("\n".join(stanza))
    if k in extra:
        stanzas[-1] += "\n" + extra[k]
    return "\n\n".join(stanzas) + "\n"


# --- the corpus ---------------------------------------------------------------------------

STYLE_NAMES = ("ballad", "pop", "bossa", "electronic")
LANGUAGES = ("en", "fr", "es", "de", "it")
# language: (verse clips, chorus clips), by clip name. Counting clips only in English: Whisper
# writes digits, which the other languages' WER normaliser does not map back to words.
AUDIOEVAL_SONGS = {
    "en": (("counting", "hello_world"), ("quick_brown_fox",)),
    "es": (("hola_mundo", "pangrama"), ("hola_mundo",)),
    "fr": (("bonjour_monde", "pangrama"), ("bonjour_monde",)),
    "it": (("ciao_mondo", "pangrama"), ("ciao_mondo",)),
}


def _tag(ratio_db: float) -> str:
    sign = "m" if ratio_db < 0 else "p" if ratio_db > 0 else ""
    return f"{sign}{abs(ratio_db):g}db"


def _seed(*parts: object) -> int:
    """A seed per arrangement, so the same band is shared by every ratio of a song."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def standard_form(verse: tuple[str, ...], chorus: tuple[str, ...], *, break_s: float = BREAK_S) -> tuple[Section, ...]:
    return (Section("intro", seconds=INTRO_S), Section("verse", verse), Section("break", seconds=break_s),
            Section("chorus", chorus), Section("outro", seconds=OUTRO_S))


def hook_form(language: str, *, quick: bool = False) -> tuple[Section, ...]:
    """The hook sung four times at four different times, for alignment of repeated lines."""
    ly = LYRICS[language]
    h = ly.hook
    if quick:
        return (Section("intro", seconds=INTRO_S), Section("chorus", (h, ly.chorus[0], h)),
                Section("break", seconds=BREAK_S), Section("chorus", (h, ly.chorus[1], h)),
                Section("outro", seconds=OUTRO_S))
    return (Section("intro", seconds=INTRO_S), Section("verse", ly.verse[:2]), Section("chorus", (h, ly.chorus[0], h)),
            Section("break", seconds=BREAK_S), Section("verse", ly.verse[2:]), Section("chorus", (h, ly.chorus[1], h)),
            Section("outro", seconds=OUTRO_S))


def _audioeval_form(language: str) -> tuple[Section, ...]:
    from .speech import audioeval_clips

    texts = {c.name: c.text for c in audioeval_clips(language)}
    verse, chorus = AUDIOEVAL_SONGS[language]
    return standard_form(tuple(texts[n] for n in verse), tuple(texts[n] for n in chorus))


def corpus_specs(*, quick: bool = False) -> list[SongSpec]:
    """The songs of the corpus. ``quick``: four songs under about 45 s for ``make test``."""
    en, es = LYRICS["en"], LYRICS["es"]
    if quick:
        return [
            SongSpec("pop-en-0db", "pop", "en", 0.0, standard_form(en.verse[:2], en.chorus[:2]),
                     seed=_seed("pop", "en"), unsung=((1, en.unsung),)),
            SongSpec("bossa-es-m6db", "bossa", "es", -6.0, standard_form(es.verse[:2], es.chorus[:2]),
                     seed=_seed("bossa", "es")),
            SongSpec("ballad-fr-audioeval-p6db", "ballad", "fr", 6.0, _audioeval_form("fr"), voice="audioeval",
                     seed=_seed("ballad", "fr", "audioeval")),
            SongSpec("electronic-en-hook-m6db", "electronic", "en", -6.0, hook_form("en", quick=True),
                     seed=_seed("electronic", "en", "hook"), unsung=((3, en.unsung),)),
        ]
    specs = []
    for ratio in RATIOS_DB:
        for style in STYLE_NAMES:
            for lang in LANGUAGES:
                ly = LYRICS[lang]
                unsung = ((4, ly.unsung),) if style == "pop" else ()
                specs.append(SongSpec(f"{style}-{lang}-{_tag(ratio)}", style, lang, ratio,
                                      standard_form(ly.verse, ly.chorus), seed=_seed(style, lang), unsung=unsung))
        for i, lang in enumerate(AUDIOEVAL_SONGS):
            style = STYLE_NAMES[i % len(STYLE_NAMES)]
            specs.append(SongSpec(f"{style}-{lang}-audioeval-{_tag(ratio)}", style, lang, ratio, _audioeval_form(lang),
                                  voice="audioeval", seed=_seed(style, lang, "audioeval")))
        specs.append(SongSpec(f"ballad-en-sung-{_tag(ratio)}", "ballad", "en", ratio,
                              standard_form(en.verse, en.chorus), voice="sung", seed=_seed("ballad", "en", "sung")))
    for ratio in (0.0, -6.0):
        for lang, style in (("en", "electronic"), ("fr", "pop")):
            specs.append(SongSpec(f"{style}-{lang}-hook-{_tag(ratio)}", style, lang, ratio, hook_form(lang),
                                  seed=_seed(style, lang, "hook"), unsung=((3, LYRICS[lang].unsung),)))
        specs.append(SongSpec(f"pop-en-longbreak-{_tag(ratio)}", "pop", "en", ratio,
                              standard_form(en.verse, en.chorus, break_s=32.0), seed=_seed("pop", "en", "longbreak")))
    return specs


def song_corpus(out_dir: Path, *, quick: bool = False) -> list[Song]:
    """Build (or load from ``out_dir``) every song of the corpus."""
    return [build_song(spec, out_dir) for spec in corpus_specs(quick=quick)]


def default_corpus_dir() -> Path:
    """``$TFT_SONG_CORPUS``, or ``~/.cache/tft/songs``: rendered songs are kept between runs."""
    configured = os.environ.get("TFT_SONG_CORPUS")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "tft" / "songs"
