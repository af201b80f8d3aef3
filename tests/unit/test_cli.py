"""`audio-oracles analyze` as a user runs it: JSON on stdout, one-line errors, exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.speech import SpeechTrack, write_audio

EXE = [sys.executable, "-m", "audio_oracles.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


@pytest.fixture(scope="module")
def mp3(speech: SpeechTrack, media_dir: Path) -> Path:
    return write_audio(media_dir / "cli.mp3", speech.pcm, speech.rate, out_rate=44_100, channels=2)


def test_analyze_json_has_the_documented_fields(mp3: Path, speech: SpeechTrack) -> None:
    proc = run("analyze", mp3, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"file", "duration_s", "sample_rate", "channels", "segments", "peaks"}
    assert doc["file"] == str(mp3)
    assert doc["sample_rate"] == 44_100 and doc["channels"] == 2
    assert abs(doc["duration_s"] - speech.duration_s) < 0.1
    assert len(doc["segments"]) == len(speech.spans)
    assert all(set(s) == {"start", "end"} for s in doc["segments"])
    peaks = doc["peaks"]
    assert (peaks["version"], peaks["samples_per_pixel"], peaks["bits"]) == (2, 800, 8)
    assert len(peaks["data"]) == 2 * peaks["length"]


def test_analyze_options_change_the_segmentation(mp3: Path) -> None:
    merged = json.loads(
        run("analyze", mp3, "--json", "--min-pause", "3", "--max-segment", "60").stdout
    )["segments"]
    assert len(merged) == 1


def test_analyze_summary_is_readable(mp3: Path) -> None:
    proc = run("analyze", mp3)
    assert proc.returncode == 0
    assert "4 speech segment(s)" in proc.stdout and "peaks: 20 px/s" in proc.stdout


def test_peaks_out_writes_every_zoom_or_one_file(mp3: Path, tmp_path: Path) -> None:
    assert run("analyze", mp3, "--peaks-out", tmp_path / "peaks").returncode == 0
    written = sorted(p.name for p in (tmp_path / "peaks").iterdir())
    assert written == ["peaks-100.json", "peaks-20.json", "peaks-500.json"]
    assert run("analyze", mp3, "--peaks-out", tmp_path / "one.json").returncode == 0
    assert json.loads((tmp_path / "one.json").read_text())["samples_per_pixel"] == 800


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: d / "missing.wav", [], "missing.wav: no such file"),
        (lambda d: _write(d / "empty.mp3", b""), [], "empty.mp3: file is empty"),
        (lambda d: _write(d / "text.wav", b"not audio at all\n" * 99), [], "not a readable audio"),
        (lambda d: d, [], "not a regular file"),
        (None, ["--aggressiveness", "9"], "aggressiveness must be 0, 1, 2 or 3"),
        (None, ["--max-segment", "0"], "maximum segment"),
        (None, ["--zooms", "fast"], "--zooms must be whole numbers"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    make: object, args: list[str], message: str, mp3: Path, tmp_path: Path
) -> None:
    target = make(tmp_path) if callable(make) else mp3
    proc = run("analyze", target, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_export_writes_a_dataset_from_a_generic_tsv(
    mp3: Path, speech: SpeechTrack, tmp_path: Path
) -> None:
    from audio_pipeline.segments import Segment, write_generic_tsv

    tsv = tmp_path / "annotations.tsv"
    tsv.write_text(
        write_generic_tsv(
            Segment(s.start, s.end, "speech", t, {"gender": "male"}, filename=mp3.name)
            for s, t in zip(speech.spans, speech.texts, strict=True)
        )
    )
    out = tmp_path / "ls"
    done = run("export", "--format", "librispeech", "--annotations", tsv, "--audio", mp3.parent,
               "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # One speaker (the file): all of it in LibriSpeech's train subset, the empty ones noted.
    assert len(list(out.glob("train-clean-100/*/*/*.flac"))) == len(speech.texts)
    assert "split(s) dev, test are empty" in (out / "README.txt").read_text()
    refused = run("export", "--format", "librispeech", "--language", "de", "--annotations",
                  tsv, "--audio", mp3.parent, "--out", tmp_path / "de")  # fmt: skip
    assert refused.returncode == 2 and "holds English only" in refused.stderr
    bad = run("export", "--format", "native", "--splits", "0.5,0.1", "--annotations", tsv,
              "--audio", mp3.parent, "--out", tmp_path / "bad")  # fmt: skip
    assert bad.returncode == 2 and "--splits" in bad.stderr
    helped = run("export", "--help")
    assert "placeholders per format" in helped.stdout and "_mic2 = a copy" in helped.stdout
    missing = run("export", "--format", "native", "--annotations", tsv, "--audio", tmp_path,
                  "--out", out)  # fmt: skip
    assert missing.returncode == 2 and f"not in {tmp_path}: {mp3.name}" in missing.stderr
