"""Voice-activity pre-segments on real speech: how right they are, and how fast.

Data: the eight 30 s recordings in ../shared/speech/ (16 kHz mono, with reference speech
regions in refs/NAME.json). Each file is put through nine conditions, built in memory with
fixed seeds: clean; pink noise, babble (4-6 other files of the set, time-shifted, summed) and
music-like noise (harmonic tones with slow note changes and tremolo), each at 10 and 0 dB SNR,
where SNR is the noise power against the clean file's power inside its reference speech; an
8 kHz telephone band (300-3400 Hz, mu-law round trip, fed at 8 kHz); and a 44.1 kHz stereo
128 kb/s MP3 made by the ffmpeg CLI and read back by our own `decode` at 16 kHz mono.

Detectors: ours with the default engine (webrtc, aggressiveness 2, and 0 and 3 beside it),
ours with VAD_ENGINE=silero (silero-vad's ONNX model through our streaming and segment rules;
8 kHz audio is resampled to 16 kHz first), raw webrtcvad with plain smoothing, and silero-vad
itself as its package ships it (`get_speech_timestamps` with its defaults, when the package
and torch import). Every detector sees the same audio.

Scores are pooled over the files on a 1 ms grid: DER (detection error rate) =
(false alarm + missed speech) / reference speech, once over all of the time and once with
a 0.25 s collar (+-0.25 s around every reference boundary left out);
precision and recall of speech time; hypothesis segments (as the detector returns them) vs
reference segments; the median boundary error (for each reference start or end, the distance
to the nearest hypothesis start or end, median over all of them); how many reference pauses
over 1 s a hypothesis segment bridges (touching segments count as one); and speed as audio
seconds per second of detector wall time (the detector call alone, not the synthesis).
File edges are cuts, not speech boundaries, so they get no collar and no boundary error.
The last lines give each detector's DER over all conditions together, and one measurement of
`analyze` time (each engine) against `ffmpeg -f null` on the one-hour MP3 of the audio
benchmark.
"""

from __future__ import annotations

import importlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import webrtcvad

from audio_pipeline import InvalidParameterError, VadParams, analyze, decode, detect_speech
from audio_pipeline.vad_silero import check as check_silero

SPEECH_DIR = Path(__file__).resolve().parents[2] / "shared" / "speech"
RATE = 16_000
COLLAR_MS = 250
LONG_PAUSE_S = 1.0

Spans = list[tuple[float, float]]
Detector = Callable[[np.ndarray, int], Spans]
Audio = tuple[np.ndarray, int]


@dataclass
class Clip:
    name: str
    pcm: np.ndarray  # int16 mono at RATE
    duration_s: float
    ref: Spans

    @property
    def speech_power(self) -> float:
        x = self.pcm.astype(np.float64)
        return float(np.mean(x[_mask(self.ref, len(x), RATE)] ** 2))


@dataclass
class Tally:
    ref_ms: int = 0
    fa_ms: int = 0
    miss_ms: int = 0
    ref_c_ms: int = 0
    err_c_ms: int = 0
    hyp_segs: int = 0
    ref_segs: int = 0
    long_pauses: int = 0
    bridged: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    bound_ms: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _mask(spans: Spans, n: int, per_s: int = 1000) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for s, e in spans:
        m[max(0, round(s * per_s)) : min(n, round(e * per_s))] = True
    return m


