"""Markdown report, PNG plots (matplotlib) and the summary table printed at the end."""

from __future__ import annotations

import json
from pathlib import Path

from .common import fmt, median_spread

NOTE = ("These machines are shared and noisy: absolute times vary from run to run and from box to box. "
        "Compare the ratios (ours against raw faster-whisper, batched against apply_model), which are measured "
        "in the same run on the same machine. Every time is a median over the repeats, with the range in brackets.")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_section(acc: dict) -> list[str]:
    lines = ["## 1. Accuracy and speed against raw faster-whisper", "",
             "Same model, beam size 5, int8 on this CPU, in the same run. WER/CER use Whisper's text normaliser "
             "(English: numbers, spelling and contractions normalised; zh/ja scored per character). "
             f"Long-form: {acc['long_form']['seconds']:.0f} s of espeak-ng English ({acc['long_form']['words']} words).", ""]
    for model, res in acc["models"].items():
        parts = [("short", f"short clips ({res['short']['clips']} pytest-audioeval clips, "
                           f"{res['short']['seconds_audio']:.0f} s)")]
        parts += [(p, f"{'long-form' if p == 'long' else 'second long-form text (lighthouse, British voice)'} "
                      f"({res[p]['seconds_audio']:.0f} s, {res[p].get('words', 0)} words; timed cold, model load "
                      "included, each run its own process)") for p in ("long", "long_second") if p in res]
        for part, title in parts:
            lines += [f"### {model}: {title}", "",
                      "| configuration | WER | CER | time (s) | real-time factor | CPU (s) | peak RSS (MB) |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for name, c in res[part]["configs"].items():
                cpu = fmt(c["cpu_seconds"], 1) if c.get("cpu_seconds") else "–"
                lines.append(f"| {name} | {_pct(c['wer'])} | {_pct(c['cer'])} | {fmt(c['seconds'])} | "
                             f"{fmt(c['rtf'], 3)} | {cpu} | {c['peak_rss_mb']:.0f} |")
            ratio = res[part]["time_ratio_ours_over_raw"]
            lines += ["", f"Ours (default) takes **{ratio:.2f}×** the time of raw faster-whisper "
                          f"(speed-up {res[part]['speedup_vs_raw']:.2f}×), at "
                          f"{'equal or better' if res[part]['wer_at_or_below_raw'] else 'WORSE'} WER.", ""]
            if "time_ratio_ours_over_batched" in res[part]:
                per_run = ", ".join(f"{x:.2f}" for x in res[part]["time_ratio_ours_over_batched_per_run"])
                lines += [f"Against faster-whisper's BatchedInferencePipeline: **"
                          f"{res[part]['time_ratio_ours_over_batched']:.2f}×** its time (per run: {per_run}; "
                          f"target ≤ {res[part]['batched_time_target']:.2f}×).", ""]
                others = [f"{name} {r:.2f}×" for name, r in res[part].get("time_ratio_over_batched", {}).items()
                          if name.startswith("ours, ") and name != "ours, sequential"]
                if others:
                    lines += ["The other ways of running ours, against the same batched pipeline: "
                              + "; ".join(others) + ".", ""]
            if part == "short":
                lines += ["The counting clips weigh heavily: Whisper's normaliser joins spelled-out digit sequences "
                          "(\"one two three\" becomes \"123\") while Whisper may write \"1, 2, 3\", so those clips "
                          "score poorly for both sides alike. Compare ours and raw per language:", ""]
                by_lang = res[part]["configs"]["ours (default)"]["wer_by_language"]
                raw_lang = res[part]["configs"]["raw faster-whisper"]["wer_by_language"]
                lines += ["| language | ours | raw |", "|---|---:|---:|"]
                lines += [f"| {lang} | {_pct(v)} | {_pct(raw_lang[lang])} |" for lang, v in by_lang.items()]
                lines.append("")
    return lines


def goals_section(results: dict) -> list[str]:
    """The targets the issues set, each marked met or not from this run's own figures."""
    rows = []

    def add(goal: str, figure: str, met: bool) -> None:
        rows.append(f"| {goal} | {figure} | {'met' if met else '**not met**'} |")

    for model, res in results.get("accuracy", {}).get("models", {}).items():
        short = res["short"]
        for part, label in (("long", "long-form"), ("long_second", "second long-form text")):
            if "time_ratio_ours_over_batched" not in res.get(part, {}):
                continue
            long = res[part]
            add(f"{model} {label}: WER ≤ raw sequential, time ≤ {long['batched_time_target']:.1f}× raw batched "
                "(load included)",
                f"{long['time_ratio_ours_over_batched']:.2f}×, WER {'≤' if long['wer_at_or_below_raw'] else '>'} raw",
                long["goal_met"])
        add(f"{model} short clips: ≤1.05× raw's time at equal or better WER",
            f"{short['time_ratio_ours_over_raw']:.2f}×", short["time_ratio_ours_over_raw"] <= 1.05
            and short["wer_at_or_below_raw"])
    for model, configs in results.get("hallucination", {}).get("models", {}).items():
        add(f"{model}: zero words on non-speech", str(configs["ours (default)"]["total"]),
            configs["ours (default)"]["total"] == 0)
    for model, configs in results.get("timing", {}).get("models", {}).items():
        mae = configs["ours (default)"]["srt_mae"]
        add(f"{model}: line-onset error under 0.2 s", f"{mae:.3f} s", mae < 0.2)
    if "songs" in results:
        from . import report_songs

        for goal, figure, met in report_songs.goals(results["songs"]):
            add(goal, figure, met)
    if "align" in results:
        from . import report_align

        for goal, figure, met in report_align.goals(results["align"]):
            add(goal, figure, met)
    lat = results.get("server", {}).get("latency")
    if lat:
        add("status polls under load: p99 < 50 ms, 0 errors", f"{lat['p99_ms']:.1f} ms, {lat['errors']} errors",
            lat["p99_ms"] < 50 and lat["errors"] == 0)
    oa = results.get("server", {}).get("openai")
    if oa:
        ol = oa["latency"]
        add(f"{oa['requests']} concurrent /v1 requests, 1 worker: none lost, polls p99 < 50 ms",
            f"{oa['answered']}/{oa['requests']} answered, p99 {ol['p99_ms']:.1f} ms ({oa['p99_ratio_vs_baseline']:.2f}x baseline)",
            oa["lost"] == 0 and ol["p99_ms"] < 50 and ol["errors"] == 0)
    if not rows:
        return []
    return ["## Goals", "", "| goal | this run | |", "|---|---|---|", *rows, "",
            "Long-form: ours packs speech into full 30 s windows, decodes them text-only in streams conditioned "
            "on the text before them, on two decoders side by side on a CPU (one thread each), reads the language "
            "from the first window, and loads the model while the audio is decoded and analysed; it also aligns "
            "words to cut subtitle lines, which faster-whisper's batched pipeline does not (see engine/packed.py).",
            ""]


def hallucination_section(h: dict) -> list[str]:
    kinds = None
    lines = ["## 2. Hallucination on generated non-speech", "",
             f"{h['seconds_per_kind']:.0f} s each of silence, white noise, 50 Hz hum and an instrumental "
             f"(chords, bass, lead, drums): {h['total_seconds'] / 60:.1f} minutes. Words produced:", ""]
    for model, configs in h["models"].items():
        kinds = kinds or list(next(iter(configs.values()))["words"])
        lines += [f"### {model}", "", "| configuration | " + " | ".join(kinds) + " | total |",
                  "|---|" + "---:|" * (len(kinds) + 1)]
        for name, c in configs.items():
            lines.append(f"| {name} | " + " | ".join(str(c["words"][k]) for k in kinds) + f" | **{c['total']}** |")
        examples = {k: v for c in configs.values() for k, v in c["examples"].items()}
        if examples:
            lines += ["", "Invented text, for example: " + "; ".join(f"{k}: “{v}”" for k, v in list(examples.items())[:3])]
        lines.append("")
    return lines


def timing_section(t: dict) -> list[str]:
    lines = ["## 3. Line-onset timing", "",
             f"{len(t['tracks'])} constructed track(s): six espeak-ng sentences at known offsets with 2-5 s gaps "
             "(odd tracks over a music bed at 12 dB below the voice). Mean absolute error of each true onset to the "
             "nearest SRT / LRC line onset; goal under 0.2 s.", "",
             "| model | configuration | SRT onset MAE (s) | LRC onset MAE (s) | lines |", "|---|---|---:|---:|---:|"]
    for model, configs in t["models"].items():
        for name, c in configs.items():
            lines.append(f"| {model} | {name} | {c['srt_mae']:.3f} | {c['lrc_mae']:.3f} | {c['lines']} |")
    return lines + [""]


def separation_section(s: dict, gpu: dict | None) -> list[str]:
    lines = ["## 4. Separation throughput", "",
             f"Model: {s['architecture']}; every variant in its own process on the same track; seconds of compute per "
             "minute of audio and peak resident memory.", "",
             "| variant (CPU) | s per minute of audio | peak RSS (MB) | peak anonymous memory (MB) | check |",
             "|---|---:|---:|---:|---|"]
    for name, v in s["variants"].items():
        check = f"max abs difference to apply_model: {v['max_abs_diff']:.1e}" if "max_abs_diff" in v else ""
        anon = f"{v['peak_anon_mb']:.0f}" if v.get("peak_anon_mb") else "-"
        lines.append(f"| {name} | {fmt(v['seconds_per_minute'], 1)} | {v['peak_rss_mb']:.0f} | {anon} | {check} |")
    lines += ["", "Peak RSS also counts pages of memory-mapped files (the mix, the stem being written), which the "
              "kernel drops at will; the anonymous memory is the process's own, and stays flat with the track's "
              "length."]
    if gpu:
        lines += ["", f"GPU ({gpu.get('gpu', 'CUDA')}), from benchmarks/gpu.sh:", "",
                  "| variant (CUDA) | ms per minute of audio | peak GPU memory (MB) | speed-up vs apply_model default |",
                  "|---|---:|---:|---:|"]
        base = median_spread(gpu["variants"]["apply_model default (shifts=1)"]["ms_per_minute"])[0]
        for name, v in gpu["variants"].items():
            med = median_spread(v["ms_per_minute"])[0]
            lines.append(f"| {name} | {fmt(v['ms_per_minute'], 0)} | {v.get('peak_gpu_mb') or 0:.0f} | {base / med:.1f}× |")
    else:
        lines += ["", "CUDA: no GPU on this machine. Run `benchmarks/gpu.sh` on one; faster-whisper cannot use the "
                      "lent H200 (CUDA 13, no cuBLAS 12), so GPU figures cover separation only."]
    return lines + [""]


def server_section(srv: dict) -> list[str]:
    lat = srv["latency"]
    lines = ["## 5. Server", "",
             f"Jobs per minute through the HTTP API ({srv['model']}, {srv['jobs']} jobs of {srv['clip_seconds']:.0f} s "
             "audio, after one warm-up job):", "", "| workers | jobs per minute | audio minutes per minute |",
             "|---:|---:|---:|"]
    for workers, t in srv["throughput"].items():
        lines.append(f"| {workers} | {t['jobs_per_minute']:.1f} | {t['audio_minutes_per_minute']:.2f} |")
    lines += ["", f"Status polling while a transcription runs ({lat['busy_model']}): {lat['clients']} clients, "
                  f"{lat['seconds']} s, measured with {lat['tool']}.", "",
              "| requests | errors | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) |", "|---:|---:|---:|---:|---:|---:|",
              f"| {lat['requests']} | {lat['errors']} | {lat['p50_ms']:.1f} | {lat['p90_ms']:.1f} | {lat['p99_ms']:.1f} | "
              f"{lat['p999_ms']:.1f} |", "", f"Goal: p99 < 50 ms and 0 errors: "
              f"{'met' if lat['p99_ms'] < 50 and lat['errors'] == 0 else 'NOT met'}.", ""]
    oa = srv.get("openai")
    if oa:
        ol = oa["latency"]
        lines += [f"OpenAI-style requests: {oa['requests']} concurrent `POST /v1/audio/transcriptions` held open until "
                  f"their jobs finished, one worker: {oa['answered']} answered, {oa['lost']} lost, "
                  f"{oa['jobs_done']} jobs done in {oa['seconds']:.1f} s. Meanwhile {ol['clients']} clients polled a "
                  f"job's status on /api/v1 for {ol['seconds']} s ({ol['tool']}):", "",
                  "| requests | errors | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) |", "|---:|---:|---:|---:|---:|---:|",
                  f"| {ol['requests']} | {ol['errors']} | {ol['p50_ms']:.1f} | {ol['p90_ms']:.1f} | {ol['p99_ms']:.1f} | "
                  f"{ol['p999_ms']:.1f} |", "",
                  f"Baseline in the same run (the same jobs through /api/v1, nobody waiting on them): p50 "
                  f"{oa['baseline_latency']['p50_ms']:.1f} ms, p99 {oa['baseline_latency']['p99_ms']:.1f} ms; "
                  f"p99 with the /v1 requests held open is {oa['p99_ratio_vs_baseline']:.2f}x the baseline.", "",
                  f"Goal: all answered, none lost, polls p99 < 50 ms: "
                  f"{'met' if oa['lost'] == 0 and ol['p99_ms'] < 50 and ol['errors'] == 0 else 'NOT met'}.", ""]
    return lines


def _barh(out: Path, filename: str, labels: list[str], values: list[float], xlabel: str, **style) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh(labels, values, **style)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / filename, dpi=120)
    plt.close(fig)
    return filename


