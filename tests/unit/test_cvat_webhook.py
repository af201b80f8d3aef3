"""Which CVAT deliveries complete an assignment. CVAT 2.73 sends `update:job` on every
annotation save too (its `before_update` then holds only `updated_date`), and says what
changed in `changes`; only a change of state to completed is a completion."""

from __future__ import annotations

from typing import Any

from exchange_oracle.lifecycle import completes


def delivery(state: str, **extra: Any) -> dict[str, Any]:
    return {"event": "update:job", "webhook_id": 1, "job": {"id": 7, "state": state}, **extra}


def test_only_a_move_to_completed_completes() -> None:
    moved = delivery(
        "completed",
        before_update={"updated_date": "t0", "state": "in progress"},
        changes={"updated_date": {"from": "t0", "to": "t1"},
                 "state": {"from": "in progress", "to": "completed"}},
    )  # fmt: skip
    saved_after = delivery(
        "completed",
        before_update={"updated_date": "t1"},
        changes={"updated_date": {"from": "t1", "to": "t2"}},
    )
    assigned = delivery(
        "completed",
        before_update={"updated_date": "t2", "assignee_id": None},
        changes={"assignee_id": {"from": None, "to": 3}},
    )
    assert completes(moved)
    assert not completes(saved_after) and not completes(assigned)
    assert not completes(delivery("in progress", changes={"state": {"to": "in progress"}}))
    assert not completes({"event": "create:task", "task": {"id": 1}})


def test_an_older_cvat_without_changes_is_read_from_before_update() -> None:
    assert completes(delivery("completed", before_update={"state": "new"}))
    assert not completes(delivery("completed", before_update={"updated_date": "t"}))
