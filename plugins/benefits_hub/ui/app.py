"""The Activity Monitor's FastAPI app, mounted by the plugin under the api-server at ``/activity-monitor``.

Access uses the api-server's own authentication: every route depends on Airflow's ``get_user`` (the
UI's ``_token`` cookie or a bearer token), shows only the DAGs the auth manager lets that user read, and
starts the Transaction Assistant only for a user allowed to trigger it. A browser without a session is
sent to Airflow's login page; an API call without one gets 401.
"""

# FastAPI and the api-server's modules are imported in create_app only: Airflow's plugin loader runs
# this file in every process (tasks, scheduler), and only the api-server needs them. No
# ``from __future__ import annotations`` either: FastAPI reads the routes' annotations (local names in
# create_app) when it registers them.
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from benefits_hub.models import RunStatus
from benefits_hub.ui import activity, detail, files, records, render, urls

LAST_VIEWED_COOKIE = "activity_monitor_last_viewed"
# The counter never looks further back than this, however long ago the last visit was.
COUNTER_HORIZON = timedelta(days=31)


@cache
def _dag_bag() -> Any:
    from airflow.models.dagbag import DBDagBag

    return DBDagBag()  # caches each DAG version it deserializes


def _now() -> datetime:
    return datetime.now(UTC)


def _refused(status_code: int, detail: str) -> Exception:
    from fastapi import HTTPException

    return HTTPException(status_code, detail)


def site_root(request: Any) -> str:
    """The api-server's root path (``[api] base_url``'s path): this app is mounted under it + PREFIX."""
    return str(request.scope.get("root_path", "")).removesuffix(urls.PREFIX)


def _readable(session: Any, user: Any) -> dict[str, records.IntegrationDag]:
    from airflow.api_fastapi.app import get_auth_manager

    allowed = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    return {k: v for k, v in records.integration_dags(session, _dag_bag()).items() if k in allowed}


def _display_names(session: Any, dags: dict[str, records.IntegrationDag]) -> dict[str, str]:
    """An integration's name: from its latest Run Summary, else the DAG's display name in Airflow."""
    names = {dag_id: dag.display_name for dag_id, dag in dags.items()}
    names.update(records.latest_integration_names(session, list(dags)))
    return names


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _refused(400, f"{name}: a date as YYYY-MM-DD") from None


