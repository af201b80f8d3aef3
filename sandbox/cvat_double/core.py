"""What every resource of the CVAT test double shares: its state, CVAT's media type and
error bodies, paging, the calling user. Facts from a real CVAT 2.73.0 server, recorded."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from sandbox.cvat_double.store import Store

VERSION = "2.73.0"
CVAT_JSON = "application/vnd.cvat+json"
# CVAT's own words: validation errors are bare field maps or lists; these carry `detail`.
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}
PAGE_SIZE = 10


class CvatJSON(JSONResponse):
    media_type = CVAT_JSON


class CvatError(Exception):
    """An answer with CVAT's status and body, written as it is."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def invalid(body: Any) -> CvatError:
    return CvatError(400, body)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """CVAT's envelope (`count, next, previous, results`), ten to a page by default."""
    number = int(request.query_params.get("page", 1))
    size = int(request.query_params.get("page_size", PAGE_SIZE))
    chunk = items[(number - 1) * size : number * size]
    base = str(request.url.remove_query_params("page"))
    join = "&" if "?" in base else "?"
    return {
        "count": len(items),
        "next": f"{base}{join}page={number + 1}" if number * size < len(items) else None,
        "previous": f"{base}{join}page={number - 1}" if number > 1 else None,
        "results": chunk,
    }


class Double:
    """The double's state; each resource module holds its own rules and serialisers."""

    def __init__(self, store: Store, base_url: str, admin: tuple[str, str]) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.sessions: dict[str, int] = {}
        self.pending_uploads: dict[int, list[tuple[str, bytes]]] = {}
        if not store.all("users", username=admin[0]):
            with store.write():
                self.add_user(admin[0], admin[1], email=f"{admin[0]}@cvat.test", staff=True)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def need(self, kind: str, ident: int) -> dict[str, Any]:
        doc = self.store.get(kind, ident)
        if doc is None:
            raise CvatError(404, NOT_FOUND)
        return doc

    # -- users ------------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        password: str,
        email: str,
        staff: bool = False,
        first_name: str = "",
        last_name: str = "",
    ) -> dict[str, Any]:
        return self.store.insert(
            "users",
            {
                "username": username,
                "password": password,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "is_staff": staff,
                "is_superuser": staff,
                "token": secrets.token_hex(20),
                "date_joined": now(),
                "last_login": None,
            },
        )

    def user_of(self, request: Request) -> dict[str, Any]:
        """The caller, by session cookie (cvat-sdk) or `Authorization: Token <key>`."""
        auth = request.headers.get("authorization", "")
        session = request.cookies.get("sessionid")
        user_id: int | None = None
        if session and session in self.sessions:
            user_id = self.sessions[session]
        elif auth.startswith("Token "):
            token = auth.split(" ", 1)[1]
            user_id = next((u["id"] for u in self.store.all("users") if u["token"] == token), None)
        user = self.store.get("users", user_id) if user_id else None
        if user is None:
            raise CvatError(401, NOT_AUTHENTICATED)
        return user

    def basic_user(self, user_id: int | None) -> dict[str, Any] | None:
        user = self.store.get("users", user_id) if user_id else None
        if user is None:
            return None
        return {
            "url": self.url(f"/api/users/{user['id']}"),
            "id": user["id"],
            "username": user["username"],
            "first_name": user.get("first_name", ""),
            "last_name": user.get("last_name", ""),
        }
