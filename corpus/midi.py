"""Band arrangements for the song corpus: General MIDI written with mido, rendered by fluidsynth.

Songs are judged on material that sounds like a band (piano, bass, pad, guitar, a lead
instrument and GM drums through the FluidR3 soundfont), because synthetic tones are far easier
to separate from a voice than real instruments. Each ``Style`` is a tempo, a key, a few
chord progressions and one pattern per instrument; an arrangement is a list of ``Part``s
(intro, verse, break, chorus, outro) measured in bars, so every section boundary is known
exactly in seconds. All choices (progression, melody, humanisation) come from one seed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from .errors import ToolMissing

RATE = 44_100
TICKS = 480  # per beat
BEATS_PER_BAR = 4
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian: fluid-soundfont-gm
DRUMS = 9  # GM percussion is MIDI channel 10

MAJ, MIN = (0, 4, 7), (0, 3, 7)
MAJ7, MIN7, DOM7 = (0, 4, 7, 11), (0, 3, 7, 10), (0, 4, 7, 10)
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)

# GM drum keys
KICK, STICK, SNARE, CLAP, HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, SHAKER = 36, 37, 38, 39, 42, 44, 46, 49, 51, 70

Chord = tuple[int, tuple[int, ...]]  # (root in semitones above the key, intervals)


@dataclass(frozen=True)
class Note:
    track: str  # piano | bass | pad | guitar | lead | drums
    beat: float  # from the start of the song
    length: float  # beats
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Part:
    kind: str  # intro | verse | chorus | break | outro
    bars: int


@dataclass(frozen=True)
class Style:
    """A tempo, a key, a few progressions (one chord per bar) and the GM programs that play them."""

    name: str
    bpm: float
    key: int  # MIDI note of the tonic, around middle C
    scale: tuple[int, ...]
    progressions: tuple[tuple[Chord, ...], ...]
    programs: tuple[tuple[str, int], ...]  # (track, GM program, 0-based)
    mix: tuple[tuple[str, int, int], ...]  # (track, volume CC7, pan CC10)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "ballad", 70.0, 60, MAJOR_SCALE,
            (((0, MAJ), (7, MAJ), (9, MIN), (5, MAJ)), ((9, MIN), (5, MAJ), (0, MAJ), (7, MAJ)),
             ((5, MAJ), (7, MAJ), (4, MIN), (9, MIN))),
            (("piano", 0), ("bass", 32), ("pad", 48), ("guitar", 24), ("lead", 73)),
            (("piano", 110, 54), ("bass", 100, 64), ("pad", 70, 64), ("guitar", 80, 88), ("lead", 95, 40),
             ("drums", 80, 64)),
        ),
        Style(
            "pop", 120.0, 55, MAJOR_SCALE,
            (((0, MAJ), (7, MAJ), (9, MIN), (5, MAJ)), ((9, MIN), (5, MAJ), (0, MAJ), (7, MAJ)),
             ((5, MAJ), (0, MAJ), (7, MAJ), (9, MIN))),
            (("piano", 0), ("bass", 33), ("pad", 89), ("guitar", 29), ("lead", 30)),
            (("piano", 90, 44), ("bass", 105, 64), ("pad", 60, 64), ("guitar", 80, 90), ("lead", 85, 70),
             ("drums", 105, 64)),
        ),
        Style(
            "bossa", 100.0, 65, MAJOR_SCALE,
            (((2, MIN7), (7, DOM7), (0, MAJ7), (9, DOM7)), ((0, MAJ7), (9, MIN7), (2, MIN7), (7, DOM7)),
             ((5, MAJ7), (4, MIN7), (2, MIN7), (7, DOM7))),
            (("piano", 4), ("bass", 32), ("pad", 48), ("guitar", 24), ("lead", 73)),
            (("piano", 85, 40), ("bass", 105, 64), ("pad", 55, 64), ("guitar", 105, 84), ("lead", 90, 60),
             ("drums", 85, 64)),
        ),
        Style(
            "electronic", 128.0, 57, MINOR_SCALE,
            (((0, MIN), (8, MAJ), (3, MAJ), (10, MAJ)), ((0, MIN), (7, MIN), (8, MAJ), (10, MAJ)),
             ((8, MAJ), (10, MAJ), (0, MIN), (0, MIN))),
            (("piano", 0), ("bass", 38), ("pad", 90), ("guitar", 28), ("lead", 80)),
            (("piano", 80, 50), ("bass", 105, 64), ("pad", 70, 64), ("guitar", 65, 96), ("lead", 75, 30),
             ("drums", 110, 64)),
        ),
    )
}

# How hard each section plays, and which ones carry the instrumental lead melody.
LOUDNESS = {"intro": 0.8, "verse": 0.85, "chorus": 1.0, "break": 0.95, "outro": 0.8}
LEAD_PARTS = frozenset({"intro", "break", "outro"})


def beat_seconds(style: Style) -> float:
    """Seconds per beat exactly as the MIDI file encodes it (an integer of microseconds)."""
    import mido

    return mido.bpm2tempo(style.bpm) / 1e6


def bar_seconds(style: Style) -> float:
    return BEATS_PER_BAR * beat_seconds(style)


def _voicing(style: Style, chord: Chord, low: int, high: int) -> list[int]:
    """The chord's tones, each in the lowest octave at or above ``low``, kept below ``high``."""
    root, intervals = chord
    out = []
    for iv in intervals:
        pc = (style.key + root + iv) % 12
        note = low + (pc - low) % 12
        out.append(note if note < high else note - 12)
    return sorted(out)


