"""Who may do what, as real CVAT 2.73 answered a staff user, a job's assignee and a user
not assigned (CVAT's own rules live in `cvat/apps/iam/` and each app's `rules/`)."""

from __future__ import annotations

from typing import Any

from sandbox.cvat_double.core import FORBIDDEN, CvatError, Double


def is_staff(user: dict[str, Any]) -> bool:
    return bool(user["is_staff"] or user["is_superuser"])


def owns(cvat: Double, user: dict[str, Any], project_id: int | None) -> bool:
    project = cvat.store.get("projects", project_id) if project_id else None
    return bool(project and project["owner_id"] == user["id"])


def sees_job(cvat: Double, user: dict[str, Any], job: dict[str, Any]) -> bool:
    """Staff, the project's owner and the job's assignee; anyone else gets 403."""
    return is_staff(user) or owns(cvat, user, job["project_id"]) or job["assignee_id"] == user["id"]


def need_job(cvat: Double, user: dict[str, Any], job: dict[str, Any]) -> None:
    if not sees_job(cvat, user, job):
        raise CvatError(403, FORBIDDEN)


def need_project(cvat: Double, user: dict[str, Any], project: dict[str, Any]) -> None:
    """A user assigned to none of the project's jobs may not see it."""
    if is_staff(user) or project["owner_id"] == user["id"]:
        return
    if any(
        j["assignee_id"] == user["id"] for j in cvat.store.all("jobs", project_id=project["id"])
    ):
        return
    raise CvatError(403, FORBIDDEN)


def need_task_data(cvat: Double, user: dict[str, Any], task: dict[str, Any]) -> None:
    """A job's assignee reads media through the job, not the task (403)."""
    if not (
        is_staff(user) or owns(cvat, user, task["project_id"]) or task["owner_id"] == user["id"]
    ):
        raise CvatError(403, FORBIDDEN)


def need_staff_or_owner(cvat: Double, user: dict[str, Any], project_id: int | None) -> None:
    if not (is_staff(user) or owns(cvat, user, project_id)):
        raise CvatError(403, FORBIDDEN)


def sees_names(cvat: Double, user: dict[str, Any], job: dict[str, Any]) -> bool:
    """A non-staff assignee sees `task_name` and `project_name` as null."""
    return is_staff(user) or owns(cvat, user, job["project_id"])
