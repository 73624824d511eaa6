"""Words → search terms, in French: lower case, stemmed, accents removed (VLT-4).

"hémoglobine", "Hemoglobine" and "hémoglobines" give the same term. The vault stores only
keyed hashes of these terms (a blind index), never the words themselves.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import snowballstemmer

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOP_WORDS = frozenset(
    (
        "a",
        "au",
        "aux",
        "avec",
        "ce",
        "ces",
        "cet",
        "cette",
        "d",
        "dans",
        "de",
        "des",
        "du",
        "elle",
        "en",
        "et",
        "est",
        "il",
        "ils",
        "je",
        "l",
        "la",
        "le",
        "les",
        "leur",
        "lui",
        "m",
        "ma",
        "mais",
        "me",
        "mes",
        "mon",
        "n",
        "ne",
        "nous",
        "on",
        "ou",
        "par",
        "pas",
        "pour",
        "qu",
        "que",
        "qui",
        "s",
        "sa",
        "se",
        "ses",
        "son",
        "sur",
        "t",
        "ta",
        "te",
        "tes",
        "ton",
        "tu",
        "un",
        "une",
        "vos",
        "votre",
        "vous",
        "y",
    )
)
MAX_TERMS = 5000


@cache
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("french")


def unaccent(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def term(word: str) -> str:
    """The search term of one lower-case word: its French stem, without accents."""
    return unaccent(_stemmer().stemWord(word))


def terms(text: str) -> list[str]:
    """Distinct search terms of ``text``, in order of first appearance (at most MAX_TERMS)."""
    seen: dict[str, None] = {}
    for word in dict.fromkeys(WORD.findall(text.lower())):
        if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(term(word), None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)
