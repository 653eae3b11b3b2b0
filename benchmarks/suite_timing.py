"""Suite 3: line-onset accuracy. Known clips placed at known offsets, with gaps and a music bed;
the mean absolute error of SRT and LRC line onsets against the truth."""

from __future__ import annotations

import re

from .common import data_dir, Plan, log, run_in_process

SENTENCES = (
    "The train to the coast leaves at nine in the morning.",
    "Please remember to close the window before you go.",
    "Our neighbours planted a cherry tree in their garden.",
    "The library will be closed on the first day of May.",
    "She played the piano every evening after dinner.",
    "We found an old map in the attic of the house.",
)


def build_tracks(count: int) -> list[dict]:
    """Track i: six sentences at known offsets with 2-5 s gaps; odd tracks over a music bed."""
    import numpy as np

    from corpus import synth
    from corpus.speech import espeak, load16k

    tracks = []
    for i in range(count):
        rng = np.random.default_rng(100 + i)
        clips, t = [], 1.5
        for j, sentence in enumerate(SENTENCES):
            voice = load16k(espeak(sentence, data_dir() / f"timing_s{j}.wav"))
            clips.append((round(t, 3), voice, sentence))
            t += voice.size / 16000 + float(rng.uniform(2.0, 5.0))
        total = t + 1.0
        track = synth.place([(o, v) for o, v, _ in clips], total)
        bed = i % 2 == 1
        if bed:
            track = synth.mix_at_snr(track, synth.instrumental(total, bpm=90, seed=i), 12)
        path = data_dir() / f"timing_track{i}{'_bed' if bed else ''}.wav"
        synth.write_wav(path, track)
        tracks.append({"path": str(path), "onsets": [o for o, _, _ in clips], "texts": [s for _, _, s in clips],
                       "music_bed": bed})
    return tracks


def _srt_onsets(srt_text: str) -> list[float]:
    out = []
    for m in re.finditer(r"^(\d\d):(\d\d):(\d\d),(\d{3}) -->", srt_text, re.M):
        out.append(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1000)
    return out


def onset_errors(truth: list[float], found: list[float]) -> list[float]:
    """For each true onset, the distance to the nearest line onset."""
    return [min((abs(f - t) for f in found), default=float("inf")) for t in truth]


def run(plan: Plan, models: list[str]) -> dict:
    from engine.types import Segment, Transcript
    from engine.writers import LrcWriter, SrtWriter

    tracks = build_tracks(plan.timing_tracks)
    out = {"tracks": [{"path": t["path"], "music_bed": t["music_bed"], "lines": len(t["onsets"])} for t in tracks],
           "models": {}}
    for model in models:
        log(f"timing: {model}")
        per = {}
        for name, cfg in {"ours (default)": {"mode": "ours", "options": {}},
                          "raw faster-whisper": {"mode": "raw"}}.items():
            res = run_in_process({"model": model, "files": [{"path": t["path"]} for t in tracks], "repeats": 1, **cfg})
            srt_err, lrc_err = [], []
            for track, r in zip(tracks, res["results"]):
                segments = tuple(Segment(i, s, e, txt) for i, (s, e, txt) in enumerate(r["segments"]))
                t = Transcript(segments, "en", 1.0, 0.0, model)
                srt_err += onset_errors(track["onsets"], _srt_onsets(SrtWriter().render(t)))
                lrc = LrcWriter(word_level=False).render(t)
                lrc_onsets = [int(m[1]) * 60 + float(m[2]) for m in re.finditer(r"^\[(\d+):(\d\d\.\d\d)\]\S", lrc, re.M)]
                lrc_err += onset_errors(track["onsets"], lrc_onsets)
            per[name] = {"srt_mae": sum(srt_err) / len(srt_err), "lrc_mae": sum(lrc_err) / len(lrc_err),
                         "srt_errors": srt_err, "lines": len(srt_err)}
        out["models"][model] = per
    return out