def _bass_root(style: Style, chord: Chord) -> int:
    return 33 + (style.key + chord[0] - 33) % 12  # A1..G#2


# --- one pattern per instrument, varying by style: (track, beat in the bar, length, pitch, velocity) ---


def _piano(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator):
    tones = _voicing(style, chord, 55, 72)
    n = style.name
    if n == "ballad":  # arpeggiated eighths over a left-hand root
        seq = tones + [tones[0] + 12] + tones[::-1][1:] + [tones[0]]
        notes = [("piano", 0.0, 4.0, _bass_root(style, chord) + 12, 70)]
        notes += [("piano", 0.5 * i, 0.6, seq[i % len(seq)], 62 if i % 2 else 72) for i in range(8)]
        return notes
    hits = {"pop": [(0, 0.9), (1, 0.9), (2, 0.9), (3, 0.9)],
            "bossa": [(0, 1.4), (1.5, 0.4), (2.5, 1.4)],
            "electronic": [(0.5, 0.3), (1.5, 0.3), (2.25, 0.3), (3.0, 0.3), (3.5, 0.3)]}[n]
    return [("piano", b, d, t, 68 if b % 1 else 76) for b, d in hits for t in tones]


def _bass(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator):
    root = _bass_root(style, chord)
    fifth = root + 7
    n = style.name
    if n == "ballad":
        return [("bass", 0.0, 2.0, root, 90), ("bass", 2.0, 1.5, fifth, 80), ("bass", 3.5, 0.5, root, 75)]
    if n == "pop":
        return [("bass", 0.5 * i, 0.45, root if i != 7 else fifth, 95 if i % 2 == 0 else 80) for i in range(8)]
    if n == "bossa":
        return [("bass", 0.0, 1.4, root, 95), ("bass", 1.5, 0.45, fifth - 12, 80),
                ("bass", 2.0, 1.4, fifth - 12, 90), ("bass", 3.5, 0.45, root, 80)]
    return [("bass", b + 0.5, 0.4, root + (12 if b == 3 else 0), 100) for b in range(4)]


def _pad(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator):
    return [("pad", 0.0, 4.0, t, 60) for t in _voicing(style, chord, 60, 77)]


