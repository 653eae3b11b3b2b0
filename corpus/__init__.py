"""Test and benchmark material that nobody here recorded: synthesised music, noise and
silence (numpy), synthetic speech (espeak-ng), the pytest-audioeval clips fetched from PyPI at
setup time, constructed songs (``songs``: a fluidsynth band from MIDI with voice lines of known
text and timing) and a real sung excerpt (``sung``). Used by tests/ and benchmarks/, never by
the engine or the server."""
