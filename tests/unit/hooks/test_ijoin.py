"""The iJoin hook's participant upserts against the sandbox's real iJoin on loopback."""

from __future__ import annotations

from typing import Any

import requests

from benefits_hub import codec
from benefits_hub.hooks.ijoin import IJoinHook

PEOPLE = [
    {"participant_id": "ENC-0001", "first_name": "Ada", "last_name": "Lovelace", "status": "A"},
    {"participant_id": "ENC-0002", "first_name": "Alan", "last_name": "Turing", "status": "A"},
]


def _puts(sandbox: Any) -> int:
    stats = requests.get(f"{sandbox.ijoin_url}/sandbox/stats", timeout=5).json()["data"]
    return sum(n for path, n in stats["requests_by_path"].items() if path.endswith("/participants"))


def test_participants_encoded_ahead_are_sent_as_they_are_retries_included(sandbox: Any) -> None:
    hook = IJoinHook()
    request = hook.participants_request(PEOPLE)
    assert isinstance(request, codec.Encoded) and codec.loads(request) == {"participants": PEOPLE}
    before = _puts(sandbox)
    fault = {"status": 503, "count": 1, "method": "PUT", "path_prefix": "/api/v1/plans/"}
    requests.post(f"{sandbox.ijoin_url}/sandbox/faults", json=fault, timeout=5).raise_for_status()
    try:
        answers = hook.upsert_participants("P0002", request)
    finally:
        requests.delete(f"{sandbox.ijoin_url}/sandbox/faults", timeout=5)
    assert [(a["participant_id"], a["status"]) for a in answers] == [
        ("ENC-0001", "created"),
        ("ENC-0002", "created"),
    ]
    assert _puts(sandbox) - before == 2  # refused once, then the same bytes again
    # The same people given as records: iJoin holds exactly what the encoded request said.
    assert [a["status"] for a in hook.upsert_participants("P0002", PEOPLE)] == ["unchanged", "unchanged"]
