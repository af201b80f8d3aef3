"""Failures to inject into the CVAT test double, for tests of what the oracle does when
CVAT misbehaves (a status, or a stall, on matching requests)."""

from __future__ import annotations

import re
import threading
from collections.abc import Container
from dataclasses import dataclass


@dataclass
class Fault:
    method: str
    path: str  # a regular expression matched against the request path
    status: int = 500  # 0: answer normally after the delay
    delay_s: float = 0.0
    skip: int = 0  # let this many matching requests through first
    times: int = 1
    unless_header: str = ""  # requests carrying this header pass untouched


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str, headers: Container[str] = ()) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times <= 0 or fault.method != method or not re.search(fault.path, path):
                    continue
                if fault.unless_header and fault.unless_header in headers:
                    continue
                if fault.skip:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None
