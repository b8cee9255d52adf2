"""The Activity Monitor plugin: a FastAPI app under the api-server and its entry in the UI's navigation.

Airflow discovers this module in the plugins folder; the logic lives in ``benefits_hub.ui``
(docs/activity-monitor.md describes the page).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from benefits_hub.ui import urls
from benefits_hub.ui.asgi import LazyASGIApp


class ActivityMonitorPlugin(AirflowPlugin):
    name = "activity_monitor"
    # Built at the api-server's first request to it: every other process that loads plugins stays light.
    fastapi_apps = [
        {
            "app": LazyASGIApp("benefits_hub.ui.app:create_app"),
            "url_prefix": urls.PREFIX,
            "name": "Activity Monitor",
        },
    ]
    # A top-level navigation entry that shows the page inside the Airflow UI. ``href`` is relative so it
    # resolves under ``[api] base_url`` (the UI's <base href>).
    external_views = [
        {
            "name": "Activity Monitor",
            "href": urls.list_path().lstrip("/"),
            "url_route": "activity-monitor",
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            "name": "Plan Summary",
            "href": urls.plans_path().lstrip("/"),
            "url_route": "plan-summary",
            "destination": "nav",
            "nav_top_level": True,
        },
    ]
