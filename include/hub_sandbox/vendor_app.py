"""What the sandbox's vendor APIs share: the vendors' envelope, their errors, and the fault switch."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def envelope(data: Any) -> dict[str, Any]:
    return {"status": "success", "errors": [], "data": data}


def failure(
    http_status: int,
    message: str,
    error_code: str,
    details: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    errors: dict[str, Any] = {"http_status": http_status, "message": message, "error_code": error_code}
    if details is not None:
        errors["details"] = details
    return JSONResponse(
        {"status": "failure", "errors": errors, "data": []}, status_code=http_status, headers=headers
    )


class ApiError(Exception):
    def __init__(self, http_status: int, message: str, error_code: str, details: list[str] | None = None):
        super().__init__(message)
        self.http_status, self.message, self.error_code, self.details = (
            http_status,
            message,
            error_code,
            details,
        )


def page_of(
    records_key: str, records: list[Any], total: int, page: int, per_page: int, link: Any
) -> dict[str, Any]:
    """A paged answer in PlanSource's shape: totals, first/current/next/last links, the records."""
    last = max(1, math.ceil(total / per_page))
    return envelope(
        {
            "total": total,
            "per_page": per_page,
            "page": page,
            "links": {
                "first": link(1),
                "current": link(page),
                "next": link(page + 1) if page < last else None,
                "last": link(last),
            },
            records_key: records,
        }
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error in the vendor's envelope; never FastAPI's default, which echoes the input (PII)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return failure(exc.http_status, exc.message, exc.error_code, exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return failure(404, "Route not found", "route_not_found")
        return failure(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        names = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        return failure(400, f"Invalid parameter(s): {', '.join(names)}.", "bad_request")

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        return failure(500, "Internal error", "internal_error")


def injected_fault(faults: list[dict[str, Any]], path: str) -> JSONResponse | None:
    """The answer of the first armed fault matching ``path`` (POST /sandbox/faults), using it up."""
    for fault in faults:
        if fault["count"] > 0 and path.startswith(fault["path_prefix"]):
            fault["count"] -= 1
            retry = fault["retry_after"]
            headers = {"Retry-After": str(retry)} if retry is not None else None
            message = "Too many requests" if fault["status"] == 429 else "Injected fault"
            response = failure(fault["status"], message, "sandbox_fault", headers=headers)
            faults[:] = [f for f in faults if f["count"] > 0]
            return response
    return None