def _merge(spans: Spans, min_gap: float = 0.0) -> Spans:
    out: Spans = []
    for s, e in sorted(spans):
        if out and s - out[-1][1] <= min_gap:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def score(hyp: Spans, clip: Clip) -> Tally:
    n = round(clip.duration_s * 1000)
    ref, raw, hyp = clip.ref, sorted(hyp), _merge(hyp)
    r, h = _mask(ref, n), _mask(hyp, n)
    inner = [b for seg in ref for b in seg if 0.001 < b < clip.duration_s - 0.001]
    scored = np.ones(n, dtype=bool)
    for b in inner:
        scored[max(0, round(b * 1000) - COLLAR_MS) : round(b * 1000) + COLLAR_MS] = False
    t = Tally(ref_ms=int(r.sum()), fa_ms=int((h & ~r).sum()), miss_ms=int((r & ~h).sum()))
    t.ref_c_ms, t.err_c_ms = int((r & scored).sum()), int(((r ^ h) & scored).sum())
    t.hyp_segs, t.ref_segs = len(raw), len(ref)
    for kind in (0, 1):
        hb = np.array([seg[kind] for seg in raw])
        for seg in ref:
            b = seg[kind]
            if len(hb) and 0.001 < b < clip.duration_s - 0.001:
                t.bound_ms.append(float(np.min(np.abs(hb - b))) * 1000)
    for (_, gap_s), (gap_e, _) in itertools.pairwise(ref):
        if gap_e - gap_s > LONG_PAUSE_S:
            t.long_pauses += 1
            t.bridged += any(s <= gap_s and e >= gap_e for s, e in hyp)
    return t


def ours(aggressiveness: int = 2, engine: str = "webrtc") -> Detector:
    params = VadParams(aggressiveness=aggressiveness, engine=engine)
    return lambda pcm, rate: [(s.start, s.end) for s in detect_speech(pcm, rate, params)]


def raw_webrtcvad(pcm: np.ndarray, rate: int) -> Spans:
    """webrtcvad alone (mode 2, 30 ms), padded 0.1 s, pauses < 0.3 s merged, < 0.25 s dropped."""
    vad, step = webrtcvad.Vad(2), rate * 30 // 1000
    raw, nb = pcm.astype(np.int16).tobytes(), 2 * step
    flags = [vad.is_speech(raw[i : i + nb], rate) for i in range(0, len(raw) - nb + 1, nb)]
    edges = np.diff(np.concatenate(([0], np.array(flags, dtype=np.int8), [0])))
    dur, frame = len(pcm) / rate, step / rate
    runs = zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    padded = [(max(0.0, s * frame - 0.1), min(dur, e * frame + 0.1)) for s, e in runs]
    return [(s, e) for s, e in _merge(padded, 0.3 - 1e-9) if e - s >= 0.25]


def silero() -> Detector | None:
    try:
        sv = importlib.import_module("silero_vad")
    except ImportError:
        return None
    torch, model = importlib.import_module("torch"), sv.load_silero_vad(onnx=True)

    def run(pcm: np.ndarray, rate: int) -> Spans:
        wav = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
        ts = sv.get_speech_timestamps(wav, model, sampling_rate=rate, return_seconds=True)
        return [(float(t["start"]), float(t["end"])) for t in ts]

    return run


def detectors() -> dict[str, Detector]:
    found: dict[str, Detector] = {"ours (default, a2)": ours(), "ours a0": ours(0)}
    found |= {"ours a3": ours(3), "webrtcvad a2 + smoothing": raw_webrtcvad}
    try:
        check_silero()
        found["ours, VAD_ENGINE=silero"] = ours(engine="silero")
    except InvalidParameterError as exc:
        print(f"ours with VAD_ENGINE=silero skipped: {exc}")
    sil = silero()
    if sil is None:
        print("silero-vad not installed: skipped")
    else:
        found["silero-vad"] = sil
    return found


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _mix(clip: Clip, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(clip.speech_power / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return _to_int16(clip.pcm.astype(np.float64) + gain * noise)


def _pink(i: int, clips: list[Clip], rng: np.random.Generator) -> np.ndarray:
    n = len(clips[i].pcm)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[0], spec[1:] = 0, spec[1:] / np.sqrt(f[1:])
    return np.fft.irfft(spec, n)


def _babble(i: int, clips: list[Clip], rng: np.random.Generator) -> np.ndarray:
    n, others = len(clips[i].pcm), [c for j, c in enumerate(clips) if j != i]
    picks = rng.choice(len(others), size=min(len(others), int(rng.integers(4, 7))), replace=False)
    out = np.zeros(n)
    for k in picks:  # each talker at the same speech power, shifted by a random amount
        x = np.resize(others[k].pcm.astype(np.float64), n) / np.sqrt(others[k].speech_power)
        out += np.roll(x, int(rng.integers(n)))
    return out


def _music(i: int, clips: list[Clip], rng: np.random.Generator) -> np.ndarray:
    n = len(clips[i].pcm)
    t, out = np.arange(n) / RATE, np.zeros(n)
    for _ in range(3):
        f0, pos = np.empty(n), 0
        while pos < n:  # notes of 0.6-2 s from A2 to E5
            step = int(rng.uniform(0.6, 2.0) * RATE)
            f0[pos : pos + step] = 440 * 2 ** ((int(rng.integers(45, 77)) - 69) / 12)
            pos += step
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        tone = sum(np.sin(h * phase) / h for h in range(1, 7))
        tremolo = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6.3))
        swell = 0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6.3))
        out += tone * tremolo * swell
    return out


