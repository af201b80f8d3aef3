"""Pre-annotations in each format a requester may have: times, text, labels and speakers
read as the file says, and a broken file refused with the place named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_pipeline.preannotations import (
    PreAnnotationError,
    Suggestion,
    pre_annotation_name,
    read_pre_annotations,
)

SRT = """1
00:00:01,000 --> 00:00:02,500
Hello <i>there</i>,
general Kenobi.

2
00:00:03,000 --> 00:00:04,000
Ça va ?
"""
VTT = """WEBVTT

00:01.000 --> 00:02.500
Hello there

00:03.000 --> 00:04.000 align:start
<v Anna>Second cue
"""
TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "anna"
        xmin = 0
        xmax = 5
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 1.25
            text = "hello there"
        intervals [2]:
            xmin = 1.25
            xmax = 5
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "ben"
        xmin = 0
        xmax = 5
        intervals: size = 1
        intervals [1]:
            xmin = 2
            xmax = 4.5
            text = "and you"
"""
RTTM = """SPEAKER talk 1 0.50 1.25 <NA> <NA> spk_a <NA> <NA>
SPEAKER other 1 0.00 9.00 <NA> <NA> spk_x <NA> <NA>
SPEAKER talk 1 3.000 0.5 <NA> <NA> spk_b <NA> <NA>
"""
TSV = (
    "id\tfilename\tstart\tstop\tlabel\tsource\tscore\ttranscription\tspeaker\n"
    "1\ttalk.mp3\t00:00:01.000\t00:00:02.000\tspeech\tmanual\t1\tgood morning\tanna\n"
    "2\tother.mp3\t00:00:01.000\t00:00:02.000\tspeech\tmanual\t1\telsewhere\t\n"
)


def test_srt_cues_become_plain_text_suggestions() -> None:
    found = read_pre_annotations("talk.srt", SRT.encode(), "talk.mp3")
    assert found == [
        Suggestion(1000, 2500, "Hello there, general Kenobi."),
        Suggestion(3000, 4000, "Ça va ?"),
    ]


def test_webvtt_cues_with_settings_and_voices() -> None:
    found = read_pre_annotations("talk.vtt", VTT.encode(), "talk.mp3")
    assert [(s.start_ms, s.end_ms) for s in found] == [(1000, 2500), (3000, 4000)]
    assert found[0].text == "Hello there" and "Second cue" in found[1].text


def test_a_textgrid_with_two_tiers_gives_two_speakers() -> None:
    found = read_pre_annotations("talk.TextGrid", TEXTGRID.encode(), "talk.mp3")
    assert found == [
        Suggestion(0, 1250, "hello there", speaker="anna"),
        Suggestion(2000, 4500, "and you", speaker="ben"),
    ]


def test_rttm_turns_of_this_file_only() -> None:
    found = read_pre_annotations("talk.rttm", RTTM.encode(), "talk.mp3")
    assert found == [
        Suggestion(500, 1750, speaker="spk_a"),
        Suggestion(3000, 3500, speaker="spk_b"),
    ]


def test_generic_tsv_rows_of_this_file_with_label_and_speaker() -> None:
    found = read_pre_annotations("talk.tsv", TSV.encode(), "talk.mp3")
    assert found == [Suggestion(1000, 2000, "good morning", "speech", "anna")]


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("talk.srt", b"1\n00:00:02,000 --> 00:00:01,000\nbackwards\n", "cue 1"),
        ("talk.rttm", b"SPEAKER talk 1 1.0 x <NA> <NA> a <NA> <NA>\n", "line 1"),
        ("talk.rttm", b"SPEAKER talk 1 -1 2 <NA> <NA> a <NA> <NA>\n", "non-negative"),
        ("talk.rttm", b"SPEAKER talk 1 nan 2 <NA> <NA> a <NA> <NA>\n", "finite"),
        ("talk.TextGrid", b"not a textgrid at all", "TextGrid"),
        ("talk.tsv", b"id\tstart\n1\t0\n", "header"),
        ("talk.srt", b"\xff\xfe\x00garbage", "UTF-8"),
        ("talk.docx", b"", "must be one of"),
    ],
)
def test_a_broken_file_is_refused_with_the_place_named(name: str, body: bytes, says: str) -> None:
    with pytest.raises(PreAnnotationError, match=says) as caught:
        read_pre_annotations(name, body, "talk.mp3")
    assert name in str(caught.value)


def test_the_file_for_a_media_file_is_found_by_its_name() -> None:
    names = {"talk.srt", "talk.notes", "other.TextGrid", "README.txt"}
    assert pre_annotation_name("talk.mp3", names) == "talk.srt"
    assert pre_annotation_name("other.wav", names) == "other.TextGrid"
    assert pre_annotation_name("third.wav", names) is None
    with pytest.raises(PreAnnotationError, match="more than one"):
        pre_annotation_name("talk.mp3", {"talk.srt", "talk.vtt"})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([".srt", ".vtt", ".TextGrid", ".rttm", ".tsv"]))
def test_any_bytes_give_suggestions_or_a_clear_refusal(body: bytes, ext: str) -> None:
    try:
        found = read_pre_annotations(f"talk{ext}", body, "talk.mp3")
    except PreAnnotationError:
        return
    assert all(0 <= s.start_ms < s.end_ms for s in found)
