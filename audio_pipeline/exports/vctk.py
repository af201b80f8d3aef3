"""VCTK 0.92: `VCTK-Corpus-0.92/wav48_silence_trimmed/<p>/<p>_<nnn>_mic{1,2}.flac` (48 kHz
FLAC), `txt/<p>/<p>_<nnn>.txt` and `speaker-info.txt`, as lhotse (use_edinburgh_vctk_url=
True) and torchaudio's VCTK_092 read them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    english_only,
    iter_encoded,
    one_line,
    token,
    with_text,
)

ROOT = "VCTK-Corpus-0.92"
# Both loaders treat these speakers specially (p280 has no mic2, p362 lacks audio): skipped.
SKIPPED = {280, 362}
DECADES = ("teens", "twenties", "thirties", "forties", "fifties", "sixties", "seventies",
           "eighties", "nineties")  # fmt: skip
BUCKETS = {name: 15 + 10 * n for n, name in enumerate(DECADES)} | {"fourties": 45}


def vctk_age(value: str) -> int | None:
    value = value.strip().lower()
    if value.isdigit():
        return int(value)
    return BUCKETS.get(value)


def _speaker_ids() -> Iterator[str]:
    n = 225
    while True:
        if n not in SKIPPED:
            yield f"p{n}"
        n += 1


def vctk(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("vctk", out_dir)
    segments = english_only("vctk", segments, options, out)
    segments = with_text(segments, out, lambda s: one_line(s.transcription))
    ids = _speaker_ids()
    speakers = {name: next(ids) for name in sorted({s.speaker for s in segments})}
    order = sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms))
    counts: dict[str, int] = defaultdict(int)
    uids = {}
    for i in order:
        spk = speakers[segments[i].speaker]
        counts[spk] += 1
        uids[i] = f"{spk}_{counts[spk]:03d}"
    info: dict[str, str] = {}
    unaged = []
    for i, data in iter_encoded(segments, open_audio, 48_000, "flac"):
        seg, uid = segments[i], uids[i]
        spk = speakers[seg.speaker]
        flac = data  # the same file under both mic names
        for mic in ("mic1", "mic2"):
            out.write(f"{ROOT}/wav48_silence_trimmed/{spk}/{uid}_{mic}.flac", flac)
        out.write(f"{ROOT}/txt/{spk}/{uid}.txt", one_line(seg.transcription) + "\n")
        if spk in info or spk in unaged:
            continue
        age = vctk_age(seg.attr("age", ""))
        if age is None:
            unaged.append(spk)
            continue
        gender = {"male": "M", "female": "F"}.get(seg.attr("gender"), "U")
        region = token(seg.attr("locale", options.language))
        info[spk] = (
            f"{spk}  {age}  {gender}  {token(seg.attr('accent'))}  {region}  {token(seg.speaker)}"
        )
    lines = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS", *(info[k] for k in sorted(info))]
    out.write(f"{ROOT}/speaker-info.txt", "\n".join(lines) + "\n")
    if unaged:
        out.notes.append(
            f"speaker(s) {', '.join(sorted(unaged))} have no age, so no line in "
            "speaker-info.txt (its AGE is a number; loaders then give no gender or accent)"
        )
    out.placeholders += [
        "one microphone was recorded: _mic2.flac is the same audio as _mic1.flac (both "
        "loaders read mic2 by default)",
        "audio is resampled to 48 kHz whatever the source rate",
        "AGE: the age attribute in years; a bucket becomes its middle (twenties -> 25)",
        "ACCENTS: the accent attribute, REGION: the locale, COMMENTS: the speaker name (spaces "
        "as _); GENDER U where it is missing",
        "speaker ids from p225 in order of the speaker names, p280 and p362 skipped",
        "VCTK has no splits: every utterance is in the one corpus",
    ]
    out.readme(
        f"Layout: {ROOT}/ as VCTK 0.92. lhotse: prepare_vctk(this folder/{ROOT}, "
        "use_edinburgh_vctk_url=True); torchaudio: VCTK_092(this folder)."
    )
    return out
