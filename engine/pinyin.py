"""Pinyin with tone marks for Chinese text, from pypinyin's phrase-aware dictionary.

Phrase-aware matters: 银行 is yín háng, not yín xíng. Only Han characters are romanised;
digits, Latin words and punctuation pass through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from .types import Segment

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:])")
_MULTISPACE = re.compile(r"\s{2,}")
# Full-width punctuation reads oddly between Latin syllables: use the ASCII forms.
_ASCII_PUNCT = str.maketrans({"，": ", ", "。": ". ", "！": "! ", "？": "? ", "；": "; ", "：": ": ", "、": ", "})


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def romanise(text: str) -> str:
    """'你好，世界。' -> 'nǐ hǎo, shì jiè.'"""
    from pypinyin import Style, lazy_pinyin

    parts = [p.strip() for p in lazy_pinyin(text.strip(), style=Style.TONE, errors="default")]
    joined = " ".join(p for p in parts if p).translate(_ASCII_PUNCT)
    return _MULTISPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", joined)).strip()


def annotate(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    """Attach pinyin to every segment and word that contains Han characters."""
    out = []
    for seg in segments:
        if not has_han(seg.text):
            out.append(seg)
            continue
        words = tuple(replace(w, pinyin=romanise(w.text)) if has_han(w.text) else w for w in seg.words)
        out.append(replace(seg, pinyin=romanise(seg.text), words=words))
    return tuple(out)
