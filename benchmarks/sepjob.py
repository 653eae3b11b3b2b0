"""One separation variant in its own process (peak memory is its own). Also runs on the GPU
machine, where only torch is installed: it imports demucs from the repo's carried wheel path
and nothing from faster-whisper.

``python -m benchmarks.sepjob SPEC.json OUT.json``; variants:

* ``apply_model_default``: ``demucs.apply.apply_model(model, mix)`` with its defaults
  (shifts=1, split=True, overlap=0.25), one segment at a time;
* ``apply_model_shifts0``: the same with ``shifts=0``, the exact computation ours batches;
* ``ours``: ``engine.separation.separate_array`` (batched, streamed), with a correctness
  check against ``apply_model_shifts0`` on the first ``check_seconds``;
* ``ours_file``: ``engine.separation.separate_file``, file in, 16 kHz vocal stem out;
* ``demucs_cli``: ``python -m demucs.separate`` with its defaults on the same file;
* ``spleeter``: ``engine.separation.spleeter.separate_array`` (Spleeter 2-stem, streamed);
* ``spleeter_file``: ``separate_file`` with Spleeter, file in, 16 kHz stem out (its peak RSS
  on a long track is the bounded-memory figure).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


class AnonymousPeak:
    """Peak anonymous resident memory (RssAnon, sampled every 50 ms). The peak RSS also counts
    the pages of memory-mapped files (the mix, the stem being written), which the kernel can
    drop at will: it grows with the track while the process's own memory does not."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            try:
                with open("/proc/self/status") as fh:
                    kb = next(int(line.split()[1]) for line in fh if line.startswith("RssAnon:"))
                self.peak_mb = max(self.peak_mb, kb / 1024)
            except (OSError, StopIteration):
                return  # not Linux: no figure
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> "AnonymousPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _load_mix(spec: dict):
    """The stereo 44.1 kHz mix: read from ``track`` or generated (``synthetic_seconds``; the GPU
    machine has neither soundfile nor ffmpeg, only numpy and torch)."""
    import numpy as np

    if spec.get("synthetic_seconds"):
        from corpus.synth import instrumental

        seconds = float(spec["synthetic_seconds"])
        left = instrumental(seconds, rate=44100, seed=5)
        right = instrumental(seconds, rate=44100, seed=6)
        return np.stack([left, right]).astype(np.float32)
    from scipy.io import wavfile

    rate, data = wavfile.read(spec["track"])
    assert rate == 44100, rate
    if data.dtype.kind == "i":
        data = data.astype(np.float32) / np.iinfo(data.dtype).max
    mix = np.ascontiguousarray(np.atleast_2d(data.T).astype(np.float32))
    if mix.shape[0] == 1:
        mix = np.concatenate([mix, mix])
    if spec.get("seconds"):
        mix = mix[:, : int(spec["seconds"] * rate)]
    return mix


def run(spec: dict) -> dict:
    sys.path.insert(0, str(REPO))
    import torch

    variant, device = spec["variant"], spec.get("device", "cpu")
    repeats = spec.get("repeats", 1)
    seconds: list[float] = []
    extra: dict = {}
    if variant == "demucs_cli":
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "demucs.separate", "-n", spec["name"], "--repo", spec["repo"],
                                "-d", device, "-o", out, spec["track"]], check=True, capture_output=True)
                seconds.append(time.perf_counter() - t0)
        return {"seconds": seconds, "audio_seconds": _load_mix(spec).shape[1] / 44100,
                "peak_rss_mb": _peak_rss_mb(children=True), "peak_gpu_mb": None}
    if variant.startswith("spleeter"):
        with AnonymousPeak() as anon:
            out = _spleeter(spec, device, repeats)
        return {**out, "peak_anon_mb": anon.peak_mb or None}
    from demucs.apply import apply_model

    from engine.separation.base import SeparationOptions, SeparatorModel, separate_file
    from engine.separation.demucs import load_model, separate_array

    model = load_model(spec["repo"], spec["name"], device, bool(spec.get("compile")))
    options = SeparationOptions(batch_size=spec.get("batch", 0), device=device,
                                precision=spec.get("precision", "float32"), compile=bool(spec.get("compile")))
    mix = _load_mix(spec)
    audio_seconds = mix.shape[1] / 44100
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if variant.startswith("apply_model"):
        shifts = 1 if variant == "apply_model_default" else 0
        tensor = torch.from_numpy(mix)[None].to(device)
        with torch.inference_mode():
            for _ in range(repeats):
                t0 = time.perf_counter()
                apply_model(model, tensor, shifts=shifts, split=True, overlap=0.25, device=device)
                sync()
                seconds.append(time.perf_counter() - t0)
    elif variant == "ours":
        if spec.get("warmup"):
            separate_array(model, mix[:, : 44100 * 30], options=options, sink=lambda block: None)
            sync()
        for _ in range(repeats):
            t0 = time.perf_counter()
            separate_array(model, mix, options=options, sink=lambda block: None)
            sync()
            seconds.append(time.perf_counter() - t0)
        check = int(spec.get("check_seconds", 10) * 44100)
        if check:
            part = mix[:, :check]
            ours = separate_array(model, part, options=options)
            with torch.inference_mode():
                ref = apply_model(model, torch.from_numpy(part)[None].to(device), shifts=0, split=True, overlap=0.25,
                                  device=device)[0, list(model.sources).index("vocals")].float().cpu().numpy()
            extra["max_abs_diff"] = float(abs(ours - ref).max())
            extra["reference_peak"] = float(abs(ref).max())
    elif variant == "ours_file":
        with tempfile.TemporaryDirectory():
            for _ in range(repeats):
                t0 = time.perf_counter()
                separate_file(spec["track"], SeparatorModel(spec["name"], "demucs", Path(spec["repo"]),
                                                            load_name=spec["name"]), options=options, cache_dir=None)
                seconds.append(time.perf_counter() - t0)
    else:
        raise SystemExit(f"unknown variant {variant}")
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"seconds": seconds, "audio_seconds": audio_seconds, "peak_rss_mb": _peak_rss_mb(),
            "peak_gpu_mb": peak_gpu, **extra}


def _spleeter(spec: dict, device: str, repeats: int) -> dict:
    import torch

    from engine.separation.base import SeparationOptions, SeparatorModel, separate_file
    from engine.separation.spleeter import _load, separate_array

    options = SeparationOptions(batch_size=spec.get("batch", 0), device=device,
                                precision=spec.get("precision", "float32"))
    seconds: list[float] = []

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if spec["variant"] == "spleeter_file":
        model = SeparatorModel("spleeter-2stems", "spleeter", Path(spec["weights"]))
        for _ in range(repeats):  # into a fresh cache each time, as `tft transcribe` and the server do
            with tempfile.TemporaryDirectory() as cache:
                t0 = time.perf_counter()
                stem = separate_file(spec["track"], model, options=options, cache_dir=Path(cache))
                seconds.append(time.perf_counter() - t0)
                audio_seconds = stem.audio.size / 16000
                del stem
    else:
        nets = _load(spec["weights"], device)
        mix = _load_mix(spec)
        audio_seconds = mix.shape[1] / 44100
        if device.startswith("cuda"):
            separate_array(nets, mix[:, : 44100 * 30], options=options, sink=lambda block: None)  # warm-up
            sync()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeats):
            t0 = time.perf_counter()
            separate_array(nets, mix, options=options, sink=lambda block: None)
            sync()
            seconds.append(time.perf_counter() - t0)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"seconds": seconds, "audio_seconds": audio_seconds, "peak_rss_mb": _peak_rss_mb(), "peak_gpu_mb": peak_gpu}


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
