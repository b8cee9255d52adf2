"""The request recorder the benchmarks' floor replays: off by default, records exactly what arrived."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from benchmarks.floor import replay_http, start_recording, stop_recording
from hub_sandbox import Sandbox


def test_records_requests_only_while_on_and_replays_them(sandbox: Sandbox, tmp_path: Path) -> None:
    recording = tmp_path / "http.jsonl"
    requests.get(f"{sandbox.ijoin_url}/sandbox/health", timeout=10)  # before: not recorded
    start_recording(sandbox, recording)
    token = requests.post(
        f"{sandbox.plansource_url}/oauth/v2/token",
        data={"grant_type": "client_credentials", "client_id": sandbox.info["client_id"],
              "client_secret": sandbox.info["client_secret"]},
        timeout=10,
    ).json()["access_token"]  # fmt: skip
    requests.get(
        f"{sandbox.plansource_url}/admin/v2/subscribers",
        params={"page": 1, "per_page": 5},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    stop_recording(sandbox)
    requests.get(f"{sandbox.ijoin_url}/sandbox/health", timeout=10)  # after: not recorded

    entries = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [(e["api"], e["method"], e["path"]) for e in entries] == [
        ("plansource", "POST", "/oauth/v2/token"),
        ("plansource", "GET", "/admin/v2/subscribers"),
    ]
    assert "grant_type=client_credentials" in entries[0]["body"]
    assert entries[1]["query"] == "page=1&per_page=5"
    assert entries[1]["headers"]["authorization"] == f"Bearer {token}"
    assert replay_http(recording, sandbox) == 2
