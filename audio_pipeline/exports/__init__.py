"""Dataset exports: accepted segments (source time) and their source audio, written as the
real corpora are laid out, so that the loaders people train with read them (lhotse's
recipes, torchaudio's dataset classes, SpeechBrain's preparation, HuggingFace audiofolder).

Shared rules (each export's README.txt lists what it used):
- speaker: the segment's `speaker` attribute if the job asked for one, else one speaker per
  source file (its stem).
- splits: by speaker, never one speaker in two; shares of the audio from the manifest's
  `export_splits` (default train 0.8, dev 0.1, test 0.1); with fewer speakers than splits,
  the empty ones are named in the README.
- text: each corpus's own conventions (see the modules); numbers are spelt out and letters
  transliterated or kept, never dropped; segments without words are left out of speech
  recognition corpora, with a count in the README.
- English-only corpora (librispeech, tedlium, vctk) refuse another language, naming the
  formats that hold it.
- audio: cut from each source in one streaming decode pass, in each corpus's own codec and
  rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.exports.common import (
    DEFAULT_RATIOS,
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    file_stem,
)
from audio_pipeline.exports.commonvoice import CV_HEADER, common_voice
from audio_pipeline.exports.librispeech import librispeech
from audio_pipeline.exports.mls import mls
from audio_pipeline.exports.native import NATIVE_FIELDS, native
from audio_pipeline.exports.tedlium import tedlium
from audio_pipeline.exports.vctk import vctk
from audio_pipeline.exports.voxceleb import voxceleb
from audio_pipeline.exports.voxpopuli import VP_HEADER, voxpopuli

Exporter = Callable[[Sequence[ExportSegment], OpenAudio, Path, ExportOptions], Exported]
EXPORTERS: dict[str, Exporter] = {
    "commonvoice": common_voice,
    "librispeech": librispeech,
    "tedlium": tedlium,
    "voxceleb": voxceleb,
    "vctk": vctk,
    "voxpopuli": voxpopuli,
    "librivox": mls,
    "native": native,
}
ENGLISH_ONLY = ("librispeech", "tedlium", "vctk")
# What each layout fills in that an annotation cannot know (the export's README.txt says
# exactly what it used); shown by `audio-oracles export --help`.
PLACEHOLDERS = {
    "commonvoice": "client_id = sha256 of the speaker; up_votes 2, down_votes 0; "
    "validated.tsv = every clip",
    "librispeech": "speaker and chapter numbers (chapter = source file); subsets "
    "train-clean-100/dev-clean/test-clean by split; SEX U when unknown",
    "tedlium": "talk = source file, its whole audio as the .sph; label <o,f0,GENDER>",
    "voxceleb": "video = source file; Set dev/test; Nationality = the locale's region; "
    "trial pairs made among the test speakers",
    "vctk": "_mic2 = a copy of _mic1; AGE bucket -> its middle; speakers without an age "
    "left out of speaker-info.txt; ids from p225 (p280, p362 skipped)",
    "voxpopuli": "session 20200101-0000 in every id (year folder 2020); is_gold_transcript True",
    "librivox": "Multilingual LibriSpeech layout; book = source file; BOOK ID 0, TITLE and "
    "CHAPTER unknown",
    "native": "none (every field, plus metadata.jsonl for audiofolder)",
}

__all__ = [
    "CV_HEADER", "DEFAULT_RATIOS", "ENGLISH_ONLY", "EXPORTERS", "NATIVE_FIELDS", "PLACEHOLDERS",
    "VP_HEADER",
    "ExportOptions", "ExportSegment", "Exported", "export", "file_stem",
]  # fmt: skip


def export(
    name: str,
    segments: Sequence[ExportSegment],
    open_audio: OpenAudio,
    out_dir: Path,
    options: ExportOptions | None = None,
) -> Exported:
    try:
        exporter = EXPORTERS[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown export format '{name}': use {', '.join(EXPORTERS)}"
        ) from None
    bad = [s for s in segments if s.end_ms <= s.start_ms]
    if bad:
        raise InvalidParameterError(f"segment of {bad[0].file} at {bad[0].start_ms} ms is empty")
    return exporter(list(segments), open_audio, out_dir, options or ExportOptions())
