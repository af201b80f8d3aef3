"""Common Voice (v17+ layout): `<locale>/clips/*.mp3` (48 kHz mono MP3) and the split TSVs,
written as Common Voice writes them (tab-separated, unquoted). One folder per locale: a
segment's `locale` attribute, else the escrow's language, as Common Voice's codes."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    SPLITS,
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    empty_splits_note,
    iter_encoded,
    language_of,
    segment_language,
    split_within,
    tsv,
    unquoted_field,
    with_text,
)

CV_HEADER = [
    "client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
    "down_votes", "age", "gender", "accents", "variant", "locale", "segment",
]  # fmt: skip
CV_SPLITS = ("train", "dev", "test", "validated", "invalidated", "other")
# Common Voice keeps the region in these locale codes only; every other one is the language.
REGIONAL = {"zh-CN", "zh-TW", "zh-HK", "sv-SE", "ga-IE", "pa-IN", "hy-AM", "ne-NP", "nn-NO",
            "nb-NO", "es-AR", "fy-NL", "rm-sursilv", "rm-vallader"}  # fmt: skip
CV17_GENDERS = ("male_masculine", "female_feminine", "intersex", "transgender", "non-binary",
                "do_not_wish_to_say")  # fmt: skip
GENDERS = {"male": "male_masculine", "m": "male_masculine", "female": "female_feminine",
           "f": "female_feminine", **{g: g for g in CV17_GENDERS}}  # fmt: skip
# The locales lhotse's prepare_commonvoice finds with languages="auto".
LHOTSE_AUTO = {"en", "de", "fr", "cy", "tt", "kab", "ca", "zh-TW", "it", "fa", "eu", "es", "ru",
               "tr", "nl", "eo", "zh-CN", "rw", "pt", "zh-HK", "cs", "pl", "uk"}  # fmt: skip
AGES = ("teens", "twenties", "thirties", "fourties", "fifties", "sixties", "seventies",
        "eighties", "nineties")  # fmt: skip


def cv_locale(code: str) -> str:
    """`en-US` -> `en`; `zh-CN` stays (Common Voice's folder names)."""
    parts = re.split(r"[-_]", code.strip())
    regional = f"{parts[0].lower()}-{parts[1].upper()}" if len(parts) > 1 else ""
    return regional if regional in REGIONAL else language_of(code)


def cv_age(value: str) -> str:
    """Common Voice's age bucket (its own spelling, `fourties`); a number of years goes to
    its decade's bucket; anything else is left empty, as Common Voice does."""
    value = value.strip().lower().replace("forties", "fourties")
    if value in AGES:
        return value
    if value.isdigit():
        years = int(value)
        return "teens" if 10 <= years < 20 else AGES[min(years // 10 - 1, 8)] if years >= 20 else ""
    return ""


def common_voice(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("commonvoice", out_dir)
    segments = with_text(segments, out, lambda s: unquoted_field(s.transcription))

    def folder(seg: ExportSegment) -> str:
        return cv_locale(segment_language(seg, options))

    split_of = split_within(segments, options.ratios, folder)
    rows: dict[tuple[str, str], list[list[object]]] = defaultdict(list)
    durations: dict[str, list[list[object]]] = defaultdict(list)
    for i, data in iter_encoded(segments, open_audio, 48_000, "mp3"):
        seg = segments[i]
        locale = cv_locale(segment_language(seg, options))
        name = f"common_voice_{locale}_{i + 1:08d}.mp3"
        out.write(f"{locale}/clips/{name}", data)
        sentence = unquoted_field(seg.transcription)
        row = [
            hashlib.sha256(seg.speaker.encode()).hexdigest(), name,
            hashlib.sha256(sentence.encode()).hexdigest(), sentence, "", 2, 0,
            cv_age(seg.attr("age", "")), GENDERS.get(seg.attr("gender", "").lower(), ""),
            unquoted_field(seg.attr("accent", "")), "", locale, "",
        ]  # fmt: skip
        rows[(locale, split_of(seg))].append(row)
        rows[(locale, "validated")].append(row)
        durations[locale].append([name, seg.end_ms - seg.start_ms])
    for locale in sorted(durations):
        for split in CV_SPLITS:
            out.write(f"{locale}/{split}.tsv", tsv(CV_HEADER, sorted(rows[(locale, split)])))
        out.write(f"{locale}/clip_durations.tsv", tsv(["clip", "duration[ms]"], durations[locale]))
    empty_splits_note(
        out,
        segments,
        split_of,
        "lhotse's prepare_commonvoice reads test, dev and train: pass splits=('train',)",
    )
    others = sorted(set(durations) - LHOTSE_AUTO)
    if others:
        out.notes.append(
            f"lhotse's languages='auto' knows 23 locales only: pass languages={others!r}"
        )
    out.placeholders += [
        "client_id: sha256 of the speaker (the `speaker` attribute, else the source file)",
        "up_votes 2 / down_votes 0: accepted by the recording oracle",
        "splits by speaker ("
        + ", ".join(f"{s} {options.ratios.get(s, 0):.0%}" for s in SPLITS)
        + " of the audio); validated.tsv holds every clip; invalidated/other are empty",
        "gender as Common Voice 17 writes it (male_masculine, female_feminine, ...); age as its "
        "buckets (a number of years becomes its decade, `fourties` spelt as Common Voice does)",
    ]
    out.readme(
        "Layout: <locale>/clips/*.mp3 (48 kHz mono), <locale>/{train,dev,test,validated,"
        "invalidated,other}.tsv with Common Voice 17's header, unquoted as Common Voice "
        "writes them (a sentence never holds a tab or a line break; a leading straight quote "
        "is written typographic so that no reader strips it), clip_durations.tsv."
    )
    return out