def plots(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    acc = results.get("accuracy")
    if acc:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        markers = dict(zip(acc["models"], "osD^v"))
        names = list(dict.fromkeys(n for res in acc["models"].values() for part in ("short", "long")
                                   for n in res[part]["configs"]))
        colours = {n: f"C{i}" for i, n in enumerate(names)}
        for ax, part in zip(axes, ("short", "long")):
            for model, res in acc["models"].items():
                for name, c in res[part]["configs"].items():
                    ax.scatter(median_spread(c["rtf"])[0], 100 * c["wer"], s=55, marker=markers[model],
                               color=colours[name], label=f"{model}: {name}", alpha=0.85)
            ax.set_xlabel("real-time factor (lower is faster)")
            ax.set_ylabel("WER %")
            ax.set_title("short clips" if part == "short" else "long-form")
            ax.grid(alpha=0.3)
        legend = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0, 0.72, 1))
        fig.savefig(out / "accuracy_speed.png", dpi=120)
        plt.close(fig)
        made.append("accuracy_speed.png")
    hal = results.get("hallucination")
    if hal:
        labels = [f"{model}\n{name}" for model, configs in hal["models"].items() for name in configs]
        values = [c["total"] for configs in hal["models"].values() for c in configs.values()]
        made.append(_barh(out, "hallucination.png", labels, values,
                          f"words invented on {hal['total_seconds'] / 60:.1f} min of non-speech", color="tab:red"))
    tim = results.get("timing")
    if tim:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for model, configs in tim["models"].items():
            for name, c in configs.items():
                errs = [min(e, 2.0) for e in c["srt_errors"]]
                ax.hist(errs, bins=20, range=(0, 2), alpha=0.5, label=f"{model}: {name}")
        ax.axvline(0.2, color="k", ls="--", lw=1)
        ax.set_xlabel("onset error (s), capped at 2")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "timing.png", dpi=120)
        plt.close(fig)
        made.append("timing.png")
    if results.get("songs"):
        from . import report_songs

        made.append(report_songs.plot(results["songs"], out))
    sep = results.get("separation")
    if sep:
        names = list(sep["variants"])
        made.append(_barh(out, "separation_cpu.png", names,
                          [median_spread(sep["variants"][n]["seconds_per_minute"])[0] for n in names],
                          "CPU seconds per minute of audio (lower is better)"))
    return made


