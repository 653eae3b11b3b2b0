"""One exception tree for the whole project.

Every error a user can cause or fix derives from :class:`EngineError` and carries a
stable ``code`` (for the API's ``error.code`` and for scripts) and a message written as
one sentence a person understands. Third-party exceptions are translated at the module
that calls the library (``raise AudioDecodeError(...) from exc``), never leaked.
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error this project raises on purpose."""

    code: str = "engine_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(EngineError):
    """The input or the options are at fault; retrying the same request cannot help."""

    code = "invalid_input"


class AudioDecodeError(InputError):
    """The file could not be decoded as audio."""

    code = "undecodable_audio"


class EmptyAudioError(AudioDecodeError):
    """The file is empty or holds no audio samples at all."""

    code = "empty_audio"


class NotAudioError(AudioDecodeError):
    """The file is not a media file, or has no audio track."""

    code = "not_audio"


class TruncatedAudioError(AudioDecodeError):
    """The file ends before the length its own header declares."""

    code = "truncated_audio"


class SilentAudioError(InputError):
    """The file decodes but holds nothing but digital silence."""

    code = "silent_audio"


class AudioTooLongError(InputError):
    """The audio is longer than this installation accepts."""

    code = "audio_too_long"


class InvalidOptionError(InputError):
    """An option has a value outside what is accepted."""

    code = "invalid_option"


class UnsupportedLanguageError(InvalidOptionError):
    """The language code is unknown, or the chosen model cannot transcribe it."""

    code = "unsupported_language"


class InvalidLyricsError(InputError):
    """The lyric sheet given for alignment is unreadable, not text, or holds no lyric line."""

    code = "invalid_lyrics"


class ModelError(EngineError):
    """A model is missing, corrupt or failed to load."""

    code = "model_error"


class ModelNotAvailable(ModelError):
    """The model is not present locally; the message says how to get it."""

    code = "model_not_available"


class ModelCorruptError(ModelError):
    """The model files are present but fail verification or loading."""

    code = "model_corrupt"


class DeviceUnavailableError(ModelError):
    """The device asked for (``cuda``) is present but cannot run the model; the message says why."""

    code = "device_unavailable"


class SeparationError(EngineError):
    """Vocal separation failed for a reason other than missing weights."""

    code = "separation_failed"


class Cancelled(EngineError):
    """Raised from a progress callback to stop the pipeline at its next checkpoint."""

    code = "cancelled"

    def __init__(self, message: str = "the job was cancelled") -> None:
        super().__init__(message)
