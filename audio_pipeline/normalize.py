"""Text normalisers applied to both sides before WER/CER, so scores measure words, not
typography. A manifest's `normalizer` picks one:

- `basic` (ours): Unicode NFKC, case folding, `[bracketed]`, `(parenthesised)` and
  `<tagged>` text dropped (noise tags such as `[laughs]`), punctuation removed with
  apostrophes inside words kept ("don't" stays one word), whitespace collapsed.
- a language code (`en`, `es`, `fr`, `it`, `pt`, `pl`, `de`, `nl`, `ru`, `tr`, `zh`, `ja`,
  `ko`, `hi`, `ar`; a regional code uses its language): the steps HUMAN's recording oracle
  takes for that language (its `audio_qe` presets: apostrophe and quote unification,
  contractions for English, ß, ĳ, ё, Turkish dotted i, CJK punctuation, Hindi nukta and
  danda, Arabic tatweel, alef, yaa and diacritics), then ours on top: digits spelt out in
  that language with `num2words` ("42" and "forty two" are the same words), and Chinese
  and Japanese scored character by character even under WER (they are written unspaced).
- `human-basic`: HUMAN's basic stack exactly (apostrophes become spaces).
- `whisper-en`, `whisper-basic`: Whisper's English and basic normalisers
  (`whisper-normalizer`), the field's common yardstick.
- `none` (a manifest's `null`): whitespace collapsed, nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from audio_pipeline.errors import InvalidParameterError

Normalizer = Callable[[str], str]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"'})
_ZERO_WIDTH = str.maketrans({c: None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"})
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DIGIT = re.compile(r"\d")


class _PunctuationTable(dict[int, int | None]):
    """str.translate table: punctuation and symbols become spaces, everything else stays
    (apostrophes too, when `keep` holds them). Filled lazily, one category lookup per
    distinct character ever seen."""

    def __init__(self, keep: str = "") -> None:
        super().__init__()
        self.keep = {ord(c) for c in keep}
        if self.keep:  # curly apostrophes become the plain one in the same pass
            self.update({0x2019: 0x27, 0x2018: 0x27, 0x02BC: 0x27})

    def __missing__(self, code: int) -> int:
        cat = unicodedata.category(chr(code))
        value = code if code in self.keep or cat[0] not in "PS" else 0x20
        self[code] = value
        return value


_PUNCTUATION = _PunctuationTable(keep="'")
_ALL_PUNCTUATION = _PunctuationTable()
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def _basic(text: str) -> str:
    """`basic` on text that is already NFKC."""
    text = text.casefold()
    if "[" in text or "(" in text or "<" in text:
        text = _BRACKETS.sub(" ", text)
    text = text.translate(_PUNCTUATION)  # apostrophes unified in the same pass
    if "'" in text:
        text = _LONE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def basic(text: str) -> str:
    return _basic(text if text.isascii() else unicodedata.normalize("NFKC", text))


def none(text: str) -> str:
    """No normalisation (a manifest's `normalizer: null`): words compared as written."""
    return " ".join(text.split())


# -- numbers ---------------------------------------------------------------------------
def spell_numbers(text: str, lang: str) -> str:
    """Digits as words in `lang` (num2words); English reads `1,000.5` as one number, other
    languages each run of digits as one."""
    if not _DIGIT.search(text):
        return text
    from num2words import num2words

    def words(match: re.Match[str]) -> str:
        token = match.group(0)
        if lang == "en":
            plain = token.replace(",", "")
            if plain.count(".") == 1:
                whole, frac = plain.split(".")
                return f" {num2words(int(whole), lang=lang)} point " + " ".join(
                    num2words(int(d), lang=lang) for d in frac
                )
            token = plain.replace(".", "")
        parts = re.split(r"[.,]", token)
        out: list[str] = []
        for part in parts:
            if len(part) > 15:  # an id or a phone number: digit by digit
                out.extend(num2words(int(d), lang=lang) for d in part)
            else:
                out.append(num2words(int(part), lang=lang))
        return " " + " ".join(out) + " "

    return _NUMBER.sub(words, text)


def english(text: str) -> str:
    """`basic` with English contractions expanded and digits spelt out."""
    return _basic(spell_numbers(_contractions(_nfkc(text)), "en"))


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


# -- HUMAN's language presets (recording oracle `audio_qe`), restated -----------------
_CONTRACTIONS = [
    (r"\bcan't\b", "can not"),
    (r"\bwon't\b", "will not"),
    (r"\bshan't\b", "shall not"),
    (r"\bain't\b", "is not"),
    (r"\bi'm\b", "i am"),
    (r"\b(it|he|she|that|there|here|what|who|where|how|when|let)'s\b", r"\1 is"),
    (r"\b(i|you|we|they|who)'ve\b", r"\1 have"),
    (r"\b(i|you|he|she|it|we|they)'ll\b", r"\1 will"),
    (r"\b(i|you|he|she|it|we|they)'d\b", r"\1 would"),
    (r"\b(you|we|they)'re\b", r"\1 are"),
    (r"\b(\w+)n't\b", r"\1 not"),
]
_CONTRACTION_RES = [(re.compile(p, re.IGNORECASE), r) for p, r in _CONTRACTIONS]


def _contractions(text: str) -> str:
    if "'" not in text and "\u2019" not in text:
        return text
    text = text.translate(_APOSTROPHES)
    for pattern, repl in _CONTRACTION_RES:
        text = pattern.sub(repl, text)
    return text


_CJK_PUNCT = str.maketrans({c: " " for c in "，。、；：？！…—·「」『』〈〉《》【】〖〗〔〕"})
_HINDI_NUKTA = {chr(0x0958 + i): base + "\u093c" for i, base in enumerate("कखगजडढफय")}
_HINDI = str.maketrans({**_HINDI_NUKTA, "\u0964": " ", "\u0965": " ", "\u0901": "\u0902"})
_ARABIC = str.maketrans({"\u0640": None, "أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي"})
_TURKISH = str.maketrans({"İ": "i", "I": "ı"})
_CJK_CHAR = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    )


