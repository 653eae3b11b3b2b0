"""The GPU path's decisions, on a machine without a GPU: which device is chosen when CUDA is
counted but broken, what the user is told, and how the gpu extra's libraries are loaded.

No GPU is faked as working: the probe is the same callable the model loader passes (here one
that fails as CTranslate2 does without libcublas), and the preload loads real shared objects."""

import ctypes.util
import logging
import shutil
from pathlib import Path

import pytest

from engine import cuda
from engine.errors import DeviceUnavailableError
from engine.transcription import choose_device, cuda_device_count, load_model

MISSING_CUBLAS = RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")


def _failing_probe(device: str, compute_type: str) -> None:
    raise MISSING_CUBLAS


def test_counted_but_broken_cuda_falls_back_to_the_cpu_with_a_clear_message(caplog):
    with caplog.at_level(logging.WARNING, logger="engine.transcription"):
        assert choose_device("auto", "auto", probe=_failing_probe, cuda_count=1) == ("cpu", "int8")
    (record,) = caplog.records
    assert "CUDA device is present but unusable" in record.message
    assert "libcublas.so.12" in record.message and "[gpu]" in record.message
    assert "transcribing on the CPU" in record.message


def test_an_explicit_cuda_request_fails_with_the_reason_instead():
    with pytest.raises(DeviceUnavailableError, match="libcublas.so.12 .*nvidia-cublas-cu12"):
        choose_device("cuda", "auto", probe=_failing_probe, cuda_count=1)
    with pytest.raises(DeviceUnavailableError, match="sees no CUDA device"):
        choose_device("cuda", "auto", cuda_count=0)


def test_a_working_probe_keeps_cuda_and_the_requested_precision():
    seen = []
    assert choose_device("auto", "auto", probe=lambda d, c: seen.append((d, c)), cuda_count=2) == ("cuda", "float16")
    assert choose_device("auto", "int8_float16", probe=lambda d, c: seen.append((d, c)),
                         cuda_count=1) == ("cuda", "int8_float16")
    assert seen == [("cuda", "float16"), ("cuda", "int8_float16")]


def test_no_device_counted_means_cpu_without_probing(caplog):
    with caplog.at_level(logging.WARNING):
        assert choose_device("auto", "auto", probe=_failing_probe, cuda_count=0) == ("cpu", "int8")
        assert choose_device("cpu", "int8", probe=_failing_probe) == ("cpu", "int8")
    assert not caplog.records


def test_this_machine_loads_on_the_cpu_quietly(tiny, caplog):
    """No GPU here: CTranslate2 counts none, so the real loader picks the CPU and says nothing."""
    assert cuda_device_count() == 0
    with caplog.at_level(logging.WARNING):
        model = load_model(tiny.name, tiny.path)
    assert (model.device, model.compute_type) == ("cpu", "int8") and not caplog.records


def test_preload_loads_libraries_by_path_and_reports_what_it_could_not(tmp_path):
    """Real shared objects stand in for cuBLAS (any ELF library loads the same way)."""
    real = ctypes.util.find_library("m")
    source = next(Path(d) / real for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64")
                  if (Path(d) / real).exists())
    cublas = tmp_path / "cublas"
    cublas.mkdir()
    shutil.copy(source, cublas / "libcublasLt.so.12")
    (cublas / "libcublas.so.12").write_bytes(b"not a library")
    result = cuda.preload({"nvidia.cublas": cublas, "nvidia.cudnn": None})
    assert result.loaded == ("libcublasLt.so.12",)
    assert result.missing == ("nvidia.cudnn",)
    assert len(result.failed) == 1 and result.failed[0].startswith("libcublas.so.12:")


def test_without_the_gpu_extra_nothing_is_found_and_nothing_breaks():
    dirs = cuda.library_dirs()
    assert set(dirs) == {"nvidia.cublas", "nvidia.cudnn"}
    result = cuda.prepare()
    assert set(result.missing) | {k for k, v in dirs.items() if v is not None} == set(dirs)
