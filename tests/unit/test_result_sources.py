"""Where each accepted segment came from reaches the results: a suggestion or VAD
pre-segment accepted as it was, edited, or the worker's own, as CVAT kept it."""

from __future__ import annotations

from audio_pipeline.clips import Piece, TimeMap
from audio_pipeline.segments import read_generic_tsv
from audio_pipeline.validation import Interval
from recording_oracle.results import FinalJob, generic_tsv, source_rows
from recording_oracle.scoring import from_json, intervals_of, to_json


def test_sources_survive_scoring_storage_and_the_results_tsv() -> None:
    exported = (
        "id\tfilename\tstart\tstop\tlabel\tsource\tscore\ttranscription\n"
        "1\tclip-0000.mp3\t00:00:00.100\t00:00:01.000\tspeech\tfile\t1\tas suggested\n"
        "2\tclip-0000.mp3\t00:00:01.200\t00:00:02.000\tspeech\tsemi-auto\t1\tcorrected\n"
        "3\tclip-0000.mp3\t00:00:02.200\t00:00:03.000\tspeech\tmanual\t1\tmine\n"
    )
    intervals = intervals_of(read_generic_tsv(exported), 3000)
    stored = from_json(to_json(intervals))  # as the results table keeps them
    assert [i.source for i in stored] == ["file", "semi-auto", "manual"]
    tmap = TimeMap((Piece(0, "talk.mp3", 5000, 3000),), 3000)
    rows = source_rows([FinalJob(1, "clip-0000.mp3", "a1", "0xabc", stored, tmap)])
    assert [(r["start_ms"], r["source"]) for r in rows] == [
        (5100, "file"),
        (6200, "semi-auto"),
        (7200, "manual"),
    ]
    written = read_generic_tsv(generic_tsv(rows))
    assert [s.source for s in written] == ["file", "semi-auto", "manual"]


def test_results_scored_before_sources_were_kept_read_as_manual() -> None:
    old = [{"start_ms": 0, "end_ms": 10, "label": "x", "transcription": "", "attributes": {}}]
    assert from_json(old) == [Interval(0, 10, "x")]
