"""Shared fixtures: real models from the offline packages, real clips, generated audio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

# Generated and fetched material lives in the checkout for the tests (corpus/locations.py).
os.environ.setdefault("TFT_BENCH_DATA", str(REPO / "tests" / "data"))
GENERATED = Path(os.environ["TFT_BENCH_DATA"]) / "generated"


@pytest.fixture(scope="session")
def store():
    from models import ModelStore, default_store_dir

    return ModelStore(default_store_dir())


@pytest.fixture(scope="session")
def tiny(store):
    from models import resolve_whisper

    return resolve_whisper("tiny.en", store)


@pytest.fixture(scope="session")
def base(store):
    from models import resolve_whisper

    return resolve_whisper("base", store)


@pytest.fixture(scope="session")
def tiny_loaded(tiny):
    from engine.transcription import load_model

    return load_model(tiny.name, tiny.path)


@pytest.fixture(scope="session")
def base_loaded(base):
    from engine.transcription import load_model

    return load_model(base.name, base.path)


@pytest.fixture(scope="session")
def clips():
    from corpus.speech import audioeval_clips

    return audioeval_clips()


@pytest.fixture(scope="session")
def generated_dir() -> Path:
    GENERATED.mkdir(parents=True, exist_ok=True)
    return GENERATED


@pytest.fixture(scope="session")
def nonspeech(generated_dir) -> dict[str, Path]:
    """Silence, white noise, 50 Hz hum and an instrumental with chords and drums, 35 s each."""
    from corpus import synth

    files = {
        "silence": synth.silence(35),
        "white_noise": synth.white_noise(35, level=0.1, seed=11),
        "hum_50hz": synth.hum(35, base_hz=50.0),
        "instrumental": synth.instrumental(35, bpm=100, seed=1),
    }
    return {name: synth.write_wav(generated_dir / f"nonspeech_{name}.wav", audio) for name, audio in files.items()}


@pytest.fixture(scope="session")
def long_speech(generated_dir) -> tuple[Path, str]:
    """About a minute of espeak-ng English with its reference text."""
    from corpus.speech import LONG_FORM_PARAGRAPHS, espeak

    text = " ".join(LONG_FORM_PARAGRAPHS[:4])
    path = generated_dir / "long_speech_en.wav"
    if not path.exists():
        espeak(text, path)
    return path, text


def wer(reference: str, hypothesis: str, language: str = "en") -> float:
    from benchmarks.metrics import wer as _wer

    return _wer(reference, hypothesis, language=language)


@pytest.fixture(scope="session")
def demucs_store(tmp_path_factory):
    """A model store holding a small randomly initialised HTDemucs, installed like real weights."""
    from corpus import demucs_model
    from models import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("demucs-store"))
    store.install("tiny-htdemucs", lambda d: demucs_model.build(d, name="tiny-htdemucs"), source="test fixture (random weights)")
    return store


@pytest.fixture(scope="session")
def demucs_repo(demucs_store):
    from models import find_demucs

    found = find_demucs("tiny-htdemucs", demucs_store)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def song(generated_dir):
    """A synthetic song: espeak lines mixed at 0 dB over a generated instrumental.

    Layout (seconds): 0-12 instrumental, 12-~16.5 line 1 over the band, instrumental,
    38-~42 line 2 over the band, instrumental to 70.
    """
    from corpus import synth
    from corpus.speech import espeak
    from engine.audio import decode

    lines = [
        "The morning light is falling on the river, and the boats are sailing home.",
        "We will sing until the evening, and the stars come out again.",
    ]
    bed = synth.instrumental(70, bpm=96, seed=2)
    mix = bed.copy()
    regions = []
    for offset, text, i in zip((12.0, 38.0), lines, range(2)):
        voice = decode(espeak(text, generated_dir / f"song_line{i}.wav"))
        start = int(offset * 16000)
        mix[start : start + voice.size] = synth.mix_at_snr(voice, bed[start : start + voice.size], 0)
        regions.append((offset, offset + voice.size / 16000))
    path = synth.write_wav(generated_dir / "song.wav", mix)
    return path, lines, regions


@pytest.fixture(scope="session")
def quick_songs(generated_dir):
    """The quick song corpus (4 songs under about 45 s: band + voice lines of known text),
    rendered once into tests/data/generated/songs and reused while the specs are unchanged."""
    from corpus.songs import song_corpus

    return song_corpus(generated_dir / "songs", quick=True)


@pytest.fixture(scope="session", autouse=True)
def no_server_errors_in_any_log():
    """Over the whole run, no server started by a test answered 5xx or logged an unhandled
    error: every failure path ends in a 4xx, a job error, or a 503 from /healthz by design."""
    yield
    from harness import Server, server_errors

    found = {}
    for path in dict.fromkeys(Server.logs):
        if path.exists():
            lines = [line for line in server_errors(path.read_text(errors="replace"))
                     if not ("/healthz" in line and '" 503' in line)]  # a dead thread, reported on purpose
            if lines:
                found[str(path)] = lines[:5]
    print(f"\nserver logs checked for 5xx answers: {len(Server.logs)}; with 5xx: {len(found)}")
    assert not found, found


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's stand-alone S3 server for the run: a real HTTP S3 endpoint on loopback."""
    from harness import start_moto

    url, proc = start_moto()
    yield url
    proc.terminate()
    proc.wait(10)


# -- the job store, both kinds ------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the whole run (Debian's postgresql, installed by the
    Makefile; run as the postgres user when the tests run as root). Fails, never skips,
    when PostgreSQL is missing."""
    from benchmarks.pgcluster import Cluster

    cluster = Cluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database of the session's cluster."""
    import uuid

    return pg_cluster.create_database(f"t_{uuid.uuid4().hex[:16]}")


STORE_KINDS = ("sqlite", "postgres")


def open_test_store(spec: tuple[str, str]):
    """A store from ``("sqlite", path)`` or ``("postgres", url)``: what another process needs
    to open the same store."""
    kind, where = spec
    if kind == "sqlite":
        from server.store import SQLiteStore

        return SQLiteStore(where)
    from server.store.postgres import PostgresStore

    store = PostgresStore(where)
    assert store.listener.connected.wait(10), "the store's LISTEN connection did not come up"
    return store


@pytest.fixture(params=STORE_KINDS)
def store_spec(request, tmp_path) -> tuple[str, str]:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "tft.sqlite3"))
    return ("postgres", request.getfixturevalue("pg_url"))


@pytest.fixture
def job_store(store_spec):
    store = open_test_store(store_spec)
    yield store
    store.close()


@pytest.fixture(scope="module", params=STORE_KINDS)
def new_db(request):
    """For a server test module that runs once per store: ``new_db()`` is the environment of
    a fresh store (SQLite: nothing, the data dir's file; PostgreSQL: ``TFT_DATABASE_URL`` of
    a new database, so servers of different tests never share a queue)."""
    import uuid

    cluster = request.getfixturevalue("pg_cluster") if request.param == "postgres" else None

    def make() -> dict[str, str]:
        if cluster is None:
            return {}
        return {"TFT_DATABASE_URL": cluster.create_database(f"m_{uuid.uuid4().hex[:16]}")}

    make.kind = request.param
    return make
