"""Honeypot suggestions in a pre-annotated escrow: the answer garbled, never as it is, the
same on every rebuild."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from exchange_oracle.imports import garble

VOCABULARY = ["the", "box", "was", "thrown", "beside", "parked", "truck"]


@given(st.lists(st.sampled_from([*VOCABULARY, "lemons", "juice"]), min_size=1, max_size=12),
       st.integers(0, 2**32))  # fmt: skip
def test_a_garbled_answer_always_differs_and_is_repeatable(words: list[str], seed: int) -> None:
    text = " ".join(words)
    first = garble(text, VOCABULARY, random.Random(seed))
    assert first != text
    assert first == garble(text, VOCABULARY, random.Random(seed))