def write(results: dict, out: Path, *, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    m = results["machine"]
    lines = [f"# tft bench report ({results['plan']})", "", f"Command: `{command}`  ", f"Date: {results['date']}  ",
             f"Models: {', '.join(results['models'])}", "", f"> {NOTE}", "", "## Machine", "",
             f"- CPU: {m['cpu']}, {m['cores']} cores available", f"- RAM: {m['ram_gb']} GB", f"- GPU: {m['gpu']} "
             f"(CTranslate2 sees {m['ctranslate2_cuda_devices']} CUDA device(s))", f"- OS: {m['os']}, Python {m['python']}",
             "- Libraries: " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()), "", "## Summary", ""]
    lines += ["```", summary_table(results), "```", ""]
    lines += goals_section(results)
    if "accuracy" in results:
        lines += accuracy_section(results["accuracy"])
    if "multilingual" in results:
        from . import report_multilingual

        lines += report_multilingual.section(results["multilingual"], results.get("accuracy"))
    if "songs" in results:
        from . import report_songs

        lines += report_songs.section(results["songs"])
    if "align" in results:
        from . import report_align

        lines += report_align.section(results["align"])
    if "hallucination" in results:
        lines += hallucination_section(results["hallucination"])
    if "timing" in results:
        lines += timing_section(results["timing"])
    if "separation" in results:
        lines += separation_section(results["separation"], results.get("separation_gpu"))
    if "server" in results:
        lines += server_section(results["server"])
    images = plots(results, out)
    if "multilingual" in results:
        from . import report_multilingual

        images += [i for i in [report_multilingual.plot(results["multilingual"], out)] if i]
    if images:
        lines += ["## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return report


def summary_table(results: dict) -> str:
    rows = [("suite", "figure", "value")]
    acc = results.get("accuracy")
    if acc:
        for model, res in acc["models"].items():
            for part in ("short", "long", "long_second"):
                if part not in res:
                    continue
                c = res[part]["configs"]
                rows.append(("accuracy", f"{model} {part}: WER ours / raw",
                             f"{_pct(c['ours (default)']['wer'])} / {_pct(c['raw faster-whisper']['wer'])}"))
                rows.append(("speed", f"{model} {part}: time ours / raw", f"{res[part]['time_ratio_ours_over_raw']:.2f}x"))
                if "time_ratio_ours_over_batched" in res[part]:
                    rows.append(("speed", f"{model} {part}: time ours / raw batched",
                                 f"{res[part]['time_ratio_ours_over_batched']:.2f}x"))
    if results.get("songs"):
        from . import report_songs

        rows += report_songs.summary_rows(results["songs"])
    if results.get("align"):
        from . import report_align

        rows += report_align.summary_rows(results["align"])
    hal = results.get("hallucination")
    if hal:
        for model, configs in hal["models"].items():
            rows.append(("hallucination", f"{model}: words ours / raw (no VAD)",
                         f"{configs['ours (default)']['total']} / {configs['raw faster-whisper, no VAD']['total']}"))
    tim = results.get("timing")
    if tim:
        for model, configs in tim["models"].items():
            rows.append(("timing", f"{model}: SRT onset MAE", f"{configs['ours (default)']['srt_mae']:.3f} s"))
    sep = results.get("separation")
    if sep:
        v = sep["variants"]
        ours = median_spread(v["ours, batched streaming (in memory)"]["seconds_per_minute"])[0]
        base = median_spread(v["demucs apply_model default (shifts=1)"]["seconds_per_minute"])[0]
        rows.append(("separation", "CPU s/min: ours / apply_model default", f"{ours:.1f} / {base:.1f}"))
    gpu = results.get("separation_gpu")
    if gpu:
        for name, g in gpu["variants"].items():
            rows.append(("separation", f"GPU ms/min: {name}", f"{median_spread(g['ms_per_minute'])[0]:.0f}"))
    srv = results.get("server")
    if srv:
        for workers, t in srv["throughput"].items():
            rows.append(("server", f"jobs/min, {workers} worker(s)", f"{t['jobs_per_minute']:.1f}"))
        lat = srv["latency"]
        rows.append(("server", "poll p50 / p99 / errors", f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms / {lat['errors']}"))
        if srv.get("openai"):
            oa, ol = srv["openai"], srv["openai"]["latency"]
            rows.append(("server", f"/v1 x{oa['requests']}: answered, poll p99", f"{oa['answered']}, {ol['p99_ms']:.1f} ms"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)
