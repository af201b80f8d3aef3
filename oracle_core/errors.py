"""A refusal that maps to one HTTP answer: the status to send and words the caller can act on."""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)
