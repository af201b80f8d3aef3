"""Generic TSV 1.0: what we write reads back identically; bad documents name the line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_pipeline import Segment, read_generic_tsv, write_generic_tsv
from audio_pipeline.segments import TsvFormatError, format_time, parse_time

micros = st.integers(0, 30 * 3600 * 1_000_000).map(lambda us: us / 1_000_000)
text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=40
)


@st.composite
def segments(draw: st.DrawFn) -> Segment:
    start = draw(micros)
    end = draw(st.one_of(st.none(), st.integers(1, 10**8).map(lambda us: start + us / 1_000_000)))
    attrs = draw(
        st.dictionaries(
            st.sampled_from(["gender", "age", "locale", "accent", "emotion"]),
            text.filter(lambda t: t != ""),
            max_size=5,
        )
    )
    return Segment(
        start=start,
        end=None if end is None else round(end, 6),
        label=draw(text.filter(bool)),
        transcription=draw(text),
        attributes=attrs,
        filename=draw(text),
        id=draw(st.integers(0, 10**6)),
        source=draw(st.sampled_from(["auto", "manual", "file"])),
        score=draw(st.floats(0, 1)),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(segments(), max_size=12))
def test_generic_tsv_round_trip(rows: list[Segment]) -> None:
    back = read_generic_tsv(write_generic_tsv(rows))
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        assert got.start == pytest.approx(want.start, abs=1e-6)
        assert (got.end is None) == (want.end is None)
        if want.end is not None:
            assert got.end == pytest.approx(want.end, abs=1e-6)
        assert (got.label, got.transcription, got.attributes, got.filename, got.id, got.source) == (
            want.label,
            want.transcription,
            want.attributes,
            want.filename,
            want.id,
            want.source,
        )
        assert got.score == want.score


def test_header_and_time_format_match_cvat() -> None:
    doc = write_generic_tsv(
        [
            Segment(
                1.5,
                3.25,
                "speech",
                "hello\tworld",
                {"gender": "female"},
                filename="clip.mp3",
                id=7,
                source="auto",
            )
        ]
    )
    header, line = doc.splitlines()
    assert header.split("\t") == [
        "id",
        "filename",
        "start",
        "stop",
        "label",
        "source",
        "score",
        "gender",
        "transcription",
    ]
    assert line.split("\t")[:4] == ["7", "clip.mp3", "0:00:01.500000", "0:00:03.250000"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0:00:01", 1.0), ("1:02:03.5", 3723.5), ("27:00:00.000001", 97200.000001)],
)
def test_times_parse_with_and_without_fractions(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds, abs=1e-9)
    assert parse_time(format_time(seconds)) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("", "no header"),
        ("id\tfilename\tstart\n", "lacks column"),
        (
            "id\tfilename\tstart\tstop\tlabel\tsource\tscore\n1\ta\t1:2\t\tx\tauto\t1\n",
            "line 2: time '1:2'",
        ),
        (
            "id\tfilename\tstart\tstop\tlabel\tsource\tscore\n1\ta\t0:00:02\t0:00:01\tx\tauto\t1\n",
            "line 2: stop 0:00:01 is not after start",
        ),
        ("id\tfilename\tstart\tstop\tlabel\tsource\tscore\n1\ta\t0:00:02\n", "line 2: 3 fields"),
    ],
)
def test_bad_documents_name_the_line(doc: str, message: str) -> None:
    with pytest.raises(TsvFormatError, match=message):
        read_generic_tsv(doc)


def test_humans_plain_annotator_tsv_and_cvats_crlf_export_are_read() -> None:
    """HUMAN's recording oracle reads `start stop label transcription`; real CVAT 2.73
    exports Generic TSV with CRLF line ends and times as `str(timedelta)`."""
    plain = read_generic_tsv("start\tstop\tlabel\ttranscription\n0:00:01.5\t0:00:03\tspeech\thi\n")
    assert [(s.start, s.end, s.label, s.transcription) for s in plain] == [
        (1.5, 3.0, "speech", "hi")
    ]
    assert plain[0].source == "manual" and plain[0].filename == ""
    cvat = (
        "id\tfilename\tstart\tstop\tlabel\tsource\tscore\ttranscription\r\n"
        "7\tclip.mp3\t0:00:00\t0:00:01.200000\tspeech\tmanual\t1.0\tgood night\r\n"
    )
    (seg,) = read_generic_tsv(cvat)
    assert (seg.id, seg.start, seg.end, seg.transcription) == (7, 0.0, 1.2, "good night")
