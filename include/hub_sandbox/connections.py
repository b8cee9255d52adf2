"""Airflow connections for a running sandbox, in Airflow's JSON connection format."""

from __future__ import annotations

import json
import shlex
from typing import Any


def connections(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Connection id -> Airflow connection dict, from a sandbox.json document."""
    conns: dict[str, dict[str, Any]] = {
        "hcm_db": {"conn_type": "sqlite", "host": info["hcm_db_path"]},
        # No extras: HttpHook would send unknown extras as HTTP headers. The token path
        # (/oauth/v2/token) and base path (/admin/v2) are fixed, as at the real PlanSource.
        "plansource_api": {
            "conn_type": "http",
            "host": info["host"],
            "port": info["http_port"],
            "schema": "http",
            "login": info["client_id"],
            "password": info["client_secret"],
        },
        "plansource_sftp": {
            "conn_type": "sftp",
            "host": info["host"],
            "port": info["sftp_port"],
            "login": info["sftp_user"],
            "password": info["sftp_password"],
            # Host key verification stays on, even in the sandbox.
            "extra": {"host_key": info["host_key"]},
        },
    }
    if "ijoin_port" in info:  # a sandbox.json written before the recordkeeper and iJoin existed has neither
        conns["recordkeeper_db"] = {"conn_type": "sqlite", "host": info["recordkeeper_db_path"]}
        # The API key is the password (sent as "Authorization: Bearer <key>"); no extras, as above.
        conns["ijoin_api"] = {
            "conn_type": "http",
            "host": info["host"],
            "port": info["ijoin_port"],
            "schema": "http",
            "password": info["ijoin_api_key"],
        }
    return conns


def connection_env(info: dict[str, Any]) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> -> JSON value."""
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections(info).items()
    }


def export_lines(info: dict[str, Any]) -> str:
    """Shell lines to ``source``: export AIRFLOW_CONN_HCM_DB='{...}' and so on."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in connection_env(info).items())
