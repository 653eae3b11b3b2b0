"""The local model store: one directory per model, installed atomically and verified.

Layout::

    <root>/<name>/            model files as the runtime expects them
    <root>/<name>/.tft-manifest.json   {"name", "source", "files": {file: sha256}, ...}
    <root>/.verified/<key>.json        verification cache, keyed by file size and mtime

A model directory appears only complete: it is assembled in ``<root>/.tmp-*`` on the same
filesystem, hashed, checked, fsynced and then renamed into place. Hashing a large model
takes seconds, so a successful verification is cached until the file's size or mtime
changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from engine.errors import ModelCorruptError

MANIFEST = ".tft-manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool | None  # None: nothing to check against
    detail: str


class ModelStore:
    """Where models live on this machine."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def has(self, name: str) -> bool:
        return (self.path(name) / MANIFEST).is_file()

    def manifest(self, name: str) -> dict:
        try:
            return json.loads((self.path(name) / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    # -- verification -------------------------------------------------------------------

    def _cache_file(self, path: Path) -> Path:
        key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
        return self.root / ".verified" / f"{key}.json"

    def file_digest(self, path: Path) -> str:
        """sha256 of a file, cached by (size, mtime) so repeated checks are free."""
        st = path.stat()
        stamp = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        cache = self._cache_file(path)
        try:
            cached = json.loads(cache.read_text())
            if {k: cached.get(k) for k in stamp} == stamp:
                return cached["sha256"]
        except (OSError, ValueError, KeyError):
            pass
        digest = sha256_file(path)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**stamp, "sha256": digest}))
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only store still verifies, just without the cache
        return digest

    def verify_files(self, directory: Path, expected: Mapping[str, str]) -> Verification:
        if not expected:
            return Verification(None, "no checksum recorded")
        for fname, want in expected.items():
            fpath = directory / fname
            if not fpath.is_file():
                return Verification(False, f"{fname} is missing")
            got = self.file_digest(fpath)
            if not got.startswith(want) and got != want:
                return Verification(False, f"{fname} sha256 {got[:12]}... does not match {want[:12]}...")
        return Verification(True, "sha256 ok")

    def verify(self, name: str, known: Mapping[str, str] | None = None) -> Verification:
        """Check a stored model against the registry's checksums, else its own manifest."""
        directory = self.path(name)
        if not directory.is_dir():
            return Verification(False, "not installed")
        expected = dict(known or {}) or self.manifest(name).get("files", {})
        return self.verify_files(directory, expected)

    # -- installation -------------------------------------------------------------------

    def install(
        self,
        name: str,
        populate: Callable[[Path], None],
        *,
        expected: Mapping[str, str] | None = None,
        source: str,
        hash_files: tuple[str, ...] | None = None,
    ) -> Path:
        """Build a model directory with ``populate(tmpdir)``, verify it, and rename it into place.

        ``expected`` maps file names to sha256 digests (or digest prefixes) that must match;
        a mismatch raises ModelCorruptError and leaves the store untouched.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root))
        try:
            populate(tmp)
            names = hash_files or tuple(sorted(p.name for p in tmp.iterdir() if p.is_file()))
            digests = {fname: sha256_file(tmp / fname) for fname in names}
            for fname, want in (expected or {}).items():
                got = digests.get(fname) or sha256_file(tmp / fname)
                if not got.startswith(want):
                    raise ModelCorruptError(
                        f"{name}: {fname} has sha256 {got[:16]}..., expected {want[:16]}...; "
                        "the download or package is damaged, nothing was installed"
                    )
            manifest = {"name": name, "source": source, "installed_at": time.time(), "files": digests}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            for p in tmp.iterdir():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
            _fsync_dir(tmp)
            final = self.path(name)
            old = None
            if final.exists():
                old = self.root / f".old-{name}-{os.getpid()}-{time.time_ns()}"
                os.replace(final, old)
            os.replace(tmp, final)
            _fsync_dir(self.root)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            for fname, digest in digests.items():  # seed the verification cache
                self._seed_cache(final / fname, digest)
            return final
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _seed_cache(self, path: Path, digest: str) -> None:
        st = path.stat()
        cache = self._cache_file(path)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(
            json.dumps({"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
        )

    def remove(self, name: str) -> bool:
        directory = self.path(name)
        if not directory.exists():
            return False
        trash = self.root / f".old-{name}-{os.getpid()}-{time.time_ns()}"
        os.replace(directory, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True
