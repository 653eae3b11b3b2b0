"""Separation throughput on a GPU: our batched overlap-add against demucs' apply_model.

Run by benchmarks/gpu.sh on the lent GPU machine (one H200 here), within one 10-minute
call and with at most 64 MiB carried (the demucs and julius wheels and this repository).
Everything is generated in place: the real htdemucs architecture with random weights (the
cost of a forward pass does not depend on the weights' values) and a synthetic stereo
44.1 kHz instrumental.

Spleeter 2-stem (random weights) too: one patch at a time against ours batched.

Variants, each timed after a warm-up, median of ``--repeats``:
  * apply_model default: shifts=1, split, overlap 0.25, one segment at a time (the baseline);
  * apply_model shifts=0: the exact computation ours batches;
  * ours fp32, batch 48;  ours bf16 autocast, batch 48;  ours bf16 + torch.compile, batch 48.
Correctness: ours fp32 against apply_model shifts=0 on the first 30 s (max |difference|),
and bf16 against fp32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class Bench:
    """Times variants (warm-up, then the median of ``repeats``), records peak GPU memory, and
    rewrites the JSON after every variant, so a run cut short still leaves its figures."""

    def __init__(self, args: argparse.Namespace, results: dict, minutes: float, started: float) -> None:
        self.args, self.results, self.minutes, self.started = args, results, minutes, started
        self.cuda = args.device.startswith("cuda")

    def save(self) -> None:
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.results, indent=1))

    def measure(self, label: str, fn, warmups: int = 1) -> dict:
        if time.monotonic() - self.started > self.args.budget:
            print(f"{label}: skipped (time budget)", flush=True)
            return {"skipped": True}
        try:
            return self._measure(label, fn, warmups)
        except Exception as exc:  # one variant failing (e.g. compile) must not lose the others
            print(f"{label}: FAILED {type(exc).__name__}: {exc}", flush=True)
            return {"skipped": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
        finally:
            self.save()

    def _sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def _measure(self, label: str, fn, warmups: int) -> dict:
        import torch

        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(warmups):
            fn()
            self._sync()
        warm = time.perf_counter() - t0
        times = []
        for _ in range(self.args.repeats):
            t0 = time.perf_counter()
            fn()
            self._sync()
            times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None
        row = {"ms_per_minute": [1000 * t / self.minutes for t in times], "warmup_seconds": warm, "peak_gpu_mb": peak}
        print(f"{label}: {statistics.median(row['ms_per_minute']):.0f} ms per minute of audio "
              f"(warm-up {warm:.1f} s, peak GPU {peak or 0:.0f} MB)", flush=True)
        return row


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the synthetic track")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (a smoke test on CPU)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds; later variants are skipped past it")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    started = time.monotonic()
    import numpy as np
    import torch

    from corpus import demucs_model
    from corpus.synth import instrumental
    from engine.separation.demucs import load_model

    device = args.device
    info = {"torch": torch.__version__, "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    tmp = Path(tempfile.mkdtemp())
    name = "tiny-htdemucs" if args.tiny else "htdemucs-random"
    demucs_model.build(tmp, name=name, architecture=None if args.tiny else demucs_model.FULL)
    mix = np.stack([instrumental(args.seconds, rate=44100, seed=5), instrumental(args.seconds, rate=44100, seed=6)])
    print(f"{info} model={name} track={args.seconds:.0f} s", flush=True)
    results: dict = {"variants": {}, **info, "track_seconds": args.seconds, "model": name}
    bench = Bench(args, results, args.seconds / 60, started)
    model = load_model(str(tmp), name, device)
    _demucs(bench, model, tmp, name, mix)
    _spleeter(results, mix, device, bench.measure)
    results["check"] = _check(model, mix, args)
    print(f"check: {results['check']}", flush=True)
    _print_table(results)
    results["failed_or_skipped"] = {k: v.get("error", "skipped") for k, v in results["variants"].items() if v.get("skipped")}
    results["variants"] = {k: v for k, v in results["variants"].items() if not v.get("skipped")}
    results["wall_seconds"] = time.monotonic() - bench.started
    results["transcription_note"] = ("faster-whisper cannot use this GPU: its CTranslate2 wheel needs libcublas.so.12 "
                                     "and the machine has CUDA 13 only, so transcription and the server suite run on CPU")
    bench.save()
    print(f"\nwrote {args.out} in {results['wall_seconds']:.0f} s")
    return 0


def _demucs(bench: Bench, model, tmp: Path, name: str, mix) -> None:
    """apply_model's default and shifts=0, then ours at each precision."""
    import torch
    from demucs.apply import apply_model

    from engine.separation.base import SeparationOptions
    from engine.separation.demucs import load_model, separate_array

    args, device, variants = bench.args, bench.args.device, bench.results["variants"]
    tensor = torch.from_numpy(mix)[None].to(device)
    with torch.inference_mode():
        variants["apply_model default (shifts=1)"] = bench.measure(
            "apply_model default", lambda: apply_model(model, tensor, device=device))
        variants["apply_model shifts=0"] = bench.measure(
            "apply_model shifts=0", lambda: apply_model(model, tensor, shifts=0, split=True, overlap=0.25, device=device))
    for label, precision, compiled in (("ours fp32", "float32", False), ("ours bf16", "bfloat16", False),
                                       ("ours bf16 + torch.compile", "bfloat16", True)):
        if compiled and (args.no_compile or not bench.cuda):
            continue
        options = SeparationOptions(batch_size=args.batch, device=device, precision=precision, compile=compiled)
        m = load_model(str(tmp), name, device, compiled)
        variants[f"{label}, batch {args.batch}"] = bench.measure(
            label, lambda m=m, o=options: separate_array(m, mix, options=o, sink=lambda block: None))