def _language_body(lang: str) -> Callable[[str], str]:
    nfc = lambda t: unicodedata.normalize("NFC", t)  # noqa: E731
    nfkc = lambda t: unicodedata.normalize("NFKC", t)  # noqa: E731
    bodies: dict[str, Callable[[str], str]] = {
        "de": lambda t: nfc(t).casefold().replace("ß", "ss"),
        "nl": lambda t: nfc(t).replace("ĳ", "ij").replace("Ĳ", "IJ").casefold(),
        "ru": lambda t: nfc(t).casefold().replace("ё", "е"),
        "tr": lambda t: nfc(t).translate(_TURKISH).casefold(),
        "zh": lambda t: nfkc(t).translate(_CJK_PUNCT),
        "ja": lambda t: nfkc(t).translate(_CJK_PUNCT),
        "ko": lambda t: nfc(t).translate(_CJK_PUNCT),
        "hi": lambda t: nfc(t.translate(_HINDI)),
        "ar": lambda t: _strip_marks(nfc(t).translate(_ARABIC)),
    }
    return bodies.get(lang, lambda t: nfc(t).casefold())  # es, fr, it, pt, pl


LANGUAGES = (
    "en",
    "es",
    "fr",
    "it",
    "pt",
    "pl",
    "de",
    "nl",
    "ru",
    "tr",
    "zh",
    "ja",
    "ko",
    "hi",
    "ar",
)


def human_preset(lang: str, *, ours: bool = True) -> Normalizer:
    """HUMAN's preset for `lang`; with `ours`, digits spelt out and CJK split in
    characters on top."""
    body = _language_body(lang)

    def normalize(text: str) -> str:
        text = text.translate(_APOSTROPHES).translate(_QUOTES).translate(_ZERO_WIDTH)
        text = _BRACKETS.sub(" ", text)
        if ours:
            text = spell_numbers(text, lang)
        text = body(text)
        keep = ours and "'" in text
        text = text.translate(_PUNCTUATION if keep else _ALL_PUNCTUATION)
        if ours and lang in ("zh", "ja"):
            text = _CJK_CHAR.sub(r" \1 ", text)
        return " ".join(text.split())

    return normalize


def human_basic(text: str) -> str:
    """HUMAN's BASIC stack: apostrophes and quotes unified, NFKC, zero-width characters
    removed, case folded, brackets dropped, every punctuation mark a space."""
    text = unicodedata.normalize("NFKC", text.translate(_APOSTROPHES).translate(_QUOTES))
    text = _BRACKETS.sub(" ", text.translate(_ZERO_WIDTH).casefold())
    return " ".join(text.translate(_ALL_PUNCTUATION).split())


@cache
def _whisper(kind: str) -> Normalizer:
    if kind == "en":
        from whisper_normalizer.english import EnglishTextNormalizer

        normalizer: Normalizer = EnglishTextNormalizer()
    else:
        from whisper_normalizer.basic import BasicTextNormalizer

        normalizer = BasicTextNormalizer()
    return normalizer


NORMALIZERS: dict[str, Normalizer] = {
    "basic": basic,
    "none": none,
    "human-basic": human_basic,
    "whisper-en": lambda t: _whisper("en")(t),
    "whisper-basic": lambda t: _whisper("basic")(t),
    "en": english,  # HUMAN's English steps (contractions) plus ours, in one fast pass
}
for _lang in LANGUAGES[1:]:
    NORMALIZERS[_lang] = human_preset(_lang)
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})?$")


def get_normalizer(name: str) -> Normalizer:
    """A normaliser by name; a regional code uses its language ("en-GB" -> "en"). A
    language without a preset is refused rather than quietly scored another way."""
    if name in NORMALIZERS:
        return NORMALIZERS[name]
    code = _LANGUAGE.match(name)
    if code and code.group(1) in NORMALIZERS:
        return NORMALIZERS[code.group(1)]
    raise InvalidParameterError(
        f"unknown normalizer '{name}': use basic, none, human-basic, whisper-en, "
        f"whisper-basic or a language code ({', '.join(LANGUAGES)})"
    )
