"""A build blocked by CVAT: retried, per request and then per step, for as long as
CVAT_OUTAGE_LIMIT_S allows with no progress; past it the escrow fails with the reason and
the launcher is told (escrow_failed), instead of sitting in `packing` for ever."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from exchange_oracle.build import BuildContext, fail_escrow, now
from exchange_oracle.db import escrows
from oracle_core.db import transaction

log = logging.getLogger(__name__)
BUILDING = ("building", "analysing", "packing")


def cvat_outage(ctx: BuildContext, escrow_id: int, exc: BaseException) -> bool:
    """Note that the escrow's build just found CVAT down. Returns True when the outage has
    outlasted the limit and the escrow was failed (retry no more). Publishing a clip is
    progress and clears the note (build.finish_escrow)."""
    limit_s = ctx.settings.cvat_outage_limit_s
    with transaction(ctx.sessions) as session:
        row = session.execute(
            select(escrows.c.status, escrows.c.outage_since, escrows.c.chain_id,
                   escrows.c.escrow_address)
            .where(escrows.c.id == escrow_id)
            .with_for_update()
        ).one_or_none()  # fmt: skip
        if row is None or row.status not in BUILDING:
            return False
        since = row.outage_since or now()
        # Touching updated_at tells the resume sweep the step is waiting, not dead.
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id)
            .values(outage_since=since, updated_at=now())
        )
    down_s = (now() - since).total_seconds()
    if down_s <= limit_s:
        log.warning("escrow %s: CVAT down for %.0f s: %s", row.escrow_address, down_s, exc)
        return False
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    reason = (
        f"CVAT could not be reached for {down_s:.0f} s with no progress (limit "
        f"CVAT_OUTAGE_LIMIT_S={limit_s:.0f} s); last error: {detail}"
    )
    fail_escrow(ctx, escrow_id, row.chain_id, row.escrow_address, reason)
    return True
