"""iJoin's API (connection ``ijoin_api``): plans with active and draft versions, participants, the
activity log and the enrollment-site elections. The connection's password is the API key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from benefits_hub import codec
from benefits_hub.hooks.vendor_api import VendorApiHook

MAX_BATCH = 500


# The most participants iJoin's API returns in one page.
PARTICIPANTS_PER_PAGE = 500


class IJoinHook(VendorApiHook):
    conn_name_attr = "ijoin_conn_id"
    default_conn_name = "ijoin_api"
    conn_type = "http"
    hook_name = "iJoin API"
    vendor_name = "iJoin"
    api_path = "/api/v1"

    def __init__(self, ijoin_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(ijoin_conn_id, **kwargs)
        self.ijoin_conn_id = ijoin_conn_id

    def bearer_token(self) -> str:
        return self._credentials[1]

    # -- plans ------------------------------------------------------------------------------------
    def list_plans(self, created_since: str | None = None) -> list[dict[str, Any]]:
        params = {"created_since": created_since} if created_since else None
        return self.call("GET", "/plans", params=params)["plans"]

    def get_plan(self, plan_id: str) -> dict[str, Any] | None:
        return self.call("GET", f"/plans/{plan_id}", not_found_ok=True)

    def sync_plan(self, plan_id: str, version: dict[str, Any]) -> dict[str, Any]:
        """iJoin applies its own rule: setup → updated; active + new line-up → a draft; else in place."""
        return self.call("PUT", f"/plans/{plan_id}/sync", json=version)

    def activate_plan(self, plan_id: str, version_id: str | None = None) -> dict[str, Any]:
        """Activate the draft; with ``version_id``, only if the draft is still that version."""
        return self.call(
            "POST", f"/plans/{plan_id}/activate", json={"version_id": version_id} if version_id else None
        )

    # -- participants -----------------------------------------------------------------------------
    @staticmethod
    def participants_request(participants: list[dict[str, Any]]) -> codec.Encoded:
        """The body of :meth:`upsert_participants`, encoded ahead of the call."""
        return codec.Encoded(codec.dumps({"participants": participants}))

    def upsert_participants(
        self, plan_id: str, participants: list[dict[str, Any]] | codec.Encoded
    ) -> list[dict[str, Any]]:
        """iJoin's answer for each participant; ``participants`` or their :meth:`participants_request`."""
        body = (
            participants
            if isinstance(participants, codec.Encoded)
            else self.participants_request(participants)
        )
        return self.call("PUT", f"/plans/{plan_id}/participants", json=body)["results"]

    def list_participants(self, plan_id: str, limit: int = 1000) -> Iterator[dict[str, Any]]:
        """The plan's participants as iJoin holds them (with their sync status), in participant-id order,
        page by page (the most a page may hold: a whole plan is read in the fewest calls)."""
        page, seen = 1, 0
        per_page = min(PARTICIPANTS_PER_PAGE, limit)  # the same on every page: pages are offsets
        while seen < limit:
            params = {"page": page, "per_page": per_page}
            answer = self.call("GET", f"/plans/{plan_id}/participants", params=params)
            for participant in answer["participants"][: limit - seen]:
                seen += 1
                yield participant
            if not answer.get("has_next"):
                return
            page += 1

    # -- activity and elections -------------------------------------------------------------------
    def log_activity(self, entry: dict[str, Any]) -> Any:
        return self.call("POST", "/activity", json=entry)

    def pending_elections(self) -> Iterator[dict[str, Any]]:
        yield from self.call("GET", "/elections", params={"status": "pending"})["elections"]

    def mark_election_sent(self, election_id: str) -> Any:
        return self.call("POST", f"/elections/{election_id}/sent")

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.list_plans()
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"
