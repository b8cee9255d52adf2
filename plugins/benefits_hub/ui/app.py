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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from benefits_hub.models import RunStatus
from benefits_hub.ui import (
    activity,
    assistant,
    detail,
    files,
    plans,
    reconcile,
    records,
    render,
    render_forms,
    render_mappings,
    render_plans,
    render_reconcile,
    trigger,
    urls,
)

LAST_VIEWED_COOKIE = "activity_monitor_last_viewed"
PREVIEW_FILE = "preview.csv"  # a Dry Run's output (benefits_hub.demographics.export)
ERROR_ROWS_SHOWN = 1000  # on the page; the error file download has them all
# 'unsafe-inline' for styles only: each page carries its stylesheet; scripts come from this app alone.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
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
    runnable: list[tuple[str, str]] = []  # what the Run an Integration form offers


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
    runnable = [(dag_id, name) for dag_id, name in choices if dag_id not in records.STARTED_BY_THE_HUB]
    return Listing(rows=rows, counter=counter, integrations=choices, runnable=runnable)


def run_detail(
    session: Any, user: Any, dag_id: str, run_id: str, *, assistant_counts: bool = True
) -> detail.RunDetail:
    """One run's page facts. ``assistant_counts=False``: the caller reads the Transaction Assistant's
    chain itself (its page), so the counts are not read here as well."""
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
    found = detail.run_detail(row, run_id, facts.summary, tasks, import_dag_id, import_summary)
    if dag_id == records.RESUBMIT_DAG_ID and row.status != RunStatus.IN_PROGRESS.value:
        found.resubmit = detail.ResubmitOffer(
            reference_id=run_id, post_path=urls.resubmit_path(dag_id, run_id),
            page_path=urls.transaction_assistant_path(dag_id, run_id),
        )  # fmt: skip
    if found.resubmit is not None and assistant_counts:
        chain = records.transaction_assistant(run_id, with_records=False)
        if chain is not None:
            view = assistant.build_view(chain)
            found.resubmit.open_records, found.resubmit.total_records = len(view.open), view.total
            found.resubmit.resubmissions = view.resubmissions
        elif dag_id == records.RESUBMIT_DAG_ID:
            found.resubmit = None  # a resubmission refused before it named an import run
    dag = _dag_bag().get_latest_version_of_dag(dag_id, session=session)
    params = trigger.dag_params(dag) if dag is not None else {}
    titles = {name: str(schema.get("title") or name) for name, (_default, schema) in params.items()}
    found.params = detail.shown_params(records.run_conf(session, dag_id, run_id), titles)
    if params and dag_id not in records.STARTED_BY_THE_HUB:
        found.rerun_path = urls.trigger_path(dag_id, rerun_of=run_id)
        found.trigger_path = urls.trigger_path(dag_id)
    found.waiting_on_pause = facts.state == "queued" and records.is_paused(session, dag_id)
    if facts.awaiting:
        found.waiting_reason = records.held_reason(session, dag_id, run_id, facts.awaiting[0])
    return found


