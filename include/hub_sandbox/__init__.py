"""Local stand-ins for the vendors (SFTP, PlanSource API, HCM database). Never imported by production code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub_sandbox.sandbox import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m hub_sandbox.server`` does not import the server module twice.
    if name == "Sandbox":
        from hub_sandbox.sandbox import Sandbox

        return Sandbox
    raise AttributeError(name)
