"""Recovery time per fault: the fault suite (`make test-faults`) runs with its figures
shown, and each `recovery:` line it prints is listed (kill -9 mid-build, CVAT outages,
and whatever fault tests add)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "faults", "-s", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    figures = [line.split("recovery:", 1)[1].strip() for line in done.stdout.splitlines()
               if "recovery:" in line]  # fmt: skip
    for figure in figures:
        print(f"  {figure}")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    print(f"fault suite: {summary}")


if __name__ == "__main__":
    main()
