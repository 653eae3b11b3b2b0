"""Test and benchmark material that nobody here recorded: synthesised music, noise and
silence (numpy), synthetic speech (espeak-ng), and the pytest-audioeval clips fetched from
PyPI at setup time. Used by tests/ and benchmarks/, never by the engine or the server."""
