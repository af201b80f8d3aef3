"""The rules the dataset layouts share, on their own: speaker-disjoint splits, each
corpus's text conventions, metadata grammar, streaming cuts, refusals. (The layouts are
read back by the real loaders in tests/loaders/.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from audio_pipeline import InvalidParameterError, decode
from audio_pipeline.exports import EXPORTERS, ExportOptions, ExportSegment, export, file_stem
from audio_pipeline.exports.common import (
    ascii_words,
    iter_cuts,
    nist_sphere_header,
    split_by_speaker,
    spoken_words,
    token,
    unquoted_field,
)
from audio_pipeline.exports.commonvoice import cv_age, cv_locale
from audio_pipeline.exports.vctk import vctk_age
from oracle_core.manifest import Details
from sandbox.speech import Utterance, compose, write_audio


def seg(speaker: str, seconds: float, file: str = "a.wav", start_ms: int = 0) -> ExportSegment:
    return ExportSegment(file, start_ms, start_ms + round(seconds * 1000), "speech", "x y z",
                         {"speaker": speaker})  # fmt: skip


def test_splits_keep_each_speaker_in_one_split_and_fill_every_split() -> None:
    segments = [seg(f"s{n}", 10 + n) for n in range(10) for _ in range(3)]
    splits = split_by_speaker(segments, {"train": 0.8, "dev": 0.1, "test": 0.1})
    assert set(splits.values()) == {"train", "dev", "test"}
    seconds = {
        s: sum(x.seconds for x in segments if splits[x.speaker] == s) for s in splits.values()
    }
    assert seconds["train"] / sum(seconds.values()) > 0.6
    assert (
        split_by_speaker(list(reversed(segments)), {"train": 0.8, "dev": 0.1, "test": 0.1})
        == splits
    )


def test_with_few_speakers_train_always_gets_one_and_test_comes_before_dev() -> None:
    ratios = {"train": 0.8, "dev": 0.1, "test": 0.1}
    assert set(split_by_speaker([seg("a", 5)], ratios).values()) == {"train"}
    assert sorted(split_by_speaker([seg("a", 5), seg("b", 9)], ratios).values()) == [
        "test",
        "train",
    ]
    assert split_by_speaker([seg("a", 5), seg("b", 9)], {"train": 1.0}) == {
        "a": "train",
        "b": "train",
    }


def test_split_ratios_are_checked() -> None:
    for bad in ({"train": 0.5}, {"train": 0.9, "eval": 0.1}, {"train": 0, "test": 1}):
        with pytest.raises(InvalidParameterError):
            ExportOptions(ratios=bad)
    with pytest.raises(ValidationError, match="sum to 1"):
        Details(export_splits={"train": 0.5, "dev": 0.1})


def test_english_corpus_text_spells_numbers_and_transliterates_never_drops() -> None:
    assert (
        ascii_words("Room 101, then 3 more.").upper() == "ROOM ONE HUNDRED AND ONE THEN THREE MORE"
    )
    assert ascii_words("Naïve résumés, Straße & café") == "Naive resumes Strasse cafe"
    assert ascii_words("Привет") == "Privet"
    assert ascii_words("It\u2019s 'quoted' O'Brien") == "It's quoted O'Brien"


def test_multilingual_text_keeps_letters_and_spells_numbers_in_the_language() -> None:
    assert spoken_words("Das kostet 42 Euro!", "de") == "das kostet zweiundvierzig euro"
    assert spoken_words("Привет, мир.", "ru") == "привет мир"


def test_unquoted_fields_are_one_line_and_no_reader_strips_their_quotes() -> None:
    assert unquoted_field('"Yes," she said\tthen\nleft') == '\u201cYes," she said then left'
    assert token(" Ann  Lee ") == "Ann_Lee" and token("") == "unknown"


def test_metadata_follows_each_corpus_grammar() -> None:
    assert [cv_age(a) for a in ("twenties", "Forties", "50", "7", "old")] == [
        "twenties", "fourties", "fifties", "", ""]  # fmt: skip
    assert [cv_locale(c) for c in ("en-US", "zh-CN", "sv_se", "de")] == [
        "en",
        "zh-CN",
        "sv-SE",
        "de",
    ]
    assert [vctk_age(a) for a in ("23", "twenties", "unknown", "")] == [23, 25, None, None]


def test_cuts_stream_one_pass_and_match_the_decoded_audio(tmp_path: Path) -> None:
    track = compose([Utterance("one two three"), Utterance("four five six")], 1.0)
    path = write_audio(tmp_path / "a.wav", track.pcm, track.rate)
    whole = decode(path, rate=16_000)
    segments = [
        seg("a", 0.5, start_ms=100),
        seg("b", 1.0, start_ms=300),
        seg("c", 0.2, start_ms=2000),
    ]
    got = dict(iter_cuts(segments, lambda name: path, 16_000))
    for i, s in enumerate(segments):
        assert np.array_equal(got[i], whole[s.start_ms * 16 : s.end_ms * 16])
    late = [seg("a", 1.0, start_ms=len(whole) // 16)]
    with pytest.raises(InvalidParameterError, match="ends after the audio"):
        dict(iter_cuts(late, lambda name: path, 16_000))


def test_the_sphere_header_is_1024_bytes_that_name_the_audio() -> None:
    header = nist_sphere_header(16_000, 16_000)
    assert len(header) == 1024 and header.startswith(b"NIST_1A\n   1024\n")
    assert b"sample_count -i 16000" in header and b"sample_byte_format -s2 01" in header


def test_english_only_formats_are_refused_for_another_language_at_intake() -> None:
    with pytest.raises(ValidationError, match="hold English only.*'de'.*mls"):
        Details(language="de", export_formats=["librispeech", "native"])
    assert Details(language="de", export_formats=["commonvoice", "librivox"]).language == "de"


def test_unknown_formats_and_empty_segments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="unknown export format 'kaldi'"):
        export("kaldi", [], lambda name: tmp_path, tmp_path)
    empty = [ExportSegment("a.wav", 500, 500, "speech", "x")]
    with pytest.raises(InvalidParameterError, match="empty"):
        export("native", empty, lambda name: tmp_path, tmp_path)


def test_a_240_character_source_name_exports_in_every_format(tmp_path: Path) -> None:
    """Names built from a source file stay within what a file system takes (255 bytes), so
    a requester's long file name can never make an export fail (and be retried forever)."""
    track = compose([Utterance("the birch canoe slid on the planks")], 0.5)
    long = "a" * 240 + ".wav"
    path = write_audio(tmp_path / "src.wav", track.pcm, track.rate)
    span = track.spans[0]
    segment = ExportSegment(long, round(span.start * 1000), round(span.end * 1000), "speech",
                            "the birch canoe slid on the planks", {"gender": "male"})  # fmt: skip
    for fmt in EXPORTERS:
        done = export(fmt, [segment, replace(segment, attributes={"speaker": "x"})],
                      lambda name: path, tmp_path / fmt)  # fmt: skip
        assert done.files and all(len(f.name.encode()) < 255 for f in done.files), fmt
    assert len(file_stem(long).encode()) <= 80