NOISES = {"pink": _pink, "babble": _babble, "music": _music}


def _telephone(pcm: np.ndarray) -> Audio:
    spec = np.fft.rfft(pcm.astype(np.float64))
    f = np.fft.rfftfreq(len(pcm), 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    x = np.clip(np.fft.irfft(spec, len(pcm))[::2] / 32768, -1, 1)  # band-limited, so decimate
    mu = 255.0
    q = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    return _to_int16(np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu * 32768), 8000


def _mp3(clip: Clip, tmp: Path) -> Audio:
    path = tmp / f"{clip.name}.mp3"
    cmd = ["ffmpeg", "-loglevel", "error", "-nostdin", "-y", "-f", "s16le", "-ar", str(RATE)]
    cmd += ["-ac", "2", "-i", "-", "-ar", "44100", "-b:a", "128k", str(path)]
    # Both channels carry the file as it is (ffmpeg's own mono upmix would lower it by 3 dB).
    subprocess.run(cmd, input=np.repeat(clip.pcm, 2).astype("<i2").tobytes(), check=True)
    return decode(path, rate=RATE, channels=1), RATE


def conditions(clips: list[Clip], tmp: Path) -> dict[str, Callable[[int], Audio]]:
    def noisy(kind: str, seed: int, snr: float) -> Callable[[int], Audio]:
        def make(i: int) -> Audio:
            noise = NOISES[kind](i, clips, np.random.default_rng([seed, i]))
            return _mix(clips[i], noise, snr), RATE

        return make

    conds: dict[str, Callable[[int], Audio]] = {"clean": lambda i: (clips[i].pcm, RATE)}
    for seed, kind in enumerate(NOISES, 1):
        for snr in (10, 0):
            conds[f"{kind} {snr} dB"] = noisy(kind, seed, snr)
    conds["telephone 8 kHz"] = lambda i: _telephone(clips[i].pcm)
    conds["mp3 44.1k stereo 128k"] = lambda i: _mp3(clips[i], tmp)
    return conds


def load() -> list[Clip]:
    clips = []
    for ref_path in sorted((SPEECH_DIR / "refs").glob("*.json")):
        ref = json.loads(ref_path.read_text())
        with wave.open(str(SPEECH_DIR / "audio" / f"{ref_path.stem}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        spans = _merge([(float(s), float(e)) for s, e in ref["speech"]])
        clips.append(Clip(ref_path.stem, pcm, float(ref["duration_s"]), spans))
    return clips


def _row(name: str, t: Tally) -> str:
    der, der_c = (t.fa_ms + t.miss_ms) / t.ref_ms, t.err_c_ms / max(t.ref_c_ms, 1)
    hit = t.ref_ms - t.miss_ms
    prec, rec = hit / max(hit + t.fa_ms, 1), hit / t.ref_ms
    med = f"{np.median(t.bound_ms):.0f}" if t.bound_ms else "-"
    speed = t.audio_s / max(t.wall_s, 1e-9)
    return (
        f"  {name:<26}{der:6.1%}{der_c:8.1%}{t.fa_ms / t.ref_ms:7.1%}{t.miss_ms / t.ref_ms:7.1%}"
        f"{prec:7.1%}{rec:7.1%}{t.hyp_segs:9d}/{t.ref_segs:<3d}{med:>7}"
        f"{t.bridged:6d}/{t.long_pauses:<3d}{speed:8.0f}x"
    )


HEADER = (
    f"  {'detector':<26}{'DER':>6}{'DER@.25':>8}{'FA':>7}{'miss':>7}{'prec':>7}{'recall':>7}"
    f"{'segs hyp/ref':>13}{'bnd ms':>7}{'bridged':>10}{'speed':>9}"
)


def analyze_ratio() -> None:
    from benchmarks.audio_bench import GOAL_RATIO, _best_of, _ffmpeg_null
    from benchmarks.media import hour_mp3

    hour = hour_mp3()
    t_ffmpeg = _best_of(1, lambda: _ffmpeg_null(hour))
    for engine in ("webrtc", "silero"):
        try:
            VadParams(engine=engine).validate()
            if engine == "silero":
                check_silero()
        except InvalidParameterError as exc:
            print(f"analyze with VAD_ENGINE={engine} skipped: {exc}")
            continue
        params = VadParams(engine=engine)
        t_analyze = _best_of(1, lambda params=params: analyze(hour, vad=params))
        ratio = t_analyze / t_ffmpeg
        verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
        print(
            f"analyze (VAD_ENGINE={engine}) / ffmpeg -f null on the one-hour MP3: "
            f"{t_analyze:.1f} s / {t_ffmpeg:.1f} s = {ratio:.2f} ({verdict} the goal of "
            f"<= {GOAL_RATIO}; one run each)"
        )


def main() -> None:
    if not (SPEECH_DIR / "refs").is_dir():
        print(f"speech set not found at {SPEECH_DIR}: VAD benchmark skipped")
        return
    assert shutil.which("ffmpeg"), "ffmpeg is not installed (make install adds it)"
    clips = load()
    dets = detectors()
    ref_s = sum(sum(e - s for s, e in c.ref) for c in clips)
    total_s = sum(c.duration_s for c in clips)
    print(f"{len(clips)} files, {total_s:.0f} s of audio, {ref_s:.0f} s of reference speech")
    print("DER@.25: with a 0.25 s collar; FA, miss, prec, recall: of speech time, no collar;")
    print("bnd ms: median boundary error; bridged: reference pauses > 1 s a segment spans")
    overall = {name: Tally() for name in dets}
    with tempfile.TemporaryDirectory(prefix="vad-bench-") as tmp:
        for cond, make in conditions(clips, Path(tmp)).items():
            tallies = {name: Tally() for name in dets}
            for i, clip in enumerate(clips):
                pcm, rate = make(i)
                for name, det in dets.items():
                    start = time.perf_counter()
                    spans = det(pcm, rate)
                    wall = time.perf_counter() - start
                    t = score(spans, clip)
                    t.audio_s, t.wall_s = len(pcm) / rate, wall
                    tallies[name].add(t)
            print(f"-- {cond}\n{HEADER}")
            for name, t in tallies.items():
                print(_row(name, t))
                overall[name].add(t)
    print("-- all conditions pooled")
    for name, t in overall.items():
        der, der_c = (t.fa_ms + t.miss_ms) / t.ref_ms, t.err_c_ms / t.ref_c_ms
        speed = t.audio_s / t.wall_s
        print(f"  {name:<26} DER {der:6.1%}   DER@.25 {der_c:6.1%}   {speed:6.0f}x real time")
    analyze_ratio()


if __name__ == "__main__":
    main()
