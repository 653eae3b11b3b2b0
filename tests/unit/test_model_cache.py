"""The server's model cache: kept between jobs, unloaded when idle past the TTL, least
recently used first beyond the memory budget, never while a job uses it. A fake loader
and clock stand in for Whisper here; tests/integration/test_openai.py runs two real
models (tiny.en and base) through one server."""

import threading

import pytest

from server.modelcache import ModelCache, weights_bytes

MB = 2**20


class Loader:
    def __init__(self, sizes):
        self.sizes = sizes
        self.loads: list[str] = []
        self.unloaded: list[str] = []

    def load(self, name):
        self.loads.append(name)
        return f"model:{name}", self.sizes[name]

    def unload(self, model):
        self.unloaded.append(model.removeprefix("model:"))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def cache(sizes, *, ttl=300.0, budget=1000 * MB):
    loader, clock = Loader(sizes), Clock()
    return ModelCache(loader.load, ttl_seconds=ttl, budget_bytes=budget, unload=loader.unload, clock=clock), loader, clock


def test_kept_between_jobs_and_two_fit_the_budget():
    c, loader, _ = cache({"tiny.en": 75 * MB, "base": 145 * MB}, budget=300 * MB)
    for name in ("tiny.en", "base", "tiny.en", "base"):
        with c.use(name) as model:
            assert model == f"model:{name}"
    assert loader.loads == ["tiny.en", "base"] and c.loaded() == ["base", "tiny.en"] and loader.unloaded == []


def test_least_recently_used_goes_first_beyond_the_budget():
    c, loader, clock = cache({"a": 100 * MB, "b": 100 * MB, "c": 100 * MB}, budget=250 * MB)
    with c.use("a"):
        pass
    clock.now += 1
    with c.use("b"):
        pass
    clock.now += 1
    with c.use("a"):  # a is now the most recent
        pass
    clock.now += 1
    with c.use("c"):
        pass
    assert loader.unloaded == ["b"] and c.loaded() == ["a", "c"]


def test_a_model_in_use_is_never_unloaded():
    c, loader, clock = cache({"a": 200 * MB, "b": 200 * MB}, budget=250 * MB, ttl=1)
    with c.use("a"):
        clock.now += 10
        with c.use("b"):  # over budget, but both are busy: both stay loaded while both are used
            assert c.sweep() == [] and c.loaded() == ["a", "b"]
        # b is idle now and the two exceed the budget: b goes, a (busy, older) stays
        assert c.loaded() == ["a"] and loader.unloaded == ["b"]
    assert c.loaded() == ["a"]


def test_idle_models_unload_after_the_ttl():
    c, loader, clock = cache({"a": 10 * MB}, ttl=300)
    with c.use("a"):
        pass
    clock.now += 299
    assert c.sweep() == []
    clock.now += 2
    assert c.sweep() == ["a"] and loader.unloaded == ["a"] and c.loaded() == []
    with c.use("a"):
        pass
    assert loader.loads == ["a", "a"]


def test_ttl_minus_one_never_and_zero_right_after_use():
    never, loader, clock = cache({"a": 10 * MB}, ttl=-1)
    with never.use("a"):
        pass
    clock.now += 10**9
    assert never.sweep() == [] and never.loaded() == ["a"]
    at_once, loader, _ = cache({"a": 10 * MB}, ttl=0)
    with at_once.use("a"):
        assert at_once.loaded() == ["a"]
    assert at_once.loaded() == [] and loader.unloaded == ["a"]


def test_concurrent_users_share_one_load():
    loader = Loader({"a": 10 * MB})
    started = threading.Event()

    def slow_load(name):
        started.set()
        threading.Event().wait(0.2)
        return loader.load(name)

    c = ModelCache(slow_load, ttl_seconds=60, budget_bytes=100 * MB, unload=loader.unload)
    seen = []

    def job():
        with c.use("a") as m:
            seen.append(m)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loader.loads == ["a"] and seen == ["model:a"] * 4


def test_weights_bytes_reads_model_bin(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x" * 1234)
    (tmp_path / "tokenizer.json").write_bytes(b"{}")
    assert weights_bytes(tmp_path) == 1234
    assert weights_bytes(tmp_path / "missing") == 0


def test_settings_read_ttl_and_budget():
    from engine.errors import InvalidOptionError
    from server.settings import Settings

    s = Settings.from_environ({"TFT_MODEL_TTL_SECONDS": "-1", "TFT_MODEL_MEMORY_MB": "512"})
    assert s.model_ttl_seconds == -1 and s.model_memory_bytes == 512 * MB
    assert Settings.from_environ({}).model_ttl_seconds == 300
    with pytest.raises(InvalidOptionError, match="TFT_MODEL_TTL_SECONDS"):
        Settings.from_environ({"TFT_MODEL_TTL_SECONDS": "-5"})
