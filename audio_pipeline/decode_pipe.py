"""Decoding in an `ffmpeg` child process, for the analysis of a file on disk.

In-process decoding (PyAV) costs about 1.9x a bare `ffmpeg -f null` decode of an MP3: every
1152-sample codec frame passes through Python, and the VAD and peaks that follow run on the
same core. Here FFmpeg decodes, downmixes and resamples in a child of its own, and the caller
works on the previous block on the other core, so the analysis costs about one decode.

`PipedPcmReader` keeps `PcmReader`'s contract for mono int16 blocks: `info` from the header
(read in-process, so an unreadable file fails as before), `samples`, `duration_s`,
`damage`, `strict`, progress, and the empty and truncated checks. FFmpeg's error lines are
the same damage PyAV reports, and in strict mode the first one ends the decode.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from audio_pipeline.decode import AudioSource, PcmReader, ProgressCallback
from audio_pipeline.errors import CorruptAudioError

# "[mp3float @ 0x55d0c8a0] Header missing" -> "Header missing"
_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
# How long a child that was told to stop may take before it is killed.
STOP_S = 5.0
PIPE_FROM_S = 30.0
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20  # Linux's default most for an unprivileged process


def _widen(stream: object) -> None:
    """A pipe of PIPE_BYTES (Linux; elsewhere the default stays), so that FFmpeg keeps
    decoding while the caller works on a block instead of stalling on a full 64 KB pipe."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    except (ImportError, OSError):
        pass


def can_pipe(source: AudioSource) -> bool:
    """A file on disk, and an ffmpeg binary to read it with."""
    return isinstance(source, (str, os.PathLike)) and shutil.which("ffmpeg") is not None


def open_mono(
    source: AudioSource,
    rate: int,
    *,
    progress: ProgressCallback | None = None,
    pipe: bool = True,
) -> PcmReader | PipedPcmReader:
    """A reader of mono int16 blocks: through an ffmpeg child for a file on disk that
    declares PIPE_FROM_S or more (or nothing), in-process otherwise (a child's start costs
    more than decoding a short file)."""
    head = PcmReader(source, rate=rate, channels=1, progress=progress)
    declared = head.info.declared_duration_s
    if not (pipe and can_pipe(source)) or (declared is not None and declared < PIPE_FROM_S):
        return head
    return PipedPcmReader(source, rate=rate, progress=progress, _head=head)  # type: ignore[arg-type]


class PipedPcmReader:
    """Mono int16 blocks of about `block_s` seconds at `rate`, decoded by an ffmpeg child."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        rate: int = 16_000,
        block_s: float = 5.0,
        progress: ProgressCallback | None = None,
        strict: bool = True,
        _head: PcmReader | None = None,
    ) -> None:
        # The header, and every check on it, exactly as in-process decoding does them.
        head = _head or PcmReader(source, rate=rate, channels=1, block_s=block_s, strict=strict)
        with head:
            self.info = head.info
            self.damage = list(head.damage)
            self.name = head.name
        self._check_complete = head._check_complete
        self._head = head
        self.path = Path(source)
        self.rate = rate
        self.strict = strict
        self._block = max(1, int(block_s * rate))
        self._progress = progress
        self._errors: list[str] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._stderr: threading.Thread | None = None

    @property
    def samples(self) -> int:
        return self._head.samples

    @property
    def duration_s(self) -> float:
        return self._head.samples / self.rate

    def _command(self) -> list[str]:
        channels = self.info.channels
        # The mean of the channels, as in-process decoding takes it.
        mix = "+".join(f"{1 / channels:.6f}*c{i}" for i in range(channels))
        filters = f"pan=mono|c0={mix},aresample={self.rate}:filter_size=16"
        return [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
            "-i", os.fspath(self.path), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-af", filters, "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
        ]  # fmt: skip

    def _read_errors(self, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            line = _PREFIX.sub("", raw.decode("utf-8", "replace").strip())
            if line:
                self._errors.append(line)

    def _damaged(self, message: str) -> None:
        where = f"corrupt audio data near {self.duration_s:.2f} s"
        self.damage.append(f"{where}: {message}")
        if self.strict:
            raise CorruptAudioError(self.name, f"{where} ({message})")

    def __iter__(self) -> Iterator[np.ndarray]:
        self._child = subprocess.Popen(
            self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0,
        )  # fmt: skip
        self._stderr = threading.Thread(
            target=self._read_errors, args=(self._child.stderr,), daemon=True
        )
        self._stderr.start()
        assert self._child.stdout is not None
        _widen(self._child.stdout)
        seen = 0
        want = self._block * 2
        buffer = bytearray()
        while True:
            chunk = self._child.stdout.read(want - len(buffer))
            if chunk:
                buffer += chunk
            while seen < len(self._errors):
                self._damaged(self._errors[seen])
                seen += 1
            if len(buffer) >= want or (not chunk and len(buffer) >= 2):
                usable = len(buffer) - len(buffer) % 2
                block = np.frombuffer(bytes(buffer[:usable]), dtype="<i2").astype(np.int16)
                del buffer[:usable]
                self._head.samples += len(block)
                if self._progress is not None:
                    self._progress(self.duration_s)
                yield block
            if not chunk:
                break
        code = self._child.wait()
        self._stderr.join(timeout=STOP_S)
        while seen < len(self._errors):
            self._damaged(self._errors[seen])
            seen += 1
        if code != 0 and not self._errors:
            self._damaged(f"ffmpeg stopped with exit status {code}")
        self._check_complete()

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait(timeout=STOP_S)
        if self._stderr is not None:
            self._stderr.join(timeout=STOP_S)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PipedPcmReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