def _guitar(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator):
    n = style.name
    if n == "pop":  # power chords (root, fifth, octave) on eighths, harder in the chorus
        root = 40 + (style.key + chord[0] - 40) % 12
        vel = 92 if kind == "chorus" else 78
        return [("guitar", 0.5 * i, 0.45, p, vel - (8 if i % 2 else 0))
                for i in range(8) for p in (root, root + 7, root + 12)]
    tones = _voicing(style, chord, 52, 69)
    if n == "ballad":  # soft strums on 1 and 3, each string a little later
        strings = tones + [tones[0] + 12]
        return [("guitar", b + 0.03 * k, 1.8, t, 58) for b in (0.0, 2.0) for k, t in enumerate(strings)]
    if n == "bossa":  # thumb on the root, syncopated chord plucks, a two-bar figure
        hits = (0.0, 1.5, 3.0) if bar % 2 == 0 else (0.5, 2.0, 3.5)
        thumb = _bass_root(style, chord) + 12
        out = [("guitar", b, 0.4, t, 72) for b in hits for t in tones]
        return out + [("guitar", 0.0, 1.0, thumb, 80), ("guitar", 2.0, 1.0, thumb + 7, 76)]
    return [("guitar", 0.25 * i, 0.2, tones[i % len(tones)] + 12 * (i // 8 % 2), 70 if i % 4 == 0 else 55)
            for i in range(16)]


def _drums(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator):
    n = style.name
    if n == "ballad":
        hits = [(KICK, 0.0, 85), (KICK, 2.5, 70), (STICK, 1.0, 75), (STICK, 3.0, 75)]
        hits += [(HAT, 0.5 * i, 50 if i % 2 else 60) for i in range(8)]
    elif n == "pop":
        hits = [(KICK, 0.0, 100), (KICK, 2.0, 95), (KICK, 2.5, 80), (SNARE, 1.0, 100), (SNARE, 3.0, 100)]
        hits += [(OPEN_HAT if kind == "chorus" and i % 2 else HAT, 0.5 * i, 80 if i % 2 == 0 else 62) for i in range(8)]
    elif n == "bossa":
        clave = (0.0, 1.5, 3.0) if bar % 2 == 0 else (1.0, 2.5)
        hits = [(STICK, b, 80) for b in clave]
        hits += [(KICK, b, 70) for b in (0.0, 1.5, 2.0, 3.5)]
        hits += [(HAT, 0.5 * i, 60 if i % 2 == 0 else 45) for i in range(8)]
        hits += [(SHAKER, 0.25 * i, 40 if i % 2 else 50) for i in range(16)]
    else:
        hits = [(KICK, float(b), 110) for b in range(4)] + [(CLAP, 1.0, 95), (CLAP, 3.0, 95)]
        hits += [(OPEN_HAT, b + 0.5, 75) for b in range(4)] + [(HAT, 0.25 * i, 45) for i in range(16) if i % 2]
    return [("drums", b, 0.25, key, vel) for key, b, vel in hits]


def _fill(style: Style) -> list[tuple[str, float, float, int, int]]:
    """A snare run over the last two beats of a section: the cue a singer enters on."""
    step = 0.5 if style.name == "ballad" else 0.25
    return [("drums", 2.0 + step * i, 0.2, SNARE, 60 + 5 * i) for i in range(int(2 / step))]


LEAD_RHYTHMS = (
    ((0, 1), (1, 0.5), (1.5, 0.5), (2, 2)),
    ((0, 1.5), (1.5, 0.5), (2, 1), (3, 1)),
    ((0, 0.5), (0.5, 0.5), (1, 1), (2, 1), (3, 1)),
    ((0, 2), (2, 1), (3, 0.5), (3.5, 0.5)),
)


def _lead(style: Style, chord: Chord, bar: int, kind: str, rng: np.random.Generator, state: list[int]):
    """A melody that walks the scale and lands on chord tones on the strong beats."""
    chord_pcs = {(style.key + chord[0] + iv) % 12 for iv in chord[1]}
    scale = [style.key + 12 + o + 12 * k for k in (-1, 0, 1) for o in style.scale]
    scale = [p for p in scale if 65 <= p <= 86]
    out = []
    for start, length in LEAD_RHYTHMS[int(rng.integers(len(LEAD_RHYTHMS)))]:
        i = min(range(len(scale)), key=lambda j: abs(scale[j] - state[0]))
        i = int(np.clip(i + rng.integers(-2, 3), 0, len(scale) - 1))
        if start % 2 == 0:  # strong beat: nearest chord tone
            tones = [j for j in range(len(scale)) if scale[j] % 12 in chord_pcs]
            i = min(tones, key=lambda j: abs(j - i))
        state[0] = scale[i]
        out.append(("lead", float(start), length * 0.95, scale[i], 88 if start % 2 == 0 else 76))
    return out


def arrange(style: Style, parts: tuple[Part, ...], seed: int) -> tuple[list[Note], float]:
    """Every note of the song, and its length in beats (the last chord rings on after it)."""
    rng = np.random.default_rng(seed)
    progression = style.progressions[int(rng.integers(len(style.progressions)))]
    lead_state = [style.key + 12 + style.scale[2]]
    notes: list[Note] = []
    bar_index = 0
    patterns = (_piano, _bass, _pad, _guitar, _drums)
    for p_index, part in enumerate(parts):
        loud = LOUDNESS[part.kind]
        last_part = p_index == len(parts) - 1
        for b in range(part.bars):
            chord = progression[bar_index % len(progression)]
            origin = bar_index * BEATS_PER_BAR
            final_bar = last_part and b == part.bars - 1
            if final_bar:  # one held chord with a crash: the song ends
                raw = [("pad", 0.0, 4.0, t, 70) for t in _voicing(style, chord, 60, 77)]
                raw += [("piano", 0.0, 4.0, t, 75) for t in _voicing(style, chord, 55, 72)]
                raw += [("bass", 0.0, 4.0, _bass_root(style, chord), 90), ("drums", 0.0, 1.0, CRASH, 95),
                        ("drums", 0.0, 1.0, KICK, 100), ("lead", 0.0, 4.0, lead_state[0], 80)]
            else:
                raw = [n for pattern in patterns for n in pattern(style, chord, b, part.kind, rng)]
                if part.kind in LEAD_PARTS:
                    raw += _lead(style, chord, b, part.kind, rng, lead_state)
                if b == 0 and part.kind != "intro":
                    raw.append(("drums", 0.0, 1.0, CRASH, 90))
                if b == part.bars - 1 and not last_part and part.bars > 1:
                    raw = [n for n in raw if not (n[0] == "drums" and n[1] >= 2.0 and n[3] != KICK)] + _fill(style)
            for track, beat, length, pitch, velocity in raw:
                jitter = 0.0 if track == "drums" and beat == 0 else float(rng.normal(0, 0.01))
                vel = int(np.clip(round(velocity * loud + rng.integers(-6, 7)), 1, 127))
                notes.append(Note(track, max(0.0, origin + beat + jitter), length, int(pitch), vel))
            bar_index += 1
    return notes, float(bar_index * BEATS_PER_BAR)


def write_midi(style: Style, notes: list[Note], path: Path, *, end_beat: float) -> Path:
    """A type-1 MIDI file: one track per instrument, drums on channel 10, ending at ``end_beat``."""
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    tempo_track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(style.bpm), time=0)])
    midi.tracks.append(tempo_track)
    channels = {name: i for i, (name, _) in enumerate(style.programs)} | {"drums": DRUMS}
    programs = dict(style.programs)
    levels = {name: (vol, pan) for name, vol, pan in style.mix}
    end_tick = round(end_beat * TICKS)
    for name, channel in channels.items():
        vol, pan = levels[name]
        head = [mido.Message("control_change", channel=channel, control=7, value=vol),
                mido.Message("control_change", channel=channel, control=10, value=pan),
                mido.Message("control_change", channel=channel, control=91, value=40)]
        if name in programs:
            head.append(mido.Message("program_change", channel=channel, program=programs[name]))
        events = []
        for n in notes:
            if n.track != name:
                continue
            on, off = round(n.beat * TICKS), round((n.beat + n.length) * TICKS)
            events.append((on, 1, mido.Message("note_on", channel=channel, note=n.pitch, velocity=n.velocity)))
            events.append((min(off, end_tick), 0, mido.Message("note_off", channel=channel, note=n.pitch, velocity=0)))
        events.sort(key=lambda e: (e[0], e[1], e[2].note))
        track = mido.MidiTrack(head)
        now = 0
        for tick, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        midi.tracks.append(track)
    tempo_track.append(mido.MetaMessage("end_of_track", time=end_tick))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def find_soundfont(environ: dict[str, str] | None = None) -> Path:
    """FluidR3 GM at its Debian path (or ``$TFT_SOUNDFONT``); a clear error when it is absent."""
    env = os.environ if environ is None else environ
    path = Path(env.get("TFT_SOUNDFONT") or SOUNDFONT)
    if not path.is_file():
        raise ToolMissing(
            f"the General MIDI soundfont {path} is missing: install the Debian package "
            "fluid-soundfont-gm (`make install` does), or point TFT_SOUNDFONT at a .sf2 file"
        )
    return path


