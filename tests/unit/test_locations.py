"""Generated and fetched material goes where the user's environment says, never into the
installed package."""

from pathlib import Path

from corpus.locations import audioeval_dir, data_root, generated_dir


def test_bench_data_follows_the_environment(tmp_path):
    assert data_root({"TFT_BENCH_DATA": str(tmp_path / "here")}) == tmp_path / "here"
    assert data_root({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "tft" / "bench"
    assert data_root({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "tft" / "bench"
    made = generated_dir({"TFT_BENCH_DATA": str(tmp_path / "b")})
    assert made == tmp_path / "b" / "generated" and made.is_dir()
    assert audioeval_dir({"TFT_BENCH_DATA": str(tmp_path / "b")}) == tmp_path / "b" / "audioeval"


def test_default_is_outside_the_package():
    import corpus

    package = Path(corpus.__file__).resolve().parent.parent
    root = data_root({"HOME": "/nonexistent-home"})
    assert package not in root.parents