def _check(model, mix, args: argparse.Namespace) -> dict:
    """Ours fp32 against apply_model shifts=0 on the first 30 s, and bf16 against fp32."""
    import numpy as np
    import torch
    from demucs.apply import apply_model

    from engine.separation.base import SeparationOptions
    from engine.separation.demucs import separate_array

    device = args.device
    part = mix[:, : 44100 * 30]
    with torch.inference_mode():
        ref = apply_model(model, torch.from_numpy(part)[None].to(device), shifts=0, split=True, overlap=0.25,
                          device=device)[0, list(model.sources).index("vocals")].float().cpu().numpy()
    fp32 = separate_array(model, part, options=SeparationOptions(batch_size=args.batch, device=device))
    bf16 = separate_array(model, part, options=SeparationOptions(batch_size=args.batch, device=device,
                                                                 precision="bfloat16"))
    return {"max_abs_diff_fp32_vs_apply_model": float(np.abs(fp32 - ref).max()),
            "max_abs_diff_bf16_vs_fp32": float(np.abs(bf16 - fp32).max()),
            "reference_peak": float(np.abs(ref).max())}


def _print_table(results: dict) -> None:
    base = statistics.median(results["variants"]["apply_model default (shifts=1)"]["ms_per_minute"])
    print(f"\n{'variant':44} {'ms/min audio':>13} {'vs default':>10} {'peak GPU MB':>12}")
    for label, row in results["variants"].items():
        if row.get("skipped"):
            continue
        med = statistics.median(row["ms_per_minute"])
        print(f"{label:44} {med:13.0f} {base / med:9.1f}x {row['peak_gpu_mb'] or 0:12.0f}")
    for label, row in results.get("spleeter", {}).items():
        if not row.get("skipped"):
            print(f"{'spleeter ' + label:44} {statistics.median(row['ms_per_minute']):13.0f} {'':10} "
                  f"{row['peak_gpu_mb'] or 0:12.0f}")


def _spleeter(results: dict, mix, device: str, measure) -> None:
    """Spleeter's two U-Nets with random weights (the forward cost does not depend on them):
    one 512-frame patch per call, as Spleeter itself runs, against our batched default."""
    from engine.separation.base import SeparationOptions
    from engine.separation.spleeter import Nets, _unet, separate_array

    nets = Nets(_unet().eval().to(device), _unet().eval().to(device), device)
    spleeter = results.setdefault("spleeter", {})
    for label, batch, precision in (("one patch at a time", 1, "float32"), ("ours, batch 16", 16, "float32"),
                                    ("ours bf16, batch 16", 16, "bfloat16")):
        options = SeparationOptions(batch_size=batch, device=device, precision=precision)
        spleeter[label] = measure(f"spleeter {label}",
                                  lambda o=options: separate_array(nets, mix, options=o, sink=lambda block: None))


if __name__ == "__main__":
    sys.exit(main())