def render(midi: Path, seconds: float, *, soundfont: Path | None = None, rate: int = RATE) -> np.ndarray:
    """Render a MIDI file with fluidsynth to float32 stereo, shape (samples, 2), exactly ``seconds`` long."""
    import soundfile as sf

    sf2 = soundfont or find_soundfont()
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ToolMissing("fluidsynth is not installed: apt-get install fluidsynth (`make install` does)")
    with tempfile.TemporaryDirectory(prefix="tft-render-") as tmp:
        out = Path(tmp) / "band.wav"
        done = subprocess.run(
            [exe, "-n", "-i", "-q", "-r", str(rate), "-g", "0.5", "-O", "float", "-T", "wav",
             "-o", "synth.cpu-cores=1", "-F", str(out), str(sf2), str(midi)],
            capture_output=True, text=True,
        )
        if done.returncode != 0 or not out.is_file():
            raise ToolMissing(f"fluidsynth failed on {midi}: {(done.stderr or done.stdout).strip()[-400:]}")
        audio, got_rate = sf.read(out, dtype="float32", always_2d=True)
    if got_rate != rate:
        raise ToolMissing(f"fluidsynth rendered at {got_rate} Hz instead of {rate} Hz")
    n = int(round(seconds * rate))
    if audio.shape[0] < n:
        audio = np.concatenate([audio, np.zeros((n - audio.shape[0], audio.shape[1]), np.float32)])
    return np.ascontiguousarray(audio[:n, :2])
