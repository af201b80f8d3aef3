"""Run every benchmark, or the ones named: `python -m benchmarks [audio ...]`."""

from __future__ import annotations

import importlib
import sys

SUITES = {
    "audio": "benchmarks.audio_bench",
    "vad": "benchmarks.vad_bench",
    "worker_api": "benchmarks.worker_api_bench",
    "validation": "benchmarks.validation_bench",
    "build": "benchmarks.build_bench",
    "annotator": "benchmarks.annotator_bench",
    "export": "benchmarks.export_bench",
    "faults": "benchmarks.faults_bench",
}


def main(argv: list[str]) -> int:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        return 2
    for name in names:
        print(f"== {name} ==", flush=True)
        importlib.import_module(SUITES[name]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
