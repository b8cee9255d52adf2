"""What the sandbox's vendor APIs share: the vendors' envelope, their errors, and the fault switch."""

from __future__ import annotations

import asyncio
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


class FaultSwitch:
    """The faults armed through ``POST /sandbox/faults``, which a vendor app's middleware applies.

    A fault catches the next ``count`` requests whose path starts with ``path_prefix`` (and whose
    method is ``method``, if given), after letting ``skip`` of them through. With a ``status`` it
    answers that error (429 with ``Retry-After``); with ``status: null`` the request is served as usual.
    ``stall`` (seconds) holds the answer that long, *after* the request was handled: a write lands,
    and only its answer is late, as when a vendor stalls past the caller's read timeout.
    ``DELETE /sandbox/faults`` disarms everything and sends held answers at once.
    """

    def __init__(self, default_prefix: str) -> None:
        self.default_prefix = default_prefix
        self.faults: list[dict[str, Any]] = []
        self._holds: set[asyncio.Event] = set()

    def arm(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            status = body.get("status", 503)
            fault = {
                "status": None if status is None else int(status),
                "count": int(body.get("count", 1)),
                "path_prefix": str(body.get("path_prefix", self.default_prefix)),
                "method": str(body["method"]).upper() if body.get("method") else None,
                "skip": int(body.get("skip", 0)),
                "retry_after": None if body.get("retry_after") is None else int(body["retry_after"]),
                "stall": float(body.get("stall", 0)),
            }
        except (TypeError, ValueError):
            raise ApiError(
                400, "status, count, skip, retry_after and stall must be numbers.", "bad_request"
            ) from None
        if fault["status"] is None and fault["stall"] <= 0:
            raise ApiError(400, "A fault without a status must stall.", "bad_request")
        if fault["status"] == 429 and fault["retry_after"] is None:
            fault["retry_after"] = 1
        self.faults.append(fault)
        return self.faults

    def clear(self) -> None:
        self.faults.clear()
        for release in self._holds:
            release.set()

    def take(self, method: str, path: str) -> dict[str, Any] | None:
        """The first armed fault matching this request, used up; None if the request goes through."""
        for fault in self.faults:
            if fault["count"] <= 0 or not path.startswith(fault["path_prefix"]):
                continue
            if fault["method"] not in (None, method.upper()):
                continue
            if fault["skip"] > 0:
                fault["skip"] -= 1
                return None
            fault["count"] -= 1
            self.faults[:] = [f for f in self.faults if f["count"] > 0]
            return dict(fault)
        return None

    @staticmethod
    def refusal(fault: dict[str, Any] | None) -> JSONResponse | None:
        """The error answer of a fault that has a status; None if the request is to be served."""
        if fault is None or fault["status"] is None:
            return None
        retry = fault["retry_after"]
        headers = {"Retry-After": str(retry)} if retry is not None else None
        message = "Too many requests" if fault["status"] == 429 else "Injected fault"
        return failure(fault["status"], message, "sandbox_fault", headers=headers)

    async def hold(self, fault: dict[str, Any] | None) -> None:
        """Hold the answer for the fault's ``stall`` seconds (or until the faults are cleared)."""
        if fault is None or fault["stall"] <= 0:
            return
        release = asyncio.Event()
        self._holds.add(release)
        try:
            await asyncio.wait_for(release.wait(), fault["stall"])
        except TimeoutError:
            pass
        finally:
            self._holds.discard(release)
