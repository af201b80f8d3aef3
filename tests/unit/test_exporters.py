"""Each dataset export parses back by its own format's conventions, with the audio cut
where the segments say."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from audio_pipeline import InvalidParameterError, decode, probe
from audio_pipeline.exporters import (
    CV_HEADER,
    LIBRIVOX_HEADER,
    VP_HEADER,
    ExportSegment,
    export,
)
from sandbox.speech import Utterance, compose, write_audio

TEXTS = {
    "alice.wav": ["The birch canoe slid on the smooth planks", "Glue the sheet to the dark blue"],
    "bob.mp3": ["It is easy to tell the depth of a well"],
}


@pytest.fixture(scope="module")
def sources(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Path], list[ExportSegment]]:
    root = tmp_path_factory.mktemp("src")
    paths, segments = {}, []
    for name, texts in TEXTS.items():
        track = compose([Utterance(t) for t in texts], 1.0)
        path = root / name
        write_audio(path, track.pcm, track.rate)
        paths[name] = path
        gender = "female" if name == "alice.wav" else "male"
        for span, text in zip(track.spans, texts, strict=True):
            segments.append(
                ExportSegment(
                    name,
                    round(span.start * 1000),
                    round(span.end * 1000),
                    "speech",
                    text,
                    {"gender": gender, "locale": "en-US"},
                    "0xabc",
                )
            )
    return paths, segments


def run(fmt: str, sources: tuple[dict[str, Path], list[ExportSegment]], tmp_path: Path) -> Path:
    paths, segments = sources
    export(fmt, segments, paths.__getitem__, tmp_path / fmt)
    assert (tmp_path / fmt / "README.txt").exists()
    return tmp_path / fmt


def duration_ms(path: Path) -> float:
    return len(decode(path, rate=16_000)) / 16


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def lengths(segments: list[ExportSegment]) -> list[int]:
    return [s.end_ms - s.start_ms for s in segments]


def test_common_voice(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("commonvoice", sources, tmp_path) / "en"
    with (root / "validated.tsv").open() as f:
        assert f.readline().rstrip("\n").split("\t") == CV_HEADER
    rows = read_tsv(root / "validated.tsv")
    assert [r["sentence"] for r in rows] == [s.transcription for s in sources[1]]
    assert read_tsv(root / "train.tsv") == rows and read_tsv(root / "test.tsv") == []
    durations = {r["clip"]: int(r["duration[ms]"]) for r in read_tsv(root / "clip_durations.tsv")}
    for row, want in zip(rows, lengths(sources[1]), strict=True):
        clip = root / "clips" / row["path"]
        assert probe(clip).codec.startswith("mp3") and probe(clip).sample_rate == 48_000
        assert abs(duration_ms(clip) - want) < 60 and durations[row["path"]] == want
    assert {r["gender"] for r in rows} == {"female", "male"}


def test_librispeech(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("librispeech", sources, tmp_path)
    trans = sorted(root.glob("train-annotated/*/*/*.trans.txt"))
    assert trans
    said = []
    for t in trans:
        for line in t.read_text().splitlines():
            uid, text = line.split(" ", 1)
            flac = t.parent / f"{uid}.flac"
            assert flac.exists() and probe(flac).sample_rate == 16_000
            assert text == text.upper()
            said.append(text)
    assert sorted(said) == sorted(s.transcription.upper() for s in sources[1])
    speakers = [
        line.split("|")
        for line in (root / "SPEAKERS.TXT").read_text().splitlines()
        if not line.startswith(";")
    ]
    folders = {p.name for p in (root / "train-annotated").iterdir()}
    assert {s[0].strip() for s in speakers} == folders
    assert {s[1].strip() for s in speakers} == {"F", "M"}
    chapters = [
        line.split("|")[0].strip()
        for line in (root / "CHAPTERS.TXT").read_text().splitlines()
        if not line.startswith(";")
    ]
    assert set(chapters) == {p.name for p in root.glob("train-annotated/*/*")}


def test_tedlium(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = sources[0]
    root = run("tedlium", sources, tmp_path)
    for stm in (root / "data" / "stm").glob("*.stm"):
        source = next(p for p in paths.values() if p.stem == stm.stem)
        total = duration_ms(source) / 1000
        lines = stm.read_text().splitlines()
        assert len(lines) == len(list((root / "data" / "wav" / stm.stem).glob("*.wav")))
        for line in lines:
            talk, channel, _speaker, start, end, label, *words = line.split()
            assert talk == stm.stem and channel == "1" and label.startswith("<o,f0,")
            assert 0 <= float(start) < float(end) <= total and words


def test_voxceleb(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("voxceleb", sources, tmp_path)
    meta = read_tsv(root / "vox1_meta.csv")
    assert {m["VoxCeleb1 ID"] for m in meta} == {p.name for p in (root / "wav").iterdir()}
    assert {m["Gender"] for m in meta} == {"f", "m"}
    assert len(list(root.glob("wav/*/*/*.wav"))) == len(sources[1])


def test_vctk(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("vctk", sources, tmp_path)
    txts = sorted(root.glob("txt/*/*.txt"))
    assert len(txts) == len(sources[1])
    for t in txts:
        flac = root / "wav48_silence_trimmed" / t.parent.name / f"{t.stem}_mic1.flac"
        assert flac.exists() and probe(flac).sample_rate == 48_000
    ids = [line.split()[0] for line in (root / "speaker-info.txt").read_text().splitlines()[1:]]
    assert set(ids) == {p.name for p in (root / "txt").iterdir()}


def test_voxpopuli(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("voxpopuli", sources, tmp_path) / "transcribed_data" / "en"
    with (root / "asr_train.tsv").open() as f:
        assert f.readline().rstrip("\n").split("\t") == VP_HEADER
    rows = read_tsv(root / "asr_train.tsv")
    for row in rows:
        assert (root / "audio" / f"{row['id']}.wav").exists()
        assert row["normalized_text"] == row["normalized_text"].lower()


def test_librivox_and_native(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = run("librivox", sources, tmp_path)
    rows = read_tsv(root / "metadata.tsv")
    assert list(rows[0]) == LIBRIVOX_HEADER
    assert all((root / r["path"]).exists() for r in rows)
    native = run("native", sources, tmp_path)
    docs = json.loads((native / "segments.json").read_text())
    assert [d["transcription"] for d in docs] == [s.transcription for s in sources[1]]
    tsv = read_tsv(native / "segments.tsv")
    assert json.loads(tsv[0]["attributes"]) == {"gender": "female", "locale": "en-US"}
    for d, want in zip(docs, lengths(sources[1]), strict=True):
        assert abs(duration_ms(native / d["audio"]) - want) <= 1


def test_unknown_formats_and_empty_segments_are_refused(sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths, segments = sources
    with pytest.raises(InvalidParameterError, match="unknown export format 'kaldi'"):
        export("kaldi", segments, paths.__getitem__, tmp_path)
    empty = [ExportSegment("alice.wav", 500, 500, "speech", "x")]
    with pytest.raises(InvalidParameterError, match="empty"):
        export("native", empty, paths.__getitem__, tmp_path)


def test_a_240_character_source_name_exports_in_every_format(
    sources,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Names built from a source file stay within what a file system takes (255 bytes), so
    a requester's long file name can never make an export fail (and be retried forever)."""
    from audio_pipeline.exporters import EXPORTERS, file_stem

    paths, segments = sources
    long = "a" * 240 + ".wav"
    renamed = {long: paths["alice.wav"]}
    moved = [replace(s, file=long) for s in segments if s.file == "alice.wav"]
    for fmt in EXPORTERS:
        done = export(fmt, moved, renamed.__getitem__, tmp_path / fmt)
        assert done.files and all(len(f.name.encode()) < 255 for f in done.files), fmt
    assert len(file_stem(long)) <= 80 and file_stem(long) != file_stem("a" * 239 + "b.wav")
