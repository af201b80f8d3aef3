"""A realistic export to load: four sources at 16, 22.05, 44.1 and 48 kHz, six speakers of
both genders, ages as buckets and as numbers, a name with a space, punctuation, digits,
quotes, accented letters, a Cyrillic sentence, a German segment and one with no words."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from audio_pipeline.exports import ExportSegment
from sandbox.speech import Utterance, compose, write_audio

# (file, rate, [(speaker, gender, age, accent, locale, voice, text), ...])
SOURCES = [
    ("talk one.wav", 16_000, [
        ("Ann Lee", "female", "twenties", "scottish", "en-GB", "en-gb+f2",
         'She said "yes" to the whole plan.'),
        ("bob", "male", "50", "southern US", "en-US", "en-us", "Room 101, then 3 more rooms."),
    ]),
    ("b.mp3", 22_050, [
        ("bob", "male", "50", "southern US", "en-US", "en-us",
         "Naïve résumés at the café cost 42 euros."),
        ("chloé", "female", "thirties", "", "en-US", "en-us+f3", "It's O'Brien's turn now!"),
    ]),
    ("c.flac", 44_100, [
        ("dmitri", "male", "", "russian", "en-US", "en-us", "Привет, как дела у тебя"),
        ("eve", "female", "fourties", "", "en-US", "en-us+f3",
         "The birch canoe slid on the planks."),
        ("eve", "female", "fourties", "", "de-DE", "de", "Das ist ein schönes Haus."),
    ]),
    ("d.wav", 48_000, [
        ("fay", "female", "teens", "irish", "en-IE", "en-gb+f2",
         "Glue the sheet to the dark blue background."),
        ("Ann Lee", "female", "twenties", "scottish", "en-GB", "en-gb+f2",
         "These days a chicken leg is rare."),
        ("fay", "female", "teens", "irish", "en-IE", "en-gb+f2", ""),
    ]),
]  # fmt: skip


@dataclass
class Corpus:
    paths: dict[str, Path]
    segments: list[ExportSegment]

    def open(self, name: str) -> Path:
        return self.paths[name]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("sources")
    paths, segments = {}, []
    for name, rate, rows in SOURCES:
        track = compose([Utterance(r[6] or "mm", r[5]) for r in rows], 0.8)
        path = root / name
        write_audio(path, track.pcm, track.rate, out_rate=rate)
        paths[name] = path
        for row, span in zip(rows, track.spans, strict=True):
            speaker, gender, age, accent, locale, _voice, text = row
            attributes = {"speaker": speaker, "gender": gender, "age": age, "accent": accent,
                          "locale": locale}  # fmt: skip
            segments.append(
                ExportSegment(name, round(span.start * 1000), round(span.end * 1000), "speech",
                              text, {k: v for k, v in attributes.items() if v}, "0xabc")
            )  # fmt: skip
    return Corpus(paths, segments)


@pytest.fixture(scope="session")
def sph2pipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lhotse reads SPHERE through the sph2pipe binary (`lhotse install-sph2pipe` downloads
    it); this stand-in answers its one call, `-f wav -p -t START:END FILE`, with FFmpeg."""
    folder = tmp_path_factory.mktemp("bin")
    script = folder / "sph2pipe"
    script.write_text(
        "#!/bin/sh\n"
        "span=$5; file=$6; start=${span%%:*}; end=${span#*:}\n"
        'if [ -n "$end" ]; then to="-to $end"; else to=""; fi\n'
        'exec ffmpeg -v error -ss "$start" $to -i "$file" -f wav -c:a pcm_s16le -\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    os.environ["PATH"] = f"{folder}:{os.environ['PATH']}"
    return script
