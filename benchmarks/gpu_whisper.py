"""Whisper on a GPU: real-time factor and peak device memory per setup, in one short call.

Run by ``benchmarks/gpu.sh`` on the lent GPU machine (a CPU dry run: ``--device cpu``).
Setups: each model x compute type x decoding path, on the bench's long-form file:

* ``sequential``: our sequential path (``batch_size`` 1), as faster-whisper's ``transcribe``;
* ``packed``: our packed path (``transcription.packed_batch`` windows per call on CUDA);
* ``raw batched``: faster-whisper's ``BatchedInferencePipeline`` (batch 16), the baseline.

Every setup is timed after a warm-up on the first 30 s (CUDA kernels, cuDNN autotuning),
from audio in memory to text; model load is timed separately. Peak memory is the device's
used memory (all processes) sampled every 50 ms, minus what was used before the model
loaded. The JSON is rewritten after every setup, so a run cut short keeps its figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> np.ndarray:
    """16 kHz mono 16-bit WAV to float32, with the standard library (no PyAV needed)."""
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0


class MemorySampler:
    """Device memory in use (MiB), sampled in a thread: torch's view of the whole device when
    torch is there, else nvidia-smi. Peak since ``reset``."""

    def __init__(self, device: str) -> None:
        self.enabled = device.startswith("cuda")
        self.peak = 0.0
        self._stop = threading.Event()
        self._read = self._reader() if self.enabled else None
        self.baseline = self._read() if self._read else 0.0
        if self._read:
            threading.Thread(target=self._loop, daemon=True).start()

    def _reader(self):
        try:
            import torch

            if torch.cuda.is_available():
                def used() -> float:
                    free, total = torch.cuda.mem_get_info()
                    return (total - free) / 2**20
                return used
        except ImportError:
            pass

        def smi() -> float:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout
            return float(out.split()[0]) if out.strip() else 0.0
        return smi

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._read())
            except Exception:  # noqa: BLE001 - a missed sample is not a failed benchmark
                pass
            time.sleep(0.05)

    def reset(self) -> None:
        if self._read:
            self.baseline = self._read()
            self.peak = self.baseline

    def peak_mib(self) -> float | None:
        return round(self.peak - self.baseline, 1) if self.enabled else None


@dataclass
class Bench:
    """What every setup is timed on, and the results so far (rewritten after each setup)."""

    args: argparse.Namespace
    audio: np.ndarray
    spans: tuple
    reference: str | None
    sampler: MemorySampler
    results: dict
    started: float

    @property
    def duration(self) -> float:
        return self.audio.size / 16000

    def save(self) -> None:
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.results, indent=1))

    def skip(self, why: str) -> None:
        self.results["skipped"].append(why[:400])
        print(self.results["skipped"][-1], flush=True)
        self.save()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--audio", type=Path, required=True, help="16 kHz mono WAV (the bench's long-form file)")
    parser.add_argument("--reference", type=Path, help="its reference text, for a WER column")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="base,tiny.en")
    parser.add_argument("--compute", default="float16,int8_float16")
    parser.add_argument("--paths", default="packed,sequential,raw batched")
    parser.add_argument("--seconds", type=float, default=0.0, help="use only the first N seconds (a smoke test)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds; later setups are skipped past it")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    started = time.monotonic()

    from engine import vad
    from models import ModelStore, default_store_dir, resolve_whisper

    audio = read_wav(args.audio)
    if args.seconds:
        audio = audio[: int(args.seconds * 16000)]
    reference = args.reference.read_text() if args.reference and args.reference.is_file() else None
    if args.seconds:
        reference = None  # a cut file has no reference to compare with
    results: dict = {"device": args.device, "audio_seconds": audio.size / 16000, "setups": [], "skipped": []}
    try:
        import torch

        if args.device.startswith("cuda") and torch.cuda.is_available():
            results["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    bench = Bench(args, audio, vad.detect_speech(audio), reference, MemorySampler(args.device), results, started)
    store = ModelStore(default_store_dir())
    for name in args.models.split(","):
        resolved = resolve_whisper(name, store)
        for compute in args.compute.split(","):
            if time.monotonic() - started > args.budget:
                results["skipped"].append(f"{name} {compute}: time budget")
                continue
            _time_model(bench, name, resolved, compute)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    bench.save()
    print(f"wrote {args.out} in {results['wall_seconds']:.0f} s")
    return 0


def _time_model(bench: Bench, name: str, resolved, compute: str) -> None:
    """Load one model at one compute type (timed), then time each decoding path on it."""
    from engine.transcription import load_model

    bench.sampler.reset()
    t0 = time.perf_counter()
    try:
        model = load_model(resolved.name, resolved.path, device=bench.args.device, compute_type=compute)
    except Exception as exc:  # noqa: BLE001 - record and go on with the next setup
        bench.skip(f"{name} {compute}: load failed: {type(exc).__name__}: {exc}")
        return
    load_s = time.perf_counter() - t0
    for path in bench.args.paths.split(","):
        _time_path(bench, model, name, compute, path, load_s)
    del model


def _time_path(bench: Bench, model, name: str, compute: str, path: str, load_s: float) -> None:
    """One decoding path, after a warm-up on the first 30 s: seconds, RTF, peak memory, WER."""
    from engine.transcription import DecodeOptions, packed_batch, transcribe

    row = {"model": name, "compute_type": model.compute_type, "device": model.device, "path": path,
           "load_seconds": round(load_s, 3)}
    try:
        run = _runner(model, path, bench.spans, bench.args.device, packed_batch, DecodeOptions, transcribe)
        run(bench.audio[: 30 * 16000])  # warm-up
        t0 = time.perf_counter()
        text = run(bench.audio)
        seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        bench.skip(f"{name} {compute} {path}: {type(exc).__name__}: {exc}")
        return
    row.update(seconds=round(seconds, 3), rtf=round(seconds / bench.duration, 5),
               peak_memory_mib=bench.sampler.peak_mib())
    if bench.reference:
        try:
            from benchmarks.metrics import corpus_rate

            row["wer"] = round(corpus_rate([(bench.reference, text, "en")]), 4)
        except ImportError:
            pass
    bench.results["setups"].append(row)
    print(f"{name:8} {model.compute_type:13} {path:12} load {load_s:5.1f} s  RTF {row['rtf']:.4f}  "
          f"peak {row['peak_memory_mib']} MiB  WER {row.get('wer', '-')}", flush=True)
    bench.save()


def _runner(model, path: str, spans, device: str, packed_batch, DecodeOptions, transcribe):
    """audio -> text for one decoding path."""
    if path == "raw batched":
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(model.whisper)

        def raw(audio: np.ndarray) -> str:
            segments, _ = pipeline.transcribe(audio, beam_size=5, batch_size=16, language="en")
            return " ".join(s.text.strip() for s in segments)
        return raw
    batch = 1 if path == "sequential" else packed_batch(device)
    options = DecodeOptions(language="en", batch_size=batch, timestamps="segments")

    def ours(audio: np.ndarray) -> str:
        usable = tuple(s for s in spans if s.start < audio.size / 16000)
        decoded = transcribe(model, audio, usable, options)
        return " ".join(s.text.strip() for s in decoded.segments)
    return ours


if __name__ == "__main__":
    sys.exit(main())