def activity_filter_from(request: Any) -> activity.ActivityFilter:
    """The filter from the query string (empty form fields mean "all")."""
    query = request.query_params
    try:
        return activity.ActivityFilter(
            integrations=[v for v in query.getlist("integration") if v],
            statuses=[v for v in query.getlist("status") if v],
            date_from=_date(query.get("date_from"), "date_from"),
            date_to=_date(query.get("date_to"), "date_to"),
            sort=query.get("sort") or "start",
            order=query.get("order") or "desc",
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _refused(400, problems) from None


def last_viewed(request: Any, now: datetime) -> datetime:
    """The counter's baseline: this visit's (``seen``, kept by the page's links), else the cookie's
    last view, else the default window; never further back than the horizon."""
    for raw in (request.query_params.get("seen"), request.cookies.get(LAST_VIEWED_COOKIE)):
        if raw:
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                continue
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return max(parsed, now - COUNTER_HORIZON)
    return now - timedelta(days=activity.DEFAULT_DAYS)


class Listing(BaseModel):
    rows: list[activity.ActivityRow]
    counter: activity.ErrorCounter
    integrations: list[tuple[str, str]]


def listing(
    session: Any, user: Any, activity_filter: activity.ActivityFilter, seen: datetime, now: datetime
) -> Listing:
    dags = _readable(session, user)
    ids = sorted(dags)
    if activity_filter.integrations:
        ids = [dag_id for dag_id in ids if dag_id in activity_filter.integrations]
    since, until = activity_filter.window(now)
    runs = records.runs(session, ids, since=since, until=until)
    display = _display_names(session, dags)
    rows = activity.build_rows(runs, [dags[dag_id].schedule for dag_id in ids], display)
    rows = activity.sort_rows(
        activity.apply_filter(rows, activity_filter, now), activity_filter.sort, activity_filter.order
    )
    ended = records.runs(session, sorted(dags), ended_since=seen)
    names = activity.integration_names([*runs, *ended], display)
    counter = activity.errors_since(activity.build_rows(ended, [], names), seen)
    choices = sorted(((dag_id, names.get(dag_id, dag_id)) for dag_id in dags), key=lambda c: c[1].casefold())
    return Listing(rows=rows, counter=counter, integrations=choices)


def run_detail(session: Any, user: Any, dag_id: str, run_id: str) -> detail.RunDetail:
    dags = _readable(session, user)
    if dag_id not in dags:
        raise _refused(404, f"No integration '{dag_id}' that you may see.")
    facts = records.one_run(session, dag_id, run_id)
    if facts is None:
        raise _refused(404, f"No run '{run_id}' of '{dag_id}'.")
    names = activity.integration_names([facts], _display_names(session, {dag_id: dags[dag_id]}))
    row = activity.run_row(facts, names[dag_id])
    import_dag_id, import_summary = "", None
    if row.status != RunStatus.IN_PROGRESS.value:
        import_dag_id, import_summary = records.deductions_import_summary(run_id)
    tasks = records.tasks(session, dag_id, run_id)
    return detail.run_detail(row, run_id, facts.summary, tasks, import_dag_id, import_summary)


class ResubmitRequest(BaseModel):
    corrections: dict[str, dict[str, Any]] | None = None


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "file"


def create_app() -> Any:
    """The FastAPI app (called by the plugin's ``LazyASGIApp`` inside the api-server)."""
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import FastAPI, HTTPException, Request, status
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import (
        HTMLResponse,
        JSONResponse,
        RedirectResponse,
        Response,
        StreamingResponse,
    )

    app = FastAPI(title="Activity Monitor", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _login_first(request: Request, exc: HTTPException) -> Response:
        """A browser page without a session goes to Airflow's login, and comes back after it."""
        api = request.url.path.startswith(site_root(request) + urls.PREFIX + "/api/")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and not api and request.method == "GET":
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)))
        if not api and request.method == "GET" and exc.status_code in (400, 403, 404, 409):
            page = render.message_page("Activity Monitor", str(exc.detail), root=site_root(request))
            return HTMLResponse(page, status_code=exc.status_code)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse)
    def activity_page(request: Request, user: GetUserDep, session: SessionDep) -> HTMLResponse:
        now = _now()
        activity_filter = activity_filter_from(request)
        seen = last_viewed(request, now)
        found = listing(session, user, activity_filter, seen, now)
        root = site_root(request)
        page = render.list_page(
            found.rows, activity_filter, found.counter, found.integrations,
            root=root, now=now, seen=seen.isoformat(),
        )  # fmt: skip
        response = HTMLResponse(page)
        # The next visit counts errors from now on; this visit's links keep their baseline (``seen``).
        response.set_cookie(
            LAST_VIEWED_COOKIE, now.isoformat(), path=root + urls.PREFIX,
            max_age=365 * 24 * 3600, httponly=True, samesite="lax",
        )  # fmt: skip
        return response

    @app.get("/api/runs")
    def activity_json(request: Request, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
        now = _now()
        activity_filter = activity_filter_from(request)
        seen = last_viewed(request, now)
        found = listing(session, user, activity_filter, seen, now)
        since, until = activity_filter.window(now)
        return {
            "filters": activity_filter.model_dump(mode="json"),
            "window": {"since": since.isoformat(), "until": until.isoformat() if until else None},
            "errors_since_last_view": found.counter.model_dump(mode="json"),
            "integrations": [{"dag_id": d, "name": n} for d, n in found.integrations],
            "statuses": list(activity.STATUSES),
            "rows": [row.model_dump(mode="json") for row in found.rows],
        }

    @app.get("/api/runs.csv")
    def activity_csv(request: Request, user: GetUserDep, session: SessionDep) -> StreamingResponse:
        now = _now()
        activity_filter = activity_filter_from(request)
        found = listing(session, user, activity_filter, last_viewed(request, now), now)
        return StreamingResponse(
            activity.csv_lines(found.rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="activity-{now:%Y%m%d-%H%M}.csv"'},
        )

    @app.get("/api/runs/{dag_id}/{run_id}")
    def run_json(dag_id: str, run_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
        return run_detail(session, user, dag_id, run_id).model_dump(mode="json")

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_page(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep
    ) -> HTMLResponse:
        found = run_detail(session, user, dag_id, run_id)
        return HTMLResponse(render.detail_page(found, root=site_root(request)))

    @app.get("/runs/{dag_id}/{run_id}/files/{kind}/{index}")
    def run_file(
        dag_id: str, run_id: str, kind: str, index: int, user: GetUserDep, session: SessionDep
    ) -> StreamingResponse:
        if dag_id not in _readable(session, user):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No integration '{dag_id}' that you may see.")
        facts = records.one_run(session, dag_id, run_id)
        # Only a file the run's own summary lists, looked up by position: never a path from the browser.
        path = detail.file_for(facts.summary if facts else None, kind, index)
        if path is None or not records.is_staged(path):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such file for this run.")
        if not records.staged_exists(path):
            # Listed by the summary but gone: the retention DAG deletes staged files (PII) of old runs.
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "This file is no longer kept: staged files are deleted after the retention period "
                "([benefits_hub] staging_retention_days).",
            )
        name = _safe_file_name(detail.file_name(path))
        return StreamingResponse(
            files.masked_bytes(name, records.staged_text_lines(path)),
            media_type=files.media_type(name),
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.post("/api/runs/{dag_id}/{run_id}/resubmit", status_code=status.HTTP_201_CREATED)
    def resubmit(
        request: Request,
        dag_id: str,
        run_id: str,
        body: ResubmitRequest,
        user: GetUserDep,
        session: SessionDep,
    ) -> JSONResponse:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
        from airflow.exceptions import DagNotFound, ParamValidationError
        from airflow.models.dag import DagModel

        found = run_detail(session, user, dag_id, run_id)
        if found.resubmit is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "This run has no deductions import error records for the Transaction Assistant.",
            )
        allowed = get_auth_manager().is_authorized_dag(
            method="POST",
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(
                id=records.RESUBMIT_DAG_ID, team_name=DagModel.get_team_name(records.RESUBMIT_DAG_ID)
            ),
            user=user,
        )
        if not allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not start the Transaction Assistant.")
        try:
            dag_run = records.start_resubmit(
                session, found.resubmit.reference_id, body.corrections, user.get_name()
            )
        except (DagNotFound, ParamValidationError, ValueError) as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        path = urls.run_detail_path(records.RESUBMIT_DAG_ID, dag_run.run_id)
        return JSONResponse(
            {
                "dag_id": records.RESUBMIT_DAG_ID,
                "run_id": dag_run.run_id,
                "detail_path": path,
                "detail_url": site_root(request) + path,
            },
            status_code=status.HTTP_201_CREATED,
        )

    return app
