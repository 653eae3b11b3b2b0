"""Randomly initialised HTDemucs checkpoints in demucs' local-repository format.

No demucs weights can be downloaded on these machines. The separation code path is
exercised exactly as with real weights: a ``<signature>-<sha256 prefix>.th`` package
(klass, args, kwargs, state) plus a ``<name>.yaml`` bag file, loaded by
``demucs.pretrained.get_model(name, repo=...)``, which checks the sha256 prefix.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

SOURCES = ["drums", "bass", "other", "vocals"]

# A few thousand parameters: separates 20 s of audio in under a second on 2 CPU cores.
TINY = dict(channels=4, depth=3, nfft=256, t_layers=1, t_heads=1, segment=2, dconv_comp=4)
# The real htdemucs architecture (about 42M parameters); only the weights are random.
FULL: dict = dict(segment=7.8)


def build(repo: Path, *, name: str = "tiny-htdemucs", architecture: dict | None = None, seed: int = 0) -> Path:
    """Write ``repo/<name>.yaml`` and ``repo/<sig>-<hash>.th``; returns the checkpoint path."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    torch.manual_seed(seed)
    kwargs = dict(TINY if architecture is None else architecture)
    if "segment" in kwargs:
        from fractions import Fraction

        kwargs["segment"] = Fraction(str(kwargs["segment"]))
    model = HTDemucs(sources=SOURCES, **kwargs)
    args, init_kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": init_kwargs, "state": get_state(model, None, half=False)}
    buf = io.BytesIO()
    torch.save(package, buf)
    data = buf.getvalue()
    signature = hashlib.sha1(name.encode()).hexdigest()[:8]
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    checkpoint = repo / f"{signature}-{hashlib.sha256(data).hexdigest()[:8]}.th"
    checkpoint.write_bytes(data)
    (repo / f"{name}.yaml").write_text(f"models: ['{signature}']\n")
    return checkpoint
