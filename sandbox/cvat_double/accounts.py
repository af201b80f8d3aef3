"""Server info, sign-in and users (CVAT's `apps/engine` server views and `apps/iam`).

Recorded on CVAT 2.73: registration refuses blank first and last names and answers
without an `id` (its `key` is the new user's token); `GET /api/users?search=` matches the
username and the names, never the e-mail."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.cvat_double.core import VERSION, CvatError, CvatJSON, Double, invalid, now, page

FORMAT = {"name": "Generic TSV 1.0", "ext": "TSV", "version": "1.0", "enabled": True,
          "dimension": "1d"}  # fmt: skip


def user_read(cvat: Double, user: dict[str, Any]) -> dict[str, Any]:
    return {
        **(cvat.basic_user(user["id"]) or {}),
        "email": user["email"],
        "groups": ["admin" if user["is_staff"] else "user"],
        "is_staff": user["is_staff"],
        "is_superuser": user["is_superuser"],
        "is_active": True,
        "last_login": user.get("last_login"),
        "date_joined": user["date_joined"],
        "has_analytics_access": bool(user["is_staff"]),
    }


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    @router.get("/api/server/about")
    def about() -> dict[str, Any]:  # anonymous too
        return {
            "name": "Computer Vision Annotation Tool",
            "description": "CVAT test double: the audio part of CVAT 2.73's REST API. Not CVAT.",
            "version": VERSION,
            "logo_url": cvat.url("/static/logo.svg"),
            "subtitle": "Open Data Annotation Platform",
        }

    @router.get("/api/server/annotation/formats")
    def formats(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        return {"importers": [FORMAT], "exporters": [FORMAT]}

    @router.post("/api/auth/login")
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        name, password = body.get("username") or body.get("email"), body.get("password")
        user = next(
            (u for u in cvat.store.all("users")
             if name in (u["username"], u["email"]) and u["password"] == password),
            None,
        )  # fmt: skip
        if user is None:
            raise invalid({"non_field_errors": ["Unable to log in with provided credentials."]})
        with cvat.store.write():
            user["last_login"] = now()
            cvat.store.put("users", user)
        session = secrets.token_hex(16)
        cvat.sessions[session] = user["id"]
        reply = CvatJSON({"key": user["token"]})
        reply.set_cookie("sessionid", session)
        reply.set_cookie("csrftoken", secrets.token_hex(16))
        return reply

    @router.post("/api/auth/logout")
    def logout(request: Request) -> dict[str, Any]:
        cvat.sessions.pop(request.cookies.get("sessionid", ""), None)
        return {"detail": "Successfully logged out."}

    @router.post("/api/auth/register", status_code=201)
    async def register(request: Request) -> dict[str, Any]:
        body = await request.json()
        problems: dict[str, list[str]] = {}
        for field in ("username", "email", "password1", "password2", "first_name", "last_name"):
            if field not in body:
                problems[field] = ["This field is required."]
            elif not str(body[field]).strip():
                problems[field] = ["This field may not be blank."]
        if problems:
            raise invalid(problems)
        if body["password1"] != body["password2"]:
            raise invalid({"non_field_errors": ["The two password fields didn't match."]})
        users = cvat.store.all("users")
        if any(u["username"] == body["username"] for u in users):
            raise invalid({"username": ["A user with that username already exists."]})
        if any(u["email"].lower() == str(body["email"]).lower() for u in users):
            raise invalid({"email": ["A user is already registered with this e-mail address."]})
        with cvat.store.write():
            user = cvat.add_user(
                body["username"], body["password1"], body["email"],
                first_name=body["first_name"], last_name=body["last_name"],
            )  # fmt: skip
        return {
            "username": user["username"],
            "email": user["email"],
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "email_verification_required": False,
            "key": user["token"],
        }

    @router.get("/api/users/self")
    def users_self(request: Request) -> dict[str, Any]:
        return user_read(cvat, cvat.user_of(request))

    @router.get("/api/users")
    def users(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        search = q.get("search", "").lower()
        found = [
            user_read(cvat, u)
            for u in cvat.store.all("users")
            if not search
            or any(search in u.get(f, "").lower() for f in ("username", "first_name", "last_name"))
        ]
        if q.get("username"):
            found = [u for u in found if u["username"] == q["username"]]
        return page(request, found)

    @router.get("/api/users/{uid}")
    def user(uid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        return user_read(cvat, cvat.need("users", uid))

    return router


__all__ = ["CvatError", "routes", "user_read"]
