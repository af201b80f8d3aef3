"""Each export format read back by the loader people train with: lhotse's recipe for the
corpus (installed from PyPI), and where a loader is not installed here (SpeechBrain's
VoxPopuli preparation lives in its repository, HuggingFace audiofolder needs torchcodec),
its reading rules restated. Every exported utterance must come back with its transcript,
speaker, metadata and duration."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import soundfile

from audio_pipeline.exports import ExportOptions, export
from audio_pipeline.exports.common import ascii_words, spoken_words, unquoted_field
from tests.loaders.conftest import Corpus

logging.getLogger("lhotse").setLevel(logging.ERROR)
ENGLISH = 8  # segments with words in English (one is German, one has no words)


def _export(fmt: str, corpus: Corpus, tmp_path: Path) -> tuple[Path, Any]:
    done = export(fmt, corpus.segments, corpus.open, tmp_path / fmt, ExportOptions("en"))
    return done.root, done


def _by_text(supervisions: Iterable[Any]) -> dict[str, Any]:
    return {s.text: s for s in supervisions}


def _durations_match(corpus: Corpus, pairs: Iterable[tuple[str, float]], key: Any) -> None:
    """Each loaded utterance lasts what its segment does (to the encoder's frame)."""
    want = {key(s): s.seconds for s in corpus.segments if s.transcription}
    for text, seconds in pairs:
        assert abs(seconds - want[text]) < 0.06, (text, seconds, want[text])


def _no_speaker_in_two_splits(splits: dict[str, set[str]]) -> None:
    seen: dict[str, str] = {}
    for split, speakers in splits.items():
        for spk in speakers:
            assert seen.setdefault(spk, split) == split, f"{spk} in {seen[spk]} and {split}"
    assert len(splits) == 3 and all(splits.values()), splits


def test_common_voice_reads_back_with_lhotse(corpus: Corpus, tmp_path: Path) -> None:
    from lhotse.recipes import prepare_commonvoice

    root, _ = _export("commonvoice", corpus, tmp_path)
    got = prepare_commonvoice(root, tmp_path / "manifests", languages=["en"])  # test, dev, train
    got |= prepare_commonvoice(root, tmp_path / "manifests", languages=["de"], splits=["train"])
    sups = {
        lang: {s.text: s for split in parts.values() for s in split["supervisions"]}
        for lang, parts in got.items()
    }
    en = sups["en"]
    wanted = {unquoted_field(s.transcription): s for s in corpus.segments if s.transcription
              and not s.attributes["locale"].startswith("de")}  # fmt: skip
    assert set(en) == set(wanted)  # no quotes added, none lost
    assert "\u201cyes\u201d" not in "".join(en) and 'She said "yes" to the whole plan.' in en
    for text, sup in en.items():
        seg = wanted[text]
        assert sup.speaker == hashlib.sha256(seg.speaker.encode()).hexdigest()
        assert (
            sup.gender
            == {"male": "male_masculine", "female": "female_feminine"}[seg.attributes["gender"]]
        )
        ages = {"50": "fifties", "": ""}  # a number becomes its bucket; none stays empty
        age = seg.attributes.get("age", "")
        assert sup.custom["age"] == ages.get(age, age)
    assert set(sups["de"]) == {"Das ist ein schönes Haus."}
    splits = {
        split: {s.speaker for s in parts["supervisions"]} for split, parts in got["en"].items()
    }
    _no_speaker_in_two_splits(splits)
    recordings = {r.id: r.duration for p in got["en"].values() for r in p["recordings"]}
    _durations_match(
        corpus,
        [(s.text, recordings[s.recording_id]) for s in en.values()],
        lambda s: unquoted_field(s.transcription),
    )


def test_librispeech_reads_back_with_lhotse(corpus: Corpus, tmp_path: Path) -> None:
    from lhotse.recipes import prepare_librispeech

    root, _ = _export("librispeech", corpus, tmp_path)
    got = prepare_librispeech(root)  # "auto": the subsets found
    assert set(got) == {"train-clean-100", "dev-clean", "test-clean"}
    sups = _by_text(s for part in got.values() for s in part["supervisions"])
    assert len(sups) == ENGLISH
    assert "ROOM ONE HUNDRED AND ONE THEN THREE MORE ROOMS" in sups
    assert "NAIVE RESUMES AT THE CAFE COST FORTY TWO EUROS" in sups
    assert "PRIVET KAK DELA U TEBYA" in sups  # transliterated, not dropped
    assert "IT'S O'BRIEN'S TURN NOW" in sups
    _no_speaker_in_two_splits(
        {p: {s.speaker for s in part["supervisions"]} for p, part in got.items()}
    )
    recordings = {r.id: r.duration for part in got.values() for r in part["recordings"]}
    _durations_match(
        corpus,
        [(t, recordings[s.recording_id]) for t, s in sups.items()],
        lambda s: ascii_words(s.transcription).upper(),
    )
    readme = (root / "README.txt").read_text()
    assert "1 segment(s) in de-DE are left out" in readme and "without a transcription" in readme
    speakers = (root / "SPEAKERS.TXT").read_text()
    assert " | F | " in speakers and " | M | " in speakers
    assert all(info.channels == 1 and info.samplerate == 16_000
               for info in (soundfile.info(str(p)) for p in root.rglob("*.flac")))  # fmt: skip


def test_tedlium_reads_back_with_lhotse(corpus: Corpus, tmp_path: Path, sph2pipe: Path) -> None:
    from lhotse.recipes import prepare_tedlium

    root, _ = _export("tedlium", corpus, tmp_path)
    for stm in root.glob("legacy/*/stm/*.stm"):
        for line in stm.read_text().splitlines():
            assert len(line.split(" ", 6)) == 7  # torchaudio's rule: single spaces, 7 fields
    # Talks that share a speaker share a split: here two groups (Ann Lee and bob link
    # three talks), so one split is empty, and the README says which.
    parts = [p.name for p in (root / "legacy").iterdir()]
    assert len(parts) == 2
    (empty,) = {"train", "dev", "test"} - set(parts)
    assert f"split(s) {empty} are empty" in (root / "README.txt").read_text()
    # torchaudio's TEDLIUM(release="release3") reads train from data/{stm,sph}, each .stm
    # naming its .sph; dev and test from legacy/. data/ links legacy/train's files.
    legacy_train = sorted(p.name for p in (root / "legacy" / "train").rglob("*.s[pt][hm]"))
    assert legacy_train and sorted(p.name for p in (root / "data").rglob("*")
                                   if p.is_file()) == legacy_train  # fmt: skip
    for stm in (root / "data" / "stm").glob("*.stm"):
        sph = root / "data" / "sph" / f"{stm.stem}.sph"
        assert sph.stat().st_ino == (root / "legacy/train/sph" / sph.name).stat().st_ino
        assert stm.read_text() == (root / "legacy/train/stm" / stm.name).read_text()
    got = prepare_tedlium(root, dataset_parts=parts)
    sups = _by_text(s for part in got.values() for s in part["supervisions"])
    assert len(sups) == ENGLISH
    assert "room one hundred and one then three more rooms" in sups
    for part in got.values():
        for rec in part["recordings"]:
            audio = rec.load_audio()
            assert rec.sampling_rate == 16_000 and audio.shape[0] == 1
    sources = {Path(s.file).stem.replace(" ", "_"): s for s in corpus.segments}
    for sup in sups.values():  # times are the talk's: the segment where it was
        seg = next(s for s in corpus.segments if s.transcription and
                   ascii_words(s.transcription).lower() == sup.text)  # fmt: skip
        assert sup.recording_id in sources
        assert abs(sup.start - seg.start_ms / 1000) < 0.002
        assert abs(sup.duration - seg.seconds) < 0.002


def test_voxceleb_reads_back_with_lhotse(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lhotse.recipes.voxceleb as recipe

    root, _ = _export("voxceleb", corpus, tmp_path)
    # It always fetches openslr's trial list; here it gets the export's own.
    trials = (root / "veri_test.txt").read_bytes()
    monkeypatch.setattr(
        recipe, "resumable_download", lambda url, filename, **kw: Path(filename).write_bytes(trials)
    )
    monkeypatch.chdir(tmp_path)
    got = recipe.prepare_voxceleb(voxceleb1_root=root)
    sups = [s for split in ("train", "test") for s in got[split]["supervisions"]]
    assert len(sups) == len(corpus.segments)  # every segment: speaker corpora need no words
    names = {s.custom["speaker_name"] for s in sups}
    assert names == {s.speaker.replace(" ", "_") for s in corpus.segments}
    genders = {s.custom["speaker_name"]: s.gender for s in sups}
    assert genders["Ann_Lee"] == "f" and genders["bob"] == "m"
    for line in (root / "iden_split.txt").read_text().splitlines():  # torchaudio's rules
        kind, path = line.split()
        assert kind in "123" and (root / "wav" / path).is_file() and path.startswith("id1")
    for line in (root / "veri_test.txt").read_text().splitlines():
        label, a, b = line.split()
        assert label in "01" and (root / "wav" / a).is_file() and (root / "wav" / b).is_file()


def test_vctk_reads_back_with_lhotse(corpus: Corpus, tmp_path: Path) -> None:
    from lhotse.recipes import prepare_vctk

    root, _ = _export("vctk", corpus, tmp_path)
    got = prepare_vctk(root / "VCTK-Corpus-0.92", use_edinburgh_vctk_url=True)  # mic2
    sups = {s.text: s for s in got["supervisions"]}
    assert set(sups) == {
        unquoted_field(s.transcription)
        for s in corpus.segments
        if s.transcription and not s.attributes["locale"].startswith("de")
    }
    ann = sups['She said "yes" to the whole plan.']
    assert ann.gender == "F" and ann.custom["age"] == 25 and ann.custom["accent"] == "scottish"
    assert sups["Room 101, then 3 more rooms."].custom["age"] == 50
    assert sups["Привет, как дела у тебя"].gender is None  # no age: no line, as the README says
    for rec in got["recordings"]:
        assert rec.sampling_rate == 48_000 and rec.id.endswith("_mic2")


def _speechbrain_voxpopuli(data_folder: Path) -> list[dict[str, Any]]:
    """SpeechBrain 1.1's VoxPopuli preparation, restated: asr_{train,dev,test}.tsv must all
    exist and a 2020/ folder too; each line after the header is split on tabs (id in
    column 0, normalized_text in 2, speaker_id in 3, no unquoting); the audio is
    <data>/<id[:4]>/<id>.ogg; utterances under 3 words are dropped."""
    assert (data_folder / "2020").is_dir()
    rows = []
    for split in ("train", "dev", "test"):
        for line in (data_folder / f"asr_{split}.tsv").read_text().splitlines()[1:]:
            cols = line.split("\t")
            audio = data_folder / cols[0][:4] / f"{cols[0]}.ogg"
            info = soundfile.info(str(audio))
            if len(cols[2].split()) >= 3:
                rows.append({"split": split, "text": cols[2], "speaker": cols[3],
                             "rate": info.samplerate, "channels": info.channels,
                             "seconds": info.duration, "raw": cols[1]})  # fmt: skip
    return rows


def test_voxpopuli_reads_back_as_speechbrain_prepares_it(corpus: Corpus, tmp_path: Path) -> None:
    root, _ = _export("voxpopuli", corpus, tmp_path)
    rows = _speechbrain_voxpopuli(root / "transcribed_data" / "en")
    assert {r["text"] for r in rows} >= {
        "room one hundred and one then three more rooms",
        "naïve résumés at the café cost forty two euros",
        "привет как дела у тебя",
    }
    assert all(r["rate"] == 16_000 and r["channels"] == 1 for r in rows)
    assert 'She said "yes" to the whole plan.' in {r["raw"] for r in rows}
    _no_speaker_in_two_splits(
        {s: {r["speaker"] for r in rows if r["split"] == s} for s in ("train", "dev", "test")}
    )
    _durations_match(
        corpus, [(r["text"], r["seconds"]) for r in rows],
        lambda s: spoken_words(s.transcription, "en"),
    )  # fmt: skip
    de = _speechbrain_voxpopuli(root / "transcribed_data" / "de")
    assert [r["text"] for r in de] == ["das ist ein schönes haus"]


def test_librivox_reads_back_as_multilingual_librispeech_with_lhotse(
    corpus: Corpus, tmp_path: Path
) -> None:
    from lhotse.recipes import prepare_mls

    root, _ = _export("librivox", corpus, tmp_path)
    # German has one speaker: only its train split has audio, and lhotse stops on a
    # language with an empty split, so German sits apart where prepare_mls does not look
    # (the README says so) and the export as written reads.
    readme = (root / "README.txt").read_text()
    assert "split(s) dev, test in incomplete_splits/mls_german are empty" in readme
    assert not (root / "mls_german").exists()
    assert (
        (root / "incomplete_splits" / "mls_german" / "train" / "transcripts.txt")
        .read_text()
        .endswith("\tdas ist ein schönes haus\n")
    )
    got = prepare_mls(root, opus=False)
    assert set(got) == {"english"}
    en = _by_text(s for part in got["english"].values() for s in part["supervisions"])
    assert len(en) == ENGLISH and "privet kak dela u tebya" not in en
    assert "привет как дела у тебя" in en and "it's o'brien's turn now" in en
    genders = {s.gender for s in en.values()}
    assert genders == {"F", "M"}


def test_native_reads_as_audiofolder_metadata(corpus: Corpus, tmp_path: Path) -> None:
    """HuggingFace audiofolder reads metadata.jsonl (one object per line) with a file_name
    relative to its folder; segments.json keeps every field as it was."""
    root, _ = _export("native", corpus, tmp_path)
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == len(corpus.segments)
    for row, seg in zip(rows, corpus.segments, strict=True):
        assert row["transcription"] == seg.transcription and row["speaker"] == seg.speaker
        info = soundfile.info(str(root / row["file_name"]))
        assert not Path(row["file_name"]).is_absolute() and ".." not in row["file_name"]
        assert abs(info.duration - seg.seconds) < 0.002


def test_english_corpora_refuse_another_language(corpus: Corpus, tmp_path: Path) -> None:
    from audio_pipeline import InvalidParameterError

    for fmt in ("librispeech", "tedlium", "vctk"):
        with pytest.raises(InvalidParameterError, match="holds English only.*mls.*commonvoice"):
            export(fmt, corpus.segments, corpus.open, tmp_path / fmt, ExportOptions("de"))
