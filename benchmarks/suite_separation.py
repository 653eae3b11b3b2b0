"""Suite 4: separation throughput and memory: Spleeter 2-stem (the offline default) and our
batched streaming htdemucs against demucs' own ``apply_model`` and command line.

On the CPU (here) every variant runs on the same track and model in its own process:
demucs' ``apply_model`` default (shifts=1) and with shifts=0 (the computation ours batches),
ours in memory and file-to-stem, and the ``demucs`` command line default. The model is
the real htdemucs architecture with random weights (no weights are downloadable here; the
cost of a forward pass does not depend on the values of the weights). CUDA figures come
from benchmarks/gpu.sh on a GPU machine.
"""

from __future__ import annotations

from .common import data_dir, Plan, log, run_in_process


def prepare(plan: Plan) -> tuple[str, str, str]:
    """A stereo 44.1 kHz song-like track and a demucs repository; returns (track, repo, name)."""
    import numpy as np

    from corpus import demucs_model, synth
    from corpus.speech import espeak, load16k

    name = "htdemucs-random" if plan.separation_full_architecture else "tiny-htdemucs"
    repo = data_dir() / f"demucs-{name}"
    if not any(repo.glob("*.th")):
        demucs_model.build(repo, name=name, architecture=demucs_model.FULL if plan.separation_full_architecture else None)
    seconds = plan.separation_seconds
    track = data_dir() / f"separation_track_{int(seconds)}s.wav"
    if not track.exists():
        from scipy.signal import resample_poly

        voice = load16k(espeak("We will sing until the evening, and the stars come out again, over the hills.",
                               data_dir() / "separation_voice.wav"))
        bed16 = synth.instrumental(seconds, bpm=100, seed=9)
        mix16 = synth.place([(2.0, voice), (seconds / 2, voice)], seconds) + bed16 * 0.5
        mix = resample_poly(mix16, 441, 160).astype(np.float32)
        import soundfile as sf

        sf.write(track, np.stack([mix, mix * 0.9], axis=1), 44100, subtype="PCM_16")
    return str(track), str(repo), name


VARIANTS = {
    "demucs apply_model default (shifts=1)": {"variant": "apply_model_default"},
    "demucs apply_model shifts=0": {"variant": "apply_model_shifts0"},
    "ours, batched streaming (in memory)": {"variant": "ours", "batch": 0, "check_seconds": 10},
    "ours, file to 16 kHz vocal stem": {"variant": "ours_file", "batch": 0},
    "demucs CLI default": {"variant": "demucs_cli"},
}


def long_track(minutes: float) -> str:
    """A long FLAC (the constructed songs repeated) for the bounded-memory figure."""
    import numpy as np
    import soundfile as sf

    from corpus.songs import song_corpus

    path = data_dir() / f"separation_long_{int(minutes)}min.flac"
    if not path.exists():
        songs = song_corpus(data_dir() / "songs", quick=True)
        audio = np.concatenate([sf.read(s.path, dtype="float32")[0] for s in songs])
        reps = int(np.ceil(minutes * 60 * 44100 / audio.shape[0]))
        with sf.SoundFile(path, "w", 44100, audio.shape[1], format="FLAC") as fh:
            for _ in range(reps):
                fh.write(audio)
    return str(path)


def _spleeter_variants(plan: Plan, track: str) -> dict:
    from models import ModelStore, default_store_dir
    from models.spleeter import weights_dir

    weights = weights_dir(ModelStore(default_store_dir()))
    if weights is None:
        log("separation: spleeter weights missing (tft models pull spleeter-2stems); skipped")
        return {}
    minutes = 60 if plan.name == "full" else 10 if plan.name == "quick" else 1
    short = {"weights": str(weights), "track": track}
    return {
        "spleeter 2-stem, streamed (in memory)": {"variant": "spleeter", **short},
        "spleeter 2-stem, file to 16 kHz vocal stem": {"variant": "spleeter_file", **short},
        f"spleeter 2-stem, file to stem, {minutes}-minute track": {"variant": "spleeter_file", "weights": str(weights),
                                                                   "track": long_track(minutes), "repeats": 1},
    }


def run(plan: Plan) -> dict:
    track, repo, name = prepare(plan)
    out = {"device": "cpu", "model": name, "architecture": "htdemucs (random weights)"
           if plan.separation_full_architecture else "tiny HTDemucs (random weights)",
           "track": track, "variants": {}}
    variants = {**_spleeter_variants(plan, track),
                **{label: {"repo": repo, "name": name, "track": track, **cfg} for label, cfg in VARIANTS.items()}}
    for label, cfg in variants.items():
        log(f"separation (cpu): {label}")
        res = run_in_process({"module": "benchmarks.sepjob", "device": "cpu",
                              "repeats": max(1, plan.repeats - 1), **cfg})
        minutes = res["audio_seconds"] / 60
        res["seconds_per_minute"] = [s / minutes for s in res["seconds"]]
        out["variants"][label] = res
    return out
