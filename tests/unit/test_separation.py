"""Batched, streamed separation equals demucs' apply_model, on a small random-weight HTDemucs (CPU)."""

import numpy as np
import pytest

import torch  # the music extra is part of `make install`: a missing torch is a failure, not a skip
from demucs.apply import BagOfModels, TensorChunk, apply_model

from corpus import demucs_model
from engine.separation.base import SeparationOptions
from engine.separation.demucs import OverlapAdd, _window_segments, load_model, separate_array

pytestmark = pytest.mark.music


@pytest.fixture(scope="module")
def model(demucs_repo):
    return load_model(str(demucs_repo.path), demucs_repo.name, "cpu")


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(0)
    t = np.arange(int(44100 * 9.3)) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([left, right]).astype(np.float32)


def test_padded_segments_are_tensorchunk_padded(mix):
    tensor = torch.from_numpy(mix)
    offsets = [0, 66150, 330750, 390000]
    for target in (88200, 90000, 100000):
        ours = _window_segments(mix, offsets, 88200, target, "cpu")
        for got, offset in zip(ours, offsets):
            theirs = TensorChunk(tensor, offset, 88200).padded(target)
            torch.testing.assert_close(got, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("overlap", [0.25, 0.5])
def test_batched_equals_apply_model(model, mix, batch_size, overlap):
    expected = apply_model(model, torch.from_numpy(mix)[None], shifts=0, split=True, overlap=overlap)[0]
    vocals = expected[model.sources.index("vocals")].numpy()
    ours = separate_array(model, mix, options=SeparationOptions(batch_size=batch_size, overlap=overlap, device="cpu"))
    assert ours.shape == vocals.shape
    np.testing.assert_allclose(ours, vocals, rtol=1e-4, atol=1e-6 * max(1.0, float(np.abs(vocals).max())))


def test_bag_of_models_is_weighted_like_apply_model(demucs_repo, mix, tmp_path):
    from demucs.pretrained import get_model

    demucs_model.build(tmp_path, name="second", seed=1)
    a = get_model(demucs_repo.name, repo=demucs_repo.path)
    b = get_model("second", repo=tmp_path)
    weights = [[1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 0.5]]
    bag = BagOfModels([a.models[0], b.models[0]], weights=weights)
    expected = apply_model(bag, torch.from_numpy(mix)[None], shifts=0, split=True, overlap=0.25)[0, 3].numpy()
    ours = separate_array(bag, mix, options=SeparationOptions(batch_size=4, device="cpu"))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_streaming_emits_in_order_with_bounded_blocks(model, mix):
    whole = separate_array(model, mix, options=SeparationOptions(batch_size=2, device="cpu"))
    blocks = []
    separate_array(model, mix, options=SeparationOptions(batch_size=2, device="cpu"), sink=blocks.append)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)
    segment = int(float(model.models[0].segment) * 44100)
    assert max(b.shape[1] for b in blocks) <= 2 * segment  # never the whole track at once


def test_overlap_add_refuses_gaps():
    ola = OverlapAdd(1, np.ones(4), 8)
    ola.add(0, torch.ones((1, 4)))
    assert tuple(ola.finalise(4).shape) == (1, 4)
    from engine.errors import SeparationError

    with pytest.raises(SeparationError):
        ola.finalise(8)  # nothing covered samples 4..8
