"""Which `model` names `/v1` accepts: the Whisper models installed here by their own names,
and OpenAI's names (``whisper-1``, ``gpt-4o-transcribe``, ``gpt-4o-mini-transcribe`` and
their dated or suffixed variants) as aliases of the server's default model, so a client
written for OpenAI works without knowing what this box runs."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
_ALIAS = re.compile(r"^(whisper-1|gpt-4o[a-z0-9.-]*-transcribe[a-z0-9.-]*)$")
OWNER = "textfromtrack-local"


@dataclass(frozen=True)
class Catalog:
    default: str
    installed: tuple[str, ...]
    created: int  # OpenAI's model objects carry a creation time; ours: when the server started

    def resolve(self, requested: str) -> str | None:
        """Our model name for what the client asked, or None when this box has no such model."""
        name = requested.strip()
        if _ALIAS.match(name.lower()):
            return self.default
        if name in self.installed or name == self.default:
            return name
        return None

    def ids(self) -> list[str]:
        return list(dict.fromkeys([self.default, *self.installed, *ALIASES]))

    def model_object(self, model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": self.created, "owned_by": OWNER}

    def listing(self) -> dict:
        return {"object": "list", "data": [self.model_object(m) for m in self.ids()]}


def english_only(model: str) -> bool:
    from models.registry import ALL_MODELS

    spec = ALL_MODELS.get(model)
    return (spec is not None and not spec.multilingual) or model.endswith(".en")


@lru_cache(maxsize=256)
def language_name(code: str | None) -> str:
    """The language's English name in lower case, as OpenAI's verbose_json gives it
    ("english", "french"); the code itself when it has no known name."""
    if not code:
        return "unknown"
    import langcodes

    try:
        name = langcodes.Language.get(code).display_name("en")
    except (ValueError, LookupError):
        return code
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # Māori -> maori
    return plain.lower() or code
