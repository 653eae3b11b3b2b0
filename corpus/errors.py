"""Errors raised while building test and benchmark material."""


class CorpusError(RuntimeError):
    """Root of the corpus errors: the material could not be built on this machine."""


class ToolMissing(CorpusError):
    """A program or data file the corpus renders with is not installed (fluidsynth, a soundfont, espeak-ng)."""
