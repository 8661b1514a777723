"""Kubernetes Status bodies, errors and Warning headers, worded as the API server words them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp.web

from chaoskirvis.sandbox.resources import ResourceType
from chaoskirvis.sandbox.store import Cause, ObjectExists, ObjectNotFound, StoreError


@dataclass(eq=False)  # not frozen: raising sets __traceback__, add_note sets __notes__
class StatusError(Exception):
    """A refusal, answered with HTTP status `status` and a Status body (metav1.Status) of these fields."""

    status: int
    reason: str
    message: str
    details: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.message


def details_of(resource: ResourceType, name: str | None, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    return details | {"kind": kind or resource.plural} | extra


def status_error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> StatusError:
    return StatusError(status=code, reason=reason, message=message, details=details)


def not_found(resource: ResourceType, name: str) -> StatusError:
    return status_error(404, "NotFound", f'{resource.group_resource} "{name}" not found', details_of(resource, name))


def invalid(resource: ResourceType, name: str, causes: list[Cause] | tuple[Cause, ...]) -> StatusError:
    summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
    details = details_of(resource, name, resource.kind,
                       causes=[{"reason": c.reason, "message": c.message, "field": c.field} for c in causes])
    qualified = f"{resource.kind}.{resource.group}" if resource.group else resource.kind  # GroupKind.String()
    return status_error(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> StatusError:
    return status_error(400, "BadRequest", message)


def forbidden(resource: ResourceType, name: str | None, reason: str) -> StatusError:
    subject = f'{resource.group_resource} "{name}"' if name else resource.group_resource
    return status_error(403, "Forbidden", f"{subject} is forbidden: {reason}", details_of(resource, name))


def store_error(error: StoreError) -> StatusError:
    resource, name = error.resource, error.name
    if isinstance(error, ObjectNotFound):
        return not_found(resource, name)
    if isinstance(error, ObjectExists):
        return status_error(409, "AlreadyExists", f'{resource.group_resource} "{name}" already exists',
                            details_of(resource, name))
    return status_error(409, "Conflict", f'Operation cannot be fulfilled on {resource.group_resource} "{name}": '
                                         f"{error.detail}", details_of(resource, name))


UNAUTHORIZED = status_error(401, "Unauthorized", "Unauthorized")
NO_SUCH_PATH = status_error(404, "NotFound", "the server could not find the requested resource", {})
METHOD_NOT_ALLOWED = status_error(405, "MethodNotAllowed",
                                  "the server does not allow this method on the requested resource", {})


def status_body(error: StatusError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": error.message}
    if error.reason:  # metav1.Status's reason is omitempty: a webhook's denial may give none
        body["reason"] = error.reason
    if error.details is not None:
        body["details"] = error.details
    return body | {"code": error.status}


def warning_header(text: str) -> str:
    """An RFC 7234 Warning header value as the API server writes it: code 299, agent "-", quoted text."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    quoted = printable.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'


def json_response(body: Any, status: int = 200, warnings: tuple[str, ...] = ()) -> aiohttp.web.Response:
    response = aiohttp.web.json_response(body, status=status)
    for warning in warnings:
        response.headers.add("Warning", warning_header(warning))
    return response
