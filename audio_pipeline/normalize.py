"""Text normalisers applied to both sides before WER/CER, so scores measure words, not
typography. `basic`: Unicode NFKC, case folding, punctuation removed (apostrophes inside
words kept), whitespace collapsed. `en`: basic, then digits spelt out as English words
("42" -> "forty two", "3.5" -> "three point five")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from audio_pipeline.errors import InvalidParameterError

Normalizer = Callable[[str], str]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DIGIT = re.compile(r"\d")


class _PunctuationTable(dict[int, int | None]):
    """str.translate table: punctuation and symbols become spaces, everything else stays.
    Filled lazily, one Unicode category lookup per distinct character ever seen."""

    def __missing__(self, code: int) -> int:
        cat = unicodedata.category(chr(code))
        value = code if code == 0x27 or cat[0] not in "PS" else 0x20
        self[code] = value
        return value


_PUNCTUATION = _PunctuationTable()
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def _basic(text: str) -> str:
    """`basic` on text that is already NFKC."""
    text = text.translate(_APOSTROPHES).casefold().translate(_PUNCTUATION)
    if "'" in text:
        text = _LONE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def basic(text: str) -> str:
    return _basic(text if text.isascii() else unicodedata.normalize("NFKC", text))


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def english_number(n: int) -> str:
    """A non-negative integer in words: 1905 -> "one thousand nine hundred five"."""
    if n < 0:
        raise InvalidParameterError(f"{n} is negative")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {english_number(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{english_number(high)} {name}" + (f" {english_number(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _spell_english(match: re.Match[str]) -> str:
    token = match.group(0)
    if "." in token and token.count(".") == 1 and "," not in token:
        whole, frac = token.split(".")
        return f"{english_number(int(whole))} point " + " ".join(_ONES[int(d)] for d in frac)
    digits = token.replace(",", "").replace(".", "")
    if len(digits) > 15:
        return " ".join(_ONES[int(d)] for d in digits)
    return english_number(int(digits))


def english(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if _DIGIT.search(text):
        text = _NUMBER.sub(lambda m: f" {_spell_english(m)} ", text)
    return _basic(text)


def none(text: str) -> str:
    """No normalisation (a manifest's `normalizer: null`): words compared as written."""
    return " ".join(text.split())


NORMALIZERS: dict[str, Normalizer] = {"basic": basic, "en": english, "none": none}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")


def get_normalizer(name: str) -> Normalizer:
    """A normaliser by name; a language code without its own rules (e.g. "de") uses
    `basic`, and a regional code uses its language ("en-GB" -> "en")."""
    if name in NORMALIZERS:
        return NORMALIZERS[name]
    if _LANGUAGE.match(name):
        return NORMALIZERS.get(re.split("[-_]", name)[0], basic)
    raise InvalidParameterError(
        f"unknown normalizer '{name}': use {', '.join(NORMALIZERS)} or a language code"
    )