class ResubmitRequest(BaseModel):
    corrections: dict[str, dict[str, Any]] | None = None
    dismissals: dict[str, str] | None = None


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

    @app.middleware("http")
    async def _safe_headers(request: Request, call_next: Any) -> Response:
        """Every answer: no inline script may run (the pages have none), nothing is sniffed into
        another type, and nothing with personal data is kept by a browser or a proxy."""
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

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

    @app.get("/static/local-time.js")
    def local_time_script() -> Response:
        # Served by this app so that the pages' CSP can forbid every other script.
        script = (Path(__file__).parent / "static" / "local-time.js").read_text(encoding="utf-8")
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    def activity_page(request: Request, user: GetUserDep, session: SessionDep) -> HTMLResponse:
        now = _now()
        activity_filter = activity_filter_from(request)
        seen = last_viewed(request, now)
        found = listing(session, user, activity_filter, seen, now)
        root = site_root(request)
        page = render.list_page(
            found.rows, activity_filter, found.counter, found.integrations,
            root=root, now=now, seen=seen.isoformat(), runnable=found.runnable,
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

    @app.get("/runs/{dag_id}/{run_id}/errors", response_class=HTMLResponse)
    def error_records_page(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep,
        q: str = "", field: str = "",
    ) -> HTMLResponse:  # fmt: skip
        found = run_detail(session, user, dag_id, run_id)
        rows = [
            row
            for index, _ in enumerate(detail.summary_files(found.summary)["errors"])
            for row in records.error_rows(detail.file_for(found.summary, "errors", index) or "")
        ]
        fields = sorted({row.get("field", "") for row in rows} - {""})
        needle = q.strip().casefold()
        shown = [
            row for row in rows
            if (not field or row.get("field") == field)
            and (not needle or needle in " ".join(str(v) for v in row.values()).casefold())
        ]  # fmt: skip
        return HTMLResponse(
            render.error_records_page(
                found,
                shown,
                root=site_root(request),
                query=q,
                field=field,
                fields=fields,
                total=len(rows),
                shown_limit=ERROR_ROWS_SHOWN,
            )
        )

    @app.get("/runs/{dag_id}/{run_id}/preview", response_class=HTMLResponse)
    def preview_page(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep, q: str = ""
    ) -> HTMLResponse:
        found = run_detail(session, user, dag_id, run_id)
        outputs = detail.summary_files(found.summary)["output"]
        previews = [path for path in outputs if detail.file_name(path) == PREVIEW_FILE]
        if not found.row.dry_run or not previews:
            raise _refused(404, "This run was not a dry run, so it has no preview.")
        rows = [row for path in previews for row in records.error_rows(path)]  # a sync's: one per plan
        needle = q.strip().casefold()
        shown = [r for r in rows if not needle or needle in " ".join(map(str, r.values())).casefold()]
        return HTMLResponse(
            render.preview_page(
                found, shown, root=site_root(request), query=q, total=len(rows), shown_limit=ERROR_ROWS_SHOWN
            )
        )

    def discrepancy_rows(found: Any) -> list[dict[str, str]]:
        outputs = detail.summary_files(found.summary)["output"]
        files = [path for path in outputs if detail.file_name(path) == reconcile.DISCREPANCY_FILE]
        if found.dag_id != reconcile.RECONCILE_DAG_ID or not files:
            raise _refused(404, "This run is not a reconciliation with a discrepancy file.")
        return [row for path in files for row in records.error_rows(path)]

    def may_repair(user: Any) -> bool:
        return all(may_trigger(user, dag_id) for dag_id in reconcile.REPAIR_DAGS.values())

    def discrepancies_html(
        request: Request, session: Any, found: Any, user: Any, kind: str, q: str, refused: str = ""
    ) -> str:
        rows = discrepancy_rows(found)
        return render_reconcile.discrepancies_page(
            found, reconcile.matching(rows, kind=kind, query=q), root=site_root(request), total=len(rows),
            kinds=sorted({row.get("kind", "") for row in rows} - {""}), kind=kind, query=q,
            shown_limit=reconcile.SHOWN, may_repair=may_repair(user),
            refused=refused, nights=reconcile.history(records.recent_runs(session, [found.dag_id], 60)),
        )  # fmt: skip

    @app.get("/runs/{dag_id}/{run_id}/discrepancies", response_class=HTMLResponse)
    def discrepancies_page(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep,
        kind: str = "", q: str = "",
    ) -> HTMLResponse:  # fmt: skip
        found = run_detail(session, user, dag_id, run_id)
        return HTMLResponse(discrepancies_html(request, session, found, user, kind, q))

    @app.post("/runs/{dag_id}/{run_id}/repair", response_model=None)
    async def repair_submit(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep
    ) -> Response:
        found = run_detail(session, user, dag_id, run_id)
        if not may_repair(user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not start a repair.")
        form = await request.form()
        kind, q = str(form.get("kind") or ""), str(form.get("q") or "")
        rows = discrepancy_rows(found)
        if form.get("all"):  # every repairable one the filter shows
            chosen = [row["record_key"] for row in reconcile.matching(rows, kind=kind, query=q)]
        else:
            chosen = [str(value) for value in form.getlist("employee")]
        repairs = reconcile.to_repair(rows, chosen)
        if not repairs:
            page = discrepancies_html(
                request, session, found, user, kind, q,
                refused="Choose at least one discrepancy that can be repaired (it has a box to tick).",
            )  # fmt: skip
            return HTMLResponse(page, status_code=status.HTTP_400_BAD_REQUEST)
        # One repair per integration that owns a chosen discrepancy; the page follows the first.
        started = [
            (dag_id, records.start_repair(session, dag_id, employees, run_id, user.get_name()))
            for dag_id, employees in repairs.items()
        ]
        session.commit()
        dag_id, dag_run = started[0]
        return see_run(request, dag_id, dag_run.run_id)

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

    def may_trigger(user: Any, dag_id: str) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
        from airflow.models.dag import DagModel

        return bool(
            get_auth_manager().is_authorized_dag(
                method="POST",
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
                user=user,
            )
        )

    async def form_of(request: Request) -> dict[str, str]:
        # URL-encoded forms only (no file uploads): read without an extra multipart dependency.
        body = (await request.body()).decode("utf-8", errors="replace")
        return dict(parse_qsl(body, keep_blank_values=True))

    def see_run(request: Request, dag_id: str, run_id: str) -> RedirectResponse:
        path = site_root(request) + urls.run_detail_path(dag_id, run_id)
        return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)

    def assistant_facts(session: Any, user: Any, dag_id: str, run_id: str) -> tuple[Any, Any]:
        found = run_detail(session, user, dag_id, run_id, assistant_counts=False)
        chain = records.transaction_assistant(run_id) if found.resubmit is not None else None
        if chain is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "This run has no deductions import error records for the Transaction Assistant.",
            )
        return found, chain

    @app.get("/runs/{dag_id}/{run_id}/transaction-assistant", response_class=HTMLResponse)
    def assistant_page(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep
    ) -> HTMLResponse:
        found, chain = assistant_facts(session, user, dag_id, run_id)
        view = assistant.build_view(chain)
        return HTMLResponse(
            render_forms.assistant_page(
                view,
                root=site_root(request),
                dag_id=dag_id,
                run_id=run_id,
                run_name=found.row.run_name or run_id,
            )
        )

    @app.post("/runs/{dag_id}/{run_id}/transaction-assistant", response_model=None)
    async def assistant_submit(
        request: Request, dag_id: str, run_id: str, user: GetUserDep, session: SessionDep
    ) -> Response:
        from benefits_hub.deductions.rules import deduction_codes

        found, chain = assistant_facts(session, user, dag_id, run_id)
        if not may_trigger(user, records.RESUBMIT_DAG_ID):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not start the Transaction Assistant.")
        view = assistant.build_view(chain)
        submission = assistant.read_form(
            view, await form_of(request), assistant.current_records(chain), deduction_codes()
        )
        if submission.refused or view.all_corrected:
            page = render_forms.assistant_page(
                view, root=site_root(request), dag_id=dag_id, run_id=run_id,
                run_name=found.row.run_name or run_id, refused=submission.refused,
            )  # fmt: skip
            return HTMLResponse(page, status_code=status.HTTP_400_BAD_REQUEST)
        dag_run = records.start_resubmit(
            session, run_id, submission.corrections, user.get_name(), submission.dismissals
        )
        session.commit()
        return see_run(request, records.RESUBMIT_DAG_ID, dag_run.run_id)

    def trigger_form_facts(
        session: Any, user: Any, dag_id: str, rerun_of: str | None, prefill: dict[str, str] | None = None
    ) -> tuple[str, list[trigger.FieldSpec]]:
        dags = _readable(session, user)
        dag = _dag_bag().get_latest_version_of_dag(dag_id, session=session) if dag_id in dags else None
        if dag is None or dag_id in records.STARTED_BY_THE_HUB:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"No integration '{dag_id}' that you may run here."
            )
        values: dict[str, Any] = {}
        if rerun_of:
            old = records.one_run(session, dag_id, rerun_of)
            if old is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"No run '{rerun_of}' of '{dag_id}' to re-run."
                )
            values = records.run_conf(session, dag_id, rerun_of)
            old_name = (old.summary or {}).get("integration_run_name") or values.get("integration_run_name")
            values["integration_run_name"] = trigger.rerun_name(
                str(old_name or dags[dag_id].display_name), records.run_names(session, dag_id)
            )
        params = trigger.dag_params(dag)
        values.update({k: v for k, v in (prefill or {}).items() if k in params})
        name = _display_names(session, {dag_id: dags[dag_id]})[dag_id]
        return name, trigger.form_fields(params, values)

    @app.get("/trigger/{dag_id}", response_class=HTMLResponse)
    def trigger_page(
        request: Request, dag_id: str, user: GetUserDep, session: SessionDep, rerun_of: str | None = None
    ) -> HTMLResponse:
        prefill = {k: v for k, v in request.query_params.items() if k != "rerun_of"}
        name, fields = trigger_form_facts(session, user, dag_id, rerun_of, prefill)
        return HTMLResponse(
            render_forms.trigger_page(
                root=site_root(request),
                dag_id=dag_id,
                integration=name,
                fields=fields,
                paused=records.is_paused(session, dag_id),
                unpause=True,
                rerun_of=rerun_of,
                refused=False,
            )
        )

    @app.post("/trigger/{dag_id}", response_model=None)
    async def trigger_submit(
        request: Request, dag_id: str, user: GetUserDep, session: SessionDep, rerun_of: str | None = None
    ) -> Response:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import ParamValidationError
        from airflow.models.dag import DagModel
        from airflow.utils.types import DagRunTriggeredByType

        name, fields = trigger_form_facts(session, user, dag_id, rerun_of)
        if not may_trigger(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not run this integration.")
        form = await form_of(request)
        paused = records.is_paused(session, dag_id)
        unpause = bool(form.get("_unpause"))
        conf = trigger.check_submission(dag_id, fields, form)
        refused_page = render_forms.trigger_page(
            root=site_root(request), dag_id=dag_id, integration=name, fields=fields,
            paused=paused, unpause=unpause, rerun_of=rerun_of, refused=True,
        )  # fmt: skip
        if conf is None:
            # Refused: no run, and the DAG stays as it was (paused or not).
            return HTMLResponse(refused_page, status_code=status.HTTP_400_BAD_REQUEST)
        try:
            dag_run = trigger_dag(
                dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user.get_name(),
                conf=conf, session=session,
            )  # fmt: skip
        except ParamValidationError:
            session.rollback()
            return HTMLResponse(refused_page, status_code=status.HTTP_400_BAD_REQUEST)
        if paused and unpause:
            model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
            model.is_paused = False
        session.commit()
        return see_run(request, dag_id, dag_run.run_id)

    @app.get("/mappings", response_class=HTMLResponse)
    def mappings_page(request: Request, user: GetUserDep, session: SessionDep) -> HTMLResponse:
        if not _readable(session, user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not see the integrations.")
        return HTMLResponse(render_mappings.mappings_page(records.mapping_tables(), root=site_root(request)))

    # -- the Plan Summary -----------------------------------------------------------------------------
    def may_sync(user: Any) -> bool:
        return all(may_trigger(user, dag_id) for dag_id in plans.SYNC_KINDS.values())

    def plan_summary(session: Any, user: Any) -> tuple[list[plans.PlanRow], str]:
        """Every iJoin plan with what the hub last did for it; and a problem in plain words when iJoin
        is out of reach (the rows then come from the hub's own records)."""
        readable = _readable(session, user)
        if not set(plans.SYNC_KINDS.values()) <= set(readable):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not see the iJoin syncs.")
        problem = ""
        try:
            ijoin_plans = records.ijoin_plans()
        except Exception:  # iJoin down or its connection wrong: say so; show what the hub knows
            ijoin_plans = []
            problem = (
                "iJoin could not be reached just now, so its plan names and drafts are missing below. "
                "Try again in a minute; if it persists, the administrator checks the ijoin_api connection."
            )
        recent = records.recent_runs(session, list(plans.SYNC_KINDS.values()))
        by_dag = {
            dag_id: plans.latest_per_plan(run for run, _ in recent if run.dag_id == dag_id)
            for dag_id in plans.SYNC_KINDS.values()
        }
        plan_syncs, participant_syncs = by_dag[plans.PLAN_SYNC_DAG_ID], by_dag[plans.PARTICIPANT_SYNC_DAG_ID]
        if not ijoin_plans:
            ijoin_plans = [{"plan_id": p} for p in sorted(set(plan_syncs) | set(participant_syncs))]
        runs, conf_of = [run for run, _ in recent], {(run.dag_id, run.run_id): conf for run, conf in recent}
        rows = plans.plan_rows(
            ijoin_plans, plan_syncs, participant_syncs, records.waiting_reviews(session),
            plans.running_per_plan(runs, conf_of), plans.held_per_plan(runs, conf_of),
        )  # fmt: skip
        return rows, problem

    @app.get("/plans", response_class=HTMLResponse)
    def plans_page(request: Request, user: GetUserDep, session: SessionDep) -> HTMLResponse:
        rows, problem = plan_summary(session, user)
        return HTMLResponse(
            render_plans.plans_page(rows, root=site_root(request), may_sync=may_sync(user), problem=problem)
        )

    @app.get("/plans/{plan_id}", response_class=HTMLResponse)
    def plan_page(request: Request, plan_id: str, user: GetUserDep, session: SessionDep) -> HTMLResponse:
        rows, problem = plan_summary(session, user)
        row = next((r for r in rows if r.plan_id == plan_id), None)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"No plan '{plan_id}' in iJoin or in the hub's syncs."
            )
        people: list[dict[str, Any]] = []
        try:
            people = records.ijoin_participants(plan_id)
        except Exception:
            problem = problem or "iJoin could not be reached just now: its participants are missing below."
        refused: list[dict[str, str]] = []
        if row.participant_sync is not None:
            last = records.one_run(session, row.participant_sync.dag_id, row.participant_sync.run_id)
            for path in (last.summary or {}).get("error_files") or [] if last else []:
                refused += [
                    e for e in records.error_rows(path) if e.get("record_key", "").startswith(f"{plan_id}/")
                ]
        return HTMLResponse(
            render_plans.plan_page(
                row,
                plans.participant_rows(people, refused),
                root=site_root(request),
                may_sync=may_sync(user),
                problem=problem,
            )
        )

    @app.post("/plans/{plan_id}/sync", response_model=None)
    async def plan_sync_now(
        request: Request, plan_id: str, user: GetUserDep, session: SessionDep
    ) -> Response:
        """Sync now: the Plan Sync or the Participant Sync for this one plan, started by this person."""
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import ParamValidationError
        from airflow.utils.types import DagRunTriggeredByType

        form = await form_of(request)
        dag_id = plans.SYNC_KINDS.get(form.get("kind", ""))
        if dag_id is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Choose Sync plan now or Sync participants now.")
        if not may_trigger(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not run the iJoin syncs.")
        conf = {"plan_ids": plan_id, "integration_run_name": f"Sync now: plan {plan_id}"}
        root = site_root(request)
        if records.is_paused(session, dag_id):
            # Turning a schedule on is a decision: the trigger form says so and asks (prefilled).
            return RedirectResponse(
                root + urls.trigger_path(dag_id, **conf), status_code=status.HTTP_303_SEE_OTHER
            )
        try:
            trigger_dag(
                dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user.get_name(),
                conf=conf, session=session,
            )  # fmt: skip
        except ParamValidationError:
            session.rollback()
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"'{plan_id}' is not a plan id the iJoin syncs accept: "
                "use the id as the Plan Summary shows it.",
            ) from None
        session.commit()
        return RedirectResponse(root + urls.plans_path(), status_code=status.HTTP_303_SEE_OTHER)

    @app.post("/api/runs/{dag_id}/{run_id}/resubmit", status_code=status.HTTP_201_CREATED)
    def resubmit(
        request: Request,
        dag_id: str,
        run_id: str,
        body: ResubmitRequest,
        user: GetUserDep,
        session: SessionDep,
    ) -> JSONResponse:
        from airflow.exceptions import DagNotFound, ParamValidationError

        found = run_detail(session, user, dag_id, run_id)
        if found.resubmit is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "This run has no deductions import error records for the Transaction Assistant.",
            )
        if not may_trigger(user, records.RESUBMIT_DAG_ID):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not start the Transaction Assistant.")
        try:
            dag_run = records.start_resubmit(
                session, found.resubmit.reference_id, body.corrections, user.get_name(), body.dismissals
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
