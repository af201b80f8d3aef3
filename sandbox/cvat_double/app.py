"""The CVAT test double's app: every resource's routes, CVAT's media type on every JSON
answer, CVAT's error bodies, and fault injection. Organised by resource as CVAT's own
views are (`accounts`, `projects`, `tasks`, `jobs`, `job_annotations`, `datasets`,
`requests`, `webhooks`), each module holding its rules; behaviour follows what a real
CVAT 2.73.0 server answered to the same requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from sandbox.cvat_double import (
    accounts,
    datasets,
    job_annotations,
    jobs,
    projects,
    requests,
    tasks,
    webhooks,
)
from sandbox.cvat_double.core import VERSION, CvatError, CvatJSON, Double
from sandbox.cvat_double.faults import Fault, Faults
from sandbox.cvat_double.store import Store

__all__ = ["Fault", "create_app"]


def create_app(
    db_path: str | Path = ":memory:",
    base_url: str = "http://127.0.0.1:8080",
    admin: tuple[str, str] = ("admin", "admin-password"),
) -> FastAPI:
    app = FastAPI(
        title="CVAT test double",
        version=VERSION,
        description="A test double of CVAT 2.73's REST API for audio tasks. Not CVAT.",
        default_response_class=CvatJSON,
    )
    cvat = Double(Store(db_path), base_url, admin)
    app.state.cvat = cvat
    app.state.faults = Faults()

    @app.exception_handler(CvatError)
    async def cvat_error(request: Request, exc: CvatError) -> CvatJSON:
        return CvatJSON(exc.body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> CvatJSON:
        return CvatJSON({str(e["loc"][-1]): [e["msg"]] for e in exc.errors()}, status_code=400)

    @app.middleware("http")
    async def inject_faults(request: Request, call_next: Any) -> Response:
        """Tests make CVAT fail or stall on chosen requests (see Faults)."""
        fault = app.state.faults.take(request.method, request.url.path, request.headers)
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status:
                return CvatJSON({"detail": "injected fault"}, status_code=fault.status)
        response: Response = await call_next(request)
        return response

    for router in (
        accounts.routes(cvat),
        projects.routes(cvat, lambda tid: tasks.delete_task(cvat, tid)),
        tasks.routes(cvat),
        requests.routes(cvat),
        jobs.routes(cvat),
        job_annotations.routes(cvat),
        datasets.routes(cvat),
        webhooks.routes(cvat),
    ):
        app.include_router(router)
    return app
