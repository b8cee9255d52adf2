"""A bare HTTP client for tests that talk to the sandbox's PlanSource API directly (not the hub's hook)."""

from __future__ import annotations

from typing import Any

import requests

from hub_sandbox.sandbox import Sandbox


class SandboxClient:
    """Token once; ``call`` hits ``/admin/v2``, ``admin`` the unauthenticated ``/sandbox`` routes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.base = sandbox.plansource_url
        self.client_id = str(sandbox.info["client_id"])
        self.client_secret = str(sandbox.info["client_secret"])
        self.token = self.new_token()

    def new_token(self) -> str:
        resp = requests.post(
            f"{self.base}/oauth/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": "admin_api_v2",
            },
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, f"{self.base}/admin/v2{path}", headers=headers, timeout=30, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """The ``data`` of a /sandbox route (stats, changes, subscribers, faults, census_imports...)."""
        resp = requests.request(method, f"{self.base}/sandbox{path}", timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json()["data"]

    def reset(self) -> None:
        """Clear injected faults and restore a 300 s token life."""
        self.admin("DELETE", "/faults")
        self.admin("POST", "/token_ttl", json={"seconds": 300})
