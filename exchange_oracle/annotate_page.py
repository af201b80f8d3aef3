"""The annotator's page at `/annotate/{assignment_id}`, its built assets under `/ui/`, and
the clip's audio behind a short-lived signed URL (a media element cannot send a bearer
token, and the page must stream a long clip with range requests, not download it whole).

The page itself holds nothing secret: it reads the worker's HUMAN App token from the URL
fragment (never sent to a server) and calls the worker API with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from exchange_oracle.db import assignments, escrows, jobs
from oracle_core.storage import ObjectStorage, StorageError

UI_DIST = Path(__file__).parent / "ui" / "dist"
CHUNK_BYTES = 2 * 1024 * 1024  # at most this much audio per range response
AUDIO_URL_MAX_S = 12 * 3600
PAGE_HEADERS = {
    # wavesurfer.js styles its shadow DOM with inline <style> elements; nothing else inline.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def audio_signature(secret: str, assignment_id: str, exp: int, what: str = "clip") -> str:
    message = f"{what}-audio:{assignment_id}:{exp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_audio_path(
    secret: str, assignment_id: str, expires_at: datetime, practice: bool = False
) -> str:
    """Root-relative URL of the clip (or of the escrow's practice clip), valid until the
    assignment expires (at most 12 h)."""
    exp = int(min(expires_at.timestamp(), time.time() + AUDIO_URL_MAX_S))
    what, route = ("practice", "practice-audio") if practice else ("clip", "audio")
    sig = audio_signature(secret, assignment_id, exp, what)
    return f"/annotate/{assignment_id}/{route}?exp={exp}&sig={sig}"


def clip_response(
    storage: ObjectStorage, bucket: str, key: str, range_header: str | None
) -> Response:
    """The MP3 at `key`, answering a `Range: bytes=a-b` request with 206 and a piece of at
    most CHUNK_BYTES (media elements ask again for the rest), or 416 past the end."""
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    match = _RANGE.match(range_header.strip()) if range_header else None
    if match is None or match.groups() == ("", ""):
        return Response(storage.get(bucket, key), media_type="audio/mpeg", headers=headers)
    start, end = match.groups()
    if start == "":  # the last N bytes
        _, total = storage.get_range(bucket, key, 0, 0)
        first = max(0, total - int(end))
        last = total - 1
    else:
        first = int(start)
        last = int(end) if end else first + CHUNK_BYTES - 1
    last = min(last, first + CHUNK_BYTES - 1)
    try:
        data, total = storage.get_range(bucket, key, first, last)
    except StorageError as exc:
        if "InvalidRange" not in str(exc):
            raise
        _, total = storage.get_range(bucket, key, 0, 0)
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{total}"})
    headers["Content-Range"] = f"bytes {first}-{first + len(data) - 1}/{total}"
    return Response(data, status_code=206, media_type="audio/mpeg", headers=headers)


def page_router(context: Callable[[], Any]) -> APIRouter:
    """`context` returns the oracle's ExchangeContext (sessions, storage, settings)."""
    router = APIRouter(tags=["annotator page"])

    @router.get(
        "/annotate/{assignment_id}",
        response_class=HTMLResponse,
        summary="The annotator's page (open with #token=<HUMAN App token>)",
    )
    def annotate_page(assignment_id: str) -> Response:
        page = UI_DIST / "annotate.html"
        if not page.is_file():
            return HTMLResponse(
                "<!doctype html><title>Annotator page not built</title>"
                "<h1>The annotator page is not built on this server</h1>"
                "<p>Run <code>make install</code> (or <code>npm ci && npm run build:ui</code>) "
                "and restart the exchange oracle.</p>",
                status_code=503,
                headers=PAGE_HEADERS,
            )
        return FileResponse(page, media_type="text/html", headers=PAGE_HEADERS)

    def signed_clip(assignment_id: str, exp: int, sig: str, what: str) -> Any:
        if exp < time.time():
            raise HTTPException(403, "this audio link has expired: reload the page")
        with context().sessions() as session:
            row = session.execute(
                select(
                    assignments.c.status, jobs.c.clip_key, escrows.c.webhook_secret,
                    escrows.c.practice,
                )
                .join(jobs, jobs.c.id == assignments.c.job_id)
                .join(escrows, escrows.c.id == assignments.c.escrow_id)
                .where(assignments.c.id == assignment_id)
            ).first()  # fmt: skip
        secret = row.webhook_secret if row else None
        good = secret and hmac.compare_digest(
            audio_signature(secret, assignment_id, exp, what), sig
        )
        if not good:
            raise HTTPException(403, "this audio link is not valid")
        if row.status != "active":
            raise HTTPException(410, f"the assignment is {row.status}")
        return row

    @router.get(
        "/annotate/{assignment_id}/audio",
        response_class=Response,
        summary="The clip (MP3, range requests) for a URL signed by GET .../annotations",
    )
    def annotate_audio(assignment_id: str, exp: int, sig: str, request: Request) -> Response:
        row = signed_clip(assignment_id, exp, sig, "clip")
        ctx = context()
        return clip_response(
            ctx.storage, ctx.settings.storage_bucket, row.clip_key, request.headers.get("range")
        )

    @router.get(
        "/annotate/{assignment_id}/practice-audio",
        response_class=Response,
        summary="The escrow's practice clip (MP3), for a URL signed by GET .../practice",
    )
    def practice_audio(assignment_id: str, exp: int, sig: str, request: Request) -> Response:
        row = signed_clip(assignment_id, exp, sig, "practice")
        if not row.practice:
            raise HTTPException(404, "this escrow has no practice clip")
        ctx = context()
        return clip_response(
            ctx.storage,
            ctx.settings.storage_bucket,
            row.practice["clip_key"],
            request.headers.get("range"),
        )

    return router


def mount_assets(app: Any) -> None:
    """Serve the built JS/CSS (content-hashed names, so they may be cached for good)."""
    app.mount("/ui", StaticFiles(directory=UI_DIST, check_dir=False), name="ui")
