"""One music-path setting on a chosen part of the song corpus, in this process: how the
numbers in the README's "Music mode" table were measured (the full songs suite of
`tft bench` runs every configuration on every song, which takes hours on two cores).

    python -m benchmarks.songs_subset --languages en --ratios 0,-6 --music-source best

Prints WER, words over instrumental stretches and line-onset error per voice-to-band
ratio, song by song and pooled, scored exactly as the songs suite scores them; ``--out``
keeps the rows as JSON. Songs are rendered (fluidsynth) into the bench's data directory
on first use and reused after.

The corpus's songs last about a minute; a record runs three or four. ``--joined N`` plays
the first N chosen songs of each language and ratio end to end as one track (a 4-minute song with three
breaks) and scores that track as one row:

    python -m benchmarks.songs_subset --languages en --ratios 0,-6,-12 --joined 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .common import data_dir
from .metrics import corpus_rate
from .suite_songs import onset_errors, words_over_instrumental


def _rows(args: argparse.Namespace) -> list[dict]:
    from corpus.songs import build_song, corpus_specs
    from engine.pipeline import PipelineOptions, Resources, run
    from engine.transcription import load_model
    from models import ModelStore, default_store_dir, resolve_separator, resolve_whisper

    ratios = {float(r) for r in args.ratios.split(",")}
    specs = [s for s in corpus_specs() if s.language in args.languages.split(",") and s.ratio_db in ratios
             and args.match in s.name]
    store = ModelStore(default_store_dir())
    whisper = resolve_whisper(args.model, store)
    model = load_model(whisper.name, whisper.path)
    separator = resolve_separator(args.separator, store)
    resources = Resources(whisper.name, whisper.path, separator=separator.model,
                          separator_missing=separator.missing, cache_dir=data_dir() / "songs-cache")
    options = PipelineOptions(music_source=args.music_source, separator=args.separator)
    tracks = [_track(build_song(spec, data_dir() / "songs")) for spec in specs]
    if args.joined:
        kinds = sorted({(t["language"], t["ratio_db"]) for t in tracks}, key=lambda k: (k[0], -k[1]))
        tracks = [joined([t for t in tracks if (t["language"], t["ratio_db"]) == kind][: args.joined])
                  for kind in kinds]
    rows = []
    for track in tracks:
        t = run(track["path"], options, resources, model=model)
        segments = [(s.start, s.end, s.text) for s in t.segments]
        reference = " ".join(text for _, _, text in track["lines"])
        rows.append({"name": track["name"], "language": track["language"], "ratio_db": track["ratio_db"],
                     "reference": reference, "hypothesis": t.text, "language_heard": t.language,
                     "wer": corpus_rate([(reference, t.text, track["language"])]),
                     "instrumental_words": words_over_instrumental(segments, track["instrumental"]),
                     "onset_errors": onset_errors(track["lines"], segments),
                     "transcribe_s": t.timings.get("transcribe")})
        print(f"{track['name']:34s} WER {rows[-1]['wer']:6.1%}  instrumental words {rows[-1]['instrumental_words']}"
              f"  heard as {t.language}  transcribe {t.timings.get('transcribe', 0):.1f} s", flush=True)
    return rows


def _track(song) -> dict:
    return {"name": song.name, "path": str(song.path), "language": song.language, "ratio_db": song.ratio_db,
            "lines": [(line.start, line.end, line.text) for line in song.lines],
            "instrumental": [list(r) for r in song.instrumental]}


def joined(tracks: list[dict]) -> dict:
    """``tracks`` end to end as one FLAC in the bench's data directory (written once), with
    their lines and instrumental stretches moved to the joined timeline."""
    import hashlib

    import numpy as np
    import soundfile as sf

    key = hashlib.sha256(json.dumps([t["path"] for t in tracks]).encode()).hexdigest()[:10]
    path = data_dir() / "songs" / f"joined-{key}.flac"
    read = [sf.read(t["path"], dtype="int16", always_2d=True) for t in tracks]
    rate = read[0][1]
    if any(r != rate for _, r in read):
        raise ValueError("songs to join must share one sample rate")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.flac")
        sf.write(tmp, np.concatenate([a for a, _ in read]), rate, subtype="PCM_16", format="FLAC")
        tmp.replace(path)
    lines, instrumental, at = [], [], 0.0
    for track, (samples, _) in zip(tracks, read):
        lines += [(a + at, b + at, text) for a, b, text in track["lines"]]
        instrumental += [[a + at, b + at] for a, b in track["instrumental"]]
        at += samples.shape[0] / rate
    return {"name": f"{len(tracks)} {tracks[0]['language']} songs joined, {tracks[0]['ratio_db']:+g} dB",
            "path": str(path),
            "language": tracks[0]["language"], "ratio_db": tracks[0]["ratio_db"], "lines": lines,
            "instrumental": instrumental}


def pooled(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for ratio in sorted({r["ratio_db"] for r in rows}, reverse=True):
        group = [r for r in rows if r["ratio_db"] == ratio]
        onsets = [e for r in group for e in r["onset_errors"] if e != float("inf")]
        out[f"{ratio:+g} dB"] = {
            "songs": len(group),
            "wer": corpus_rate([(r["reference"], r["hypothesis"], r["language"]) for r in group]),
            "instrumental_words": sum(r["instrumental_words"] for r in group),
            "onset_mae_s": sum(onsets) / len(onsets) if onsets else None,
            "lines_without_onset": sum(1 for r in group for e in r["onset_errors"] if e == float("inf")),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.songs_subset", description=__doc__.split("\n\n")[0])
    p.add_argument("--languages", default="en", help="comma-separated corpus languages (en, fr, es, de, it)")
    p.add_argument("--ratios", default="0,-6", help="comma-separated voice-to-band ratios in dB (6, 0, -6, -12)")
    p.add_argument("--music-source", default="auto", choices=["auto", "mix", "vocals", "blend", "best"])
    p.add_argument("--separator", default="auto", choices=["auto", "spleeter", "htdemucs"])
    p.add_argument("--match", default="", help="only songs whose name holds this text")
    p.add_argument("--joined", type=int, default=0, metavar="N",
                   help="play the first N chosen songs of each language and ratio end to end as one track")
    p.add_argument("--model", default="base")
    p.add_argument("--out", type=Path, help="write the rows and the pooled figures as JSON here")
    args = p.parse_args(argv)
    started = time.perf_counter()
    rows = _rows(args)
    summary = pooled(rows)
    for key, value in summary.items():
        mae = value["onset_mae_s"]
        print(f"{key}: {value['songs']} songs, WER {value['wer']:.1%}, {value['instrumental_words']} words over "
              f"instrumentals, line-onset error {'-' if mae is None else f'{mae:.3f} s'}")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "pooled": summary}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
