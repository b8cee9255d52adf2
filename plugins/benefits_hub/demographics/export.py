"""PlanSource HCM Demographic Export: HCM employees to PlanSource subscribers.

validate  - params parsed; the window worked out (DESIGN.md section 4); nothing touched yet.
extract   - the HCM's primary-EIN employees in scope, streamed to the staging area (the source file),
            and PlanSource's current record for each of them (looked up one by one for a small scope,
            paged in bulk for a large one).
transform - per employee: SSN by the SSA's rules, codes through the cross-reference tables, subscriber
            id / username / SSN against PlanSource; good employees become the changes to send (and,
            on a full run, census rows); bad ones become error rows.
deliver   - creates and updates (changed fields only) in batches, terminations and rehires; on a full
            run the census file too, to SFTP, atomically (PGP-encrypted when plansource_pgp is set).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any, ClassVar, TypeVar

from benefits_hub import codec
from benefits_hub.breaker import SAMPLE_SIZE, ChangeSet, Share
from benefits_hub.demographics.rules import (
    CENSUS_COLUMNS,
    TERMINATED_STATUSES,
    CrossReferences,
    duplicate_problem,
    fingerprint,
    identity_problems,
    map_subscriber,
    plan_changes,
)
from benefits_hub.integration import Integration, StageRefused, record_error
from benefits_hub.journal import ALREADY_DELIVERED, DeliveryJournal
from benefits_hub.lookup import DiskLookup, OrderedLookup, join_lookup, merge_latest
from benefits_hub.models import ErrorRow, IntegrationType, RunSummary, StagedFile, StageResult
from benefits_hub.params import PlanSourceRunParams
from benefits_hub.pii import mask_field, redact
from benefits_hub.staging import SafeCsvWriter, SafeDictWriter
from benefits_hub.window import RunWindow, compute_window, configured_overlap

# A delta or narrowed run of up to this many employees asks PlanSource for just them (200 per filtered
# list call); a full run, or a bigger one, pages through every subscriber (500 per page): fewer calls.
PER_EMPLOYEE_LOOKUP_LIMIT = 100_000
BATCH_SIZE = 500  # PlanSource's bulk endpoints take at most 500 records
CENSUS_FOLDER = "inbound"
# What PlanSource last received per employee, for qualify_delta: a snapshot that full runs rewrite, and
# one small file per narrower run (a delta) beside it, so an hourly delta writes only what it delivered
# (O(changes), not O(employees)). The snapshot absorbs the change files at the next full run, or when
# they pile up past MAX_FINGERPRINT_CHANGE_FILES.
# Each file is written in employee-number order (ORDERED_SUFFIX), so a transform merges them with the
# HCM rows; an older hub's files (no suffix, in delivery order) are indexed on disk until the next full
# run folds them into an ordered snapshot.
ORDERED_SUFFIX = ".ordered.jsonl"
FINGERPRINTS_STATE = "delivered_fingerprints" + ORDERED_SUFFIX
UNORDERED_FINGERPRINTS = "delivered_fingerprints.jsonl"
FINGERPRINT_CHANGES = "delivered_fingerprints.changes"
MAX_FINGERPRINT_CHANGE_FILES = 200
T = TypeVar("T")
# A Dry Run's preview file (output/preview.csv) and its counts, by the action a real run would take.
PREVIEW_COLUMNS = ("Employee", "Action", "Fields and new values")
# The circuit breaker: the change set by kind (as deliver counts them), in a clerk's words.
CHANGE_KINDS = ("create", "update", "terminate", "rehire")
CHANGE_KIND_WORDS = {
    "create": "New subscribers",
    "update": "Existing subscribers changing (terminations and rehires included)",
    "terminate": "Terminations",
    "rehire": "Rehires",
}
FULL_RUN_ROWS_KEY = "full_run_rows"
PREVIEW_COUNTERS = {
    "create": "would_create",
    "update": "would_update",
    "terminate": "would_terminate",
    "rehire": "would_rehire",
}


class DemographicExport(Integration):
    integration_name = "PlanSource HCM Demographic Export"
    integration_type = IntegrationType.EXPORT
    hcm_conn_id: ClassVar[str] = "hcm_db"
    plansource_conn_id: ClassVar[str] = "plansource_api"
    sftp_conn_id: ClassVar[str] = "plansource_sftp"
    # PlanSource's public key for the census file; no such connection = the census goes unencrypted.
    pgp_conn_id: ClassVar[str] = "plansource_pgp"

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def params(self) -> PlanSourceRunParams:
        return PlanSourceRunParams.parse(self.run.params)

    def _hcm(self) -> Any:
        from benefits_hub.hooks.hcm import HcmHook

        return HcmHook(self.hcm_conn_id)

    def _plansource(self) -> Any:
        from benefits_hub.hooks.plansource import PlanSourceHook

        return PlanSourceHook(self.plansource_conn_id)

    def _window(self) -> RunWindow:
        return RunWindow.from_details(self.run.result("validate").details["window"])

    # -- validate ---------------------------------------------------------------------------------
    def validate(self) -> StageResult:
        params = self.params  # raises ParamError naming the param
        window = compute_window(
            delta=params.delta,
            lookback_days=params.lookback_days,
            # The window ends by the HCM's clock, which stamps its changes, not the worker's.
            run_start=self._hcm().database_time() if params.delta else self.run.run_start,
            watermark=self.watermark(),
            data_interval_start=self.run.data_interval_start,
            overlap=configured_overlap(),
        )
        try:
            CrossReferences.load()
        except (OSError, KeyError) as exc:
            raise StageRefused(f"A cross-reference table cannot be read: {exc}") from None
        scope = "everyone" if not params.include_employees else f"{len(params.include_employees)} person(s)"
        return StageResult(
            stage="validate",
            details={
                "window": window.to_details(),
                "scope": scope,
                "narrowed": bool(params.include_employees),
                "full_run": window.is_full and not params.include_employees,
            },
            warnings=[],
        )

    # -- extract ----------------------------------------------------------------------------------
    def extract(self) -> StageResult:
        window = self._window()
        hcm = self._hcm()
        plansource = self._plansource()
        staging = self.run.staging
        assert staging is not None
        full_run = bool(self.run.result("validate").details["full_run"])
        # A full run pages through all of PlanSource while the HCM is read: the two wait on different
        # servers, so a 1M-employee extract takes about the longer of the two, not their sum. The circuit
        # breaker's count of the whole HCM by status runs beside them too: on an hourly delta over a
        # large HCM it is the longest read of all.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="extract") as pool:
            status_counts = pool.submit(hcm.primary_status_counts)
            listing = None
            if full_run:
                listing = pool.submit(self._stage_plansource, plansource.iter_subscriber_lines())
            hcm_file, errors = self._stage_hcm(hcm, window)
            if listing is not None:
                ps_file = listing.result()
            elif hcm_file.rows <= PER_EMPLOYEE_LOOKUP_LIMIT:
                numbers = (row["person_number"] for row in staging.read_records(hcm_file.manifest))
                lookups = plansource.lookup_many(numbers)
                held = (subscriber for _n, subscriber in lookups if subscriber is not None)
                ps_file = self._stage_plansource((s.get("employee_number"), codec.dumps(s)) for s in held)
            else:
                ps_file = self._stage_plansource(plansource.iter_subscriber_lines())
        self.log_counts(hcm_file.rows, ps_file.rows, window)
        return StageResult(
            stage="extract",
            counters={"records_processed": hcm_file.rows, "error_records": errors.records},
            files={
                "source_hcm": hcm_file.manifest,
                "source_plansource": ps_file.manifest,
                "errors": errors.manifest,
            },
            # The whole HCM's employees by status: the circuit breaker's population, whatever the scope.
            details={"status_counts": status_counts.result()},
        )

    def _stage_hcm(self, hcm: Any, window: RunWindow) -> tuple[Any, Any]:
        """The HCM's employees in scope to the staging area; those it cannot send, as error rows."""
        params = self.params
        staging = self.run.staging
        assert staging is not None
        with self.run.error_file("extract") as errors:
            if params.include_employees:
                known = hcm.known_person_numbers(params.include_employees)
                for number in params.include_employees:
                    if number not in known:
                        record_error(
                            errors,
                            ErrorRow(
                                record_key=number,
                                field="include_employees",
                                value=number,
                                rule="hcm:unknown_person",
                                reason=f"Person number {number} is not in the HCM. Check Include Employees.",
                            ),
                            "extract",
                        )
            for number in hcm.without_primary_employment(
                changed_since=window.start,
                changed_before=window.end if window.start else None,
                person_numbers=params.include_employees,
            ):
                record_error(
                    errors,
                    ErrorRow(
                        record_key=number,
                        field="employment",
                        value="",
                        rule="hcm:no_primary_employment",
                        reason=(
                            "This person has no primary employment in the HCM, so there is nothing to send: "
                            "mark one of their employments primary (or add one) in the HCM; the next run "
                            "sends them."
                        ),
                    ),
                    "extract",
                )
            with staging.records("source/hcm_employees.jsonl") as hcm_file:
                hcm_file.write_many(
                    hcm.iter_primary_employees(
                        changed_since=window.start,
                        changed_before=window.end if window.start else None,
                        person_numbers=params.include_employees,
                    )
                )
        return hcm_file, errors

    def _stage_plansource(self, subscribers: Iterable[tuple[Any, bytes]]) -> Any:
        """Subscribers as encoded lines (the listing's as PlanSource sent them: the transform decodes each
        once), checked to ascend by employee number as they are written, for the transform's merge join."""
        staging = self.run.staging
        assert staging is not None
        with staging.records("source/plansource_subscribers.jsonl", order_key="employee_number") as ps_file:
            ps_file.write_lines(subscribers)
        return ps_file

    def log_counts(self, hcm_rows: int, plansource_rows: int, window: RunWindow) -> None:
        self.run.log.info(
            "Window %s -> %s (%s): %d HCM employee(s) in scope, %d PlanSource record(s) to compare",
            window.start,
            window.end,
            window.basis,
            hcm_rows,
            plansource_rows,
        )

    # -- transform --------------------------------------------------------------------------------
    def _fingerprint_change_files(self) -> list[Any]:
        staging = self.run.staging
        assert staging is not None
        folder = staging.state_root / FINGERPRINT_CHANGES
        # Names start with the run's UTC start time: sorted, they are in the order the runs happened.
        return sorted(folder.iterdir(), key=lambda p: p.name) if folder.exists() else []

    def _fingerprint_files(self) -> list[Any]:
        """The snapshot and the change files after it, oldest first (a later file's fingerprint wins)."""
        staging = self.run.staging
        assert staging is not None
        snapshots = [staging.state_root / name for name in (UNORDERED_FINGERPRINTS, FINGERPRINTS_STATE)]
        return [path for path in snapshots if path.exists()] + self._fingerprint_change_files()

    @staticmethod
    def _fingerprints_ordered(files: list[Any]) -> bool:
        """Whether every file was written in employee-number order (this hub's; an older hub's was not)."""
        return all(path.name.endswith(ORDERED_SUFFIX) for path in files)

    def _fingerprints_in(self, path: Any) -> Iterator[tuple[str, str]]:
        staging = self.run.staging
        assert staging is not None
        for record in staging.read_records({"path": str(path)}):
            yield record["n"], record["f"]

    def _fingerprint_lookup(self) -> Any:
        """What PlanSource last received from this export per employee (qualify_delta): the files merged,
        or, when one is an older hub's (not in order), all of them indexed on disk, oldest first."""
        if not self.params.qualify_delta:
            return OrderedLookup(lambda: ())
        files = self._fingerprint_files()
        if self._fingerprints_ordered(files):
            return OrderedLookup(lambda: merge_latest([self._fingerprints_in(path) for path in files]))
        return join_lookup(
            lambda: itertools.chain.from_iterable(self._fingerprints_in(path) for path in files),
            ordered=False,
        )

    def transform(self) -> StageResult:
        params = self.params
        extract = self.run.result("extract")
        full_run = bool(self.run.result("validate").details["full_run"])
        xref = CrossReferences.load()
        staging = self.run.staging
        assert staging is not None
        counters = {"records_skipped": 0, "employees_processed": 0, "not_exported_status": 0}
        kinds = dict.fromkeys(CHANGE_KINDS, 0)  # what deliver would do, for the circuit breaker
        sample: list[dict[str, str]] = []
        # Merge joins: the HCM rows, PlanSource's records and the fingerprints all come ordered by
        # employee number (byte order). A side not known to be ordered is indexed on disk instead.
        source_plansource = extract.files["source_plansource"]
        with (
            join_lookup(
                lambda: ((r["employee_number"], r) for r in staging.read_records(source_plansource)),
                ordered=source_plansource.ordered_by == "employee_number",
            ) as plansource,
            self._fingerprint_lookup() as previous,
            self.run.error_file("transform") as errors,
            staging.records("changes/subscriber_changes.jsonl") as changes,
            staging.records("changes/in_sync.jsonl", order_key="n") as in_sync,
            staging.text_file("output/census.csv") as (census_stream, census_path),
        ):
            census = SafeDictWriter(census_stream, fieldnames=CENSUS_COLUMNS, extrasaction="ignore")
            census.writeheader()
            census_rows = 0
            # Rows come ordered by person number, so an employee the HCM gives twice is adjacent.
            by_person = itertools.groupby(
                staging.read_records(extract.files["source_hcm"]), key=lambda row: row["person_number"]
            )
            for person_number, rows in by_person:
                employee = next(rows)
                repeats = sum(1 for _ in rows)
                if repeats:
                    record_error(errors, duplicate_problem(str(person_number), repeats + 1), "transform")
                    continue
                mapped = map_subscriber(employee, xref)
                current = plansource.get(mapped.person_number)
                problems = mapped.errors + identity_problems(
                    mapped.person_number,
                    employee.get("plansource_subscriber_id"),
                    employee.get("plansource_username"),
                    mapped.fields["ssn"],
                    current,
                )
                if problems:
                    for problem in problems:
                        record_error(errors, problem, "transform")
                    continue
                if not mapped.exported_status:
                    counters["not_exported_status"] += 1
                    counters["records_skipped"] += 1
                    continue
                counters["employees_processed"] += 1
                desired = mapped.fields
                if full_run:
                    census.writerow(desired)
                    census_rows += 1
                digest = fingerprint(desired)
                if params.qualify_delta and previous.get(mapped.person_number) == digest:
                    counters["records_skipped"] += 1
                    continue
                change = plan_changes(desired, current)
                if change is None:
                    # PlanSource already holds exactly this: as good as delivered, for qualify_delta.
                    in_sync.write({"n": mapped.person_number, "f": digest})
                    counters["records_skipped"] += 1
                    continue
                changes.write(change.as_record(digest))
                actions = change.actions
                kinds["create" if "create" in actions else "update"] += 1  # counted as deliver counts
                for action in ("terminate", "rehire"):
                    kinds[action] += action in actions
                if len(sample) < SAMPLE_SIZE:
                    sample.append({"Employee": change.employee_number, "Change": " + ".join(actions),
                                   "Fields": ", ".join(sorted(change.fields))})  # fmt: skip
        if getattr(plansource, "fell_back", False) or getattr(previous, "fell_back", False):
            self.run.log.info(
                "The HCM's employees did not come in employee-number (byte) order: joined through a "
                'disk index instead (slower, same result). On PostgreSQL the hub sorts with COLLATE "C".'
            )
        files = {"changes": changes.manifest, "in_sync": in_sync.manifest, "errors": errors.manifest}
        if full_run:
            files["census"] = StagedFile(path=str(census_path), rows=census_rows, sha256="")
        counters["error_records"] = errors.records
        counters["changes_to_send"] = changes.rows
        return StageResult(
            stage="transform",
            counters=counters,
            files=files,
            details={"change_kinds": kinds, "change_sample": sample},
        )

    # -- the circuit breaker (benefits_hub.breaker) ----------------------------------------------------
    def change_set(self) -> ChangeSet:
        """Terminations among the active employees, existing subscribers changing among all employees,
        and on a full run the employee count against the last successful full run's."""
        transform = self.run.result("transform")
        kinds = {kind: int(n) for kind, n in transform.details.get("change_kinds", {}).items()}
        by_status = self.run.result("extract").details.get("status_counts") or {}
        xref = CrossReferences.load()
        active = sum(
            n for code, n in by_status.items()
            if xref.employee_status.lookup(code) not in TERMINATED_STATUSES
        )  # fmt: skip
        # Before this run, the employees it terminates were active and those it rehires were not.
        active_before = active + kinds.get("terminate", 0) - kinds.get("rehire", 0)
        shares = {
            "hold_terminations_pct": Share(part=kinds.get("terminate", 0), whole=active_before),
            "hold_changing_pct": Share(part=kinds.get("update", 0), whole=sum(by_status.values())),
        }
        rows_now = self.run.result("extract").counters.get("records_processed", 0)
        previous = self.run.state_get(FULL_RUN_ROWS_KEY)
        if self.run.result("validate").details.get("full_run") and previous:
            shares["hold_row_drop_pct"] = Share(
                part=max(int(previous) - rows_now, 0), whole=int(previous), now=rows_now
            )
        return ChangeSet(
            counts={CHANGE_KIND_WORDS[kind]: n for kind, n in kinds.items()},
            shares=shares,
            sample=transform.details.get("change_sample") or [],
        )

    # -- deliver ----------------------------------------------------------------------------------
    def deliver(self) -> StageResult:
        if self.is_dry_run:
            return self.preview()
        transform = self.run.result("transform")
        staging = self.run.staging
        assert staging is not None
        plansource = self._plansource()
        counters = dict.fromkeys(
            ("records_created", "records_updated", "terminations", "rehires", ALREADY_DELIVERED), 0
        )
        delivered: list[tuple[str, str]] = []
        with (
            self.run.error_file("deliver") as errors,
            staging.text_file("output/delivered.csv") as (output_stream, output_path),
        ):
            output = SafeCsvWriter(output_stream)
            output.writerow(["employee_number", "actions", "fields_sent", "result"])
            output_rows = 0
            # A retried or cleared deliver of this run replays what PlanSource already acknowledged.
            journal = DeliveryJournal(staging)
            sender = _BatchSender(plansource, errors, counters, journal)
            for change in staging.read_records(transform.files["changes"]):
                for number, actions, fields, ok in sender.add(change):
                    output.writerow([number, "+".join(actions), " ".join(sorted(fields)), ok])
                    output_rows += 1
            for number, actions, fields, ok in sender.flush():
                output.writerow([number, "+".join(actions), " ".join(sorted(fields)), ok])
                output_rows += 1
            delivered = sender.delivered_fingerprints
        full_run = bool(self.run.result("validate").details["full_run"])
        self._save_fingerprints(delivered, transform.files["in_sync"], full_run)
        census_file = transform.files.get("census")
        remote_census = None
        if census_file is not None:
            census_path = census_file.path
            remote_census = journal.once(
                "census", _file_digest(census_path), lambda: self._upload_census(census_path)
            )
        journal.log_replays(self.run.log, "PlanSource delivery(ies)")
        files = {
            "output": StagedFile(path=str(output_path), rows=output_rows, sha256=""),
            "errors": errors.manifest,
        }
        if remote_census and census_file is not None:  # the Run Summary lists every file delivered
            files["output#census"] = census_file
        return StageResult(
            stage="deliver",
            counters={**counters, "error_records": errors.records},
            files=files,
            details={"census_file": remote_census},
        )

    def preview(self) -> StageResult:
        """Dry Run: what deliver would send, one row per employee with the fields and their new values
        (SSNs and birth dates masked), and counts by action. Nothing is sent and no state is written, so
        the next real run sends exactly this, unless the HCM or PlanSource changed in between."""
        transform = self.run.result("transform")
        staging = self.run.staging
        assert staging is not None
        counters = dict.fromkeys(PREVIEW_COUNTERS.values(), 0)
        with staging.text_file("output/preview.csv") as (stream, path):
            preview = SafeCsvWriter(stream)
            preview.writerow(PREVIEW_COLUMNS)
            rows = 0
            for change in staging.read_records(transform.files["changes"]):
                actions, fields = change["actions"], change["fields"]
                # Counted as deliver counts them: every sent change to an existing subscriber (its
                # termination or rehire too) is an update; so would_* equals the next run's records_*.
                counters["would_create" if "create" in actions else "would_update"] += 1
                for action in set(actions) & {"terminate", "rehire"}:
                    counters[PREVIEW_COUNTERS[action]] += 1
                values = "; ".join(f"{name}: {mask_field(name, fields[name])}" for name in sorted(fields))
                preview.writerow([change["employee_number"], " + ".join(actions), values])
                rows += 1
        census = transform.files.get("census")
        if census is not None:
            counters["census_rows_not_uploaded"] = census.rows
        self.run.log.info("Dry run: %d employee(s) would be sent to PlanSource; nothing was sent", rows)
        return self.preview_result(counters, path, rows)

    def _upload_census(self, staged_path: str) -> str:
        """The census to SFTP, atomically; PGP-encrypted (``.csv.pgp``) when ``plansource_pgp`` says so."""
        from paramiko import AuthenticationException, BadHostKeyException, SSHException

        from benefits_hub.hooks.reach import retry_until_reachable
        from benefits_hub.hooks.sftp import VendorSftpHook
        from benefits_hub.pgp import ENCRYPTED_SUFFIX, VendorPgp
        from benefits_hub.staging import StagingArea

        stamp = self.run.run_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        remote = f"{CENSUS_FOLDER}/census_{stamp}.csv"
        # One login per try: a refused login is never retried (repeated failed logins can lock the
        # vendor account); a connection that fails for other reasons is what the task's retries are for.
        hook = VendorSftpHook(ssh_conn_id=self.sftp_conn_id, conn_retry_attempts=1)
        pgp = VendorPgp.from_connection(self.pgp_conn_id)
        if pgp is not None and pgp.encrypts:
            remote += ENCRYPTED_SUFFIX

        def send() -> tuple[int, str | None]:  # from the start of the staged file on every try
            with StagingArea.open_binary(staged_path) as source:
                if pgp is None or not pgp.encrypts:
                    return hook.upload_atomic(source, remote), None
                with pgp.encrypted(source) as (ciphertext, fingerprint):
                    return hook.upload_atomic(ciphertext, remote), fingerprint

        try:
            size, fingerprint = retry_until_reachable(
                send, unreachable=_sftp_unreachable(), vendor="PlanSource's SFTP server",
                conn_id=self.sftp_conn_id, address=f"{hook.remote_host}:{hook.port}", log=self.run.log,
            )  # fmt: skip
        except AuthenticationException:
            raise StageRefused(
                f"PlanSource's SFTP server refused the login of connection '{self.sftp_conn_id}': check "
                "its login and password or key. The census file was not sent; the subscriber changes "
                "were. Clear the deliver task once the connection is fixed (not retried by itself: "
                "repeated failed logins can lock the account)."
            ) from None
        except BadHostKeyException:
            raise StageRefused(host_key_refused(self.sftp_conn_id, hook.remote_host)) from None
        except SSHException as exc:  # AuthenticationException is one too: caught above
            if "host key" not in str(exc).lower() and "known_hosts" not in str(exc).lower():
                raise  # a dropped connection: the task's retries are for that
            raise StageRefused(host_key_refused(self.sftp_conn_id, hook.remote_host)) from None
        if fingerprint is None:
            self.run.log.info("Census file delivered to SFTP %s (%d bytes)", remote, size)
        else:
            self.run.log.info(
                "Census file delivered to SFTP %s (%d bytes, PGP-encrypted to key %s)",
                remote,
                size,
                fingerprint,
            )
        return remote

    def _save_fingerprints(
        self, delivered: list[tuple[str, str]], in_sync: StagedFile, full_run: bool
    ) -> None:
        """Record this run's delivered fingerprints where qualify_delta will compare with them: every file
        in employee-number order, so that the next transform merges them rather than indexing them."""
        staging = self.run.staging
        assert staging is not None
        files = self._fingerprint_files()
        change_files = self._fingerprint_change_files()
        delivered.sort()
        ordered = in_sync.ordered_by == "n"
        if not full_run and len(change_files) < MAX_FINGERPRINT_CHANGE_FILES:
            stamp = self.run.run_start.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{FINGERPRINT_CHANGES}/{stamp}-{staging.root.name}{ORDERED_SUFFIX}"
            self._write_fingerprints(name, [self._fingerprints_in(in_sync.path), delivered], ordered=ordered)
            return
        if not delivered and not in_sync.rows and not change_files:
            return
        sources = [*map(self._fingerprints_in, files), self._fingerprints_in(in_sync.path), delivered]
        new_path = self._write_fingerprints(
            FINGERPRINTS_STATE + ".new", sources, ordered=ordered and self._fingerprints_ordered(files)
        )
        new_path.rename(staging.state_root / FINGERPRINTS_STATE)
        for folded in [*change_files, staging.state_root / UNORDERED_FINGERPRINTS]:  # now in the snapshot
            if folded.exists():
                folded.unlink()

    def _write_fingerprints(
        self, name: str, sources: list[Iterable[tuple[str, str]]], *, ordered: bool
    ) -> Any:
        """Write each employee's latest fingerprint from ``sources`` (oldest first) to the state file
        ``name`` in employee-number order: merged when every source ascends, through a disk index when
        one may not. Returns the path."""
        staging = self.run.staging
        assert staging is not None
        with staging.binary_file(name, state=True) as (stream, path):
            if ordered:
                for number, digest in merge_latest(sources):
                    stream.write(codec.dumps_line({"n": number, "f": digest}))
                return path
            with DiskLookup() as index:
                index.load(itertools.chain.from_iterable(sources))
                for number, digest in index.items():
                    stream.write(codec.dumps_line({"n": number, "f": digest}))
        return path

    # -- after the summary ------------------------------------------------------------------------
    def after_summary(self, summary: RunSummary) -> None:
        if not summary.status.fails_the_run:  # a failed run never moves the window
            self.advance_watermark()
        validate = self.run.results.get("validate")
        delivered = "deliver" in self.run.results and not self.is_dry_run
        if delivered and validate is not None and validate.details.get("full_run"):
            # What the next full run's count is held against (the circuit breaker's row drop).
            rows = self.run.result("extract").counters.get("records_processed", 0)
            self.run.state_set(FULL_RUN_ROWS_KEY, str(rows))


def _file_digest(path: str) -> str:
    """sha256 of a staged file, streamed (a census can be hundreds of megabytes)."""
    import hashlib

    from benefits_hub.staging import StagingArea

    digest = hashlib.sha256()
    with StagingArea.open_binary(path) as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _answers(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PlanSource's per-record answers, reduced to what the journal may keep (no record values)."""
    kept = ("employee_number", "id", "status", "error_code")
    return [
        {**{k: r.get(k) for k in kept}, "message": redact(str(r["message"])) if r.get("message") else None}
        for r in results
    ]


def _acknowledged(answer: Any) -> bool:
    """A single call answers with the whole subscriber, SSN included: the journal keeps only that
    PlanSource acknowledged it."""
    return True


class _BatchSender:
    """Sends subscriber changes in PlanSource's batch sizes, in the order each employee needs.

    Every call goes through the run's delivery journal: a batch PlanSource acknowledged in an earlier
    attempt of this run is replayed from there, never sent again.
    """

    def __init__(
        self,
        plansource: Any,
        errors: Any,
        counters: dict[str, int],
        journal: DeliveryJournal | None = None,
    ) -> None:
        self.plansource = plansource
        self.errors = errors
        self.counters = counters
        self.journal = journal
        self.creates: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.delivered_fingerprints: list[tuple[str, str]] = []

    def _once(self, kind: str, payload: Any, send: Callable[[], T]) -> T:
        return send() if self.journal is None else self.journal.once(kind, payload, send)

    def _tally(self, counter: str) -> None:
        """Count what this attempt did; a record an earlier attempt of the run delivered counts once,
        as already delivered (its rehire or termination is not counted again on top)."""
        replayed = self.journal is not None and self.journal.replaying
        if not replayed:
            self.counters[counter] += 1
        elif counter in ("records_created", "records_updated"):
            self.counters[ALREADY_DELIVERED] += 1

    def _fail(self, number: str, action: str, message: str) -> None:
        record_error(
            self.errors,
            ErrorRow(
                record_key=number,
                field=action,
                value="",
                rule=f"plansource:{action}",
                reason=f"PlanSource refused the {action}: {redact(message)}",
            ),
            "deliver",
        )

    def add(self, change: dict[str, Any]) -> list[tuple[str, list[str], list[str], str]]:
        number = change["employee_number"]
        actions = change["actions"]
        fields = change["fields"]
        done: list[tuple[str, list[str], list[str], str]] = []
        if "create" in actions:
            self.creates.append(change)
            if len(self.creates) >= BATCH_SIZE:
                done += self._flush_creates()
            return done
        if "rehire" in actions:
            hire_date = fields.get("hire_date")
            try:
                self._once(
                    "rehire",
                    {"employee_number": number, "hire_date": hire_date},
                    lambda: _acknowledged(self.plansource.rehire_subscriber(number, hire_date)),
                )
                self._tally("rehires")
            except Exception as exc:
                if getattr(exc, "status", 500) >= 500:
                    raise
                self._fail(number, "rehire", getattr(exc, "vendor_message", str(exc)))
                return [(number, actions, [], "failed")]
        if "update" in actions:
            update_fields = {
                k: v
                for k, v in fields.items()
                if k not in ("termination_date", "termination_reason", "is_voluntary_termination")
            }
            self.updates.append({"change": change, "payload": {"employee_number": number, **update_fields}})
            if len(self.updates) >= BATCH_SIZE:
                done += self._flush_updates()
            return done
        done.append(self._finish(change))
        return done

    def _finish(self, change: dict[str, Any]) -> tuple[str, list[str], list[str], str]:
        number = change["employee_number"]
        fields = change["fields"]
        if "terminate" in change["actions"]:
            termination = {
                "termination_date": fields.get("termination_date"),
                "termination_reason": fields.get("termination_reason"),
                "is_voluntary_termination": fields.get("is_voluntary_termination"),
            }
            try:
                self._once(
                    "terminate",
                    {"employee_number": number, **termination},
                    lambda: _acknowledged(self.plansource.terminate_subscriber(number, termination)),
                )
                self._tally("terminations")
            except Exception as exc:
                if getattr(exc, "status", 500) >= 500:
                    raise
                self._fail(number, "terminate", getattr(exc, "vendor_message", str(exc)))
                return (number, change["actions"], list(fields), "failed")
        self._tally("records_updated")
        self.delivered_fingerprints.append((number, change["fingerprint"]))
        return (number, change["actions"], list(fields), "sent")

    def _flush_creates(self) -> list[tuple[str, list[str], list[str], str]]:
        batch, self.creates = self.creates, []
        if not batch:
            return []
        subscribers = [c["fields"] for c in batch]
        results = self._once(
            "create", subscribers, lambda: _answers(self.plansource.create_subscribers(subscribers))
        )
        by_number = {r.get("employee_number"): r for r in results}
        done = []
        for change in batch:
            number = change["employee_number"]
            result = by_number.get(number, {"status": "failed", "message": "no answer for this record"})
            if result.get("status") == "created":
                self._tally("records_created")
                self.delivered_fingerprints.append((number, change["fingerprint"]))
                done.append((number, change["actions"], list(change["fields"]), "sent"))
            elif result.get("error_code") == "conflict" and self.plansource.get_subscriber(number):
                # A retried deliver: this employee was created by the attempt that failed later on.
                self.counters[ALREADY_DELIVERED] += 1
                self.delivered_fingerprints.append((number, change["fingerprint"]))
                done.append((number, change["actions"], list(change["fields"]), "already in PlanSource"))
            else:
                self._fail(number, "create", str(result.get("message") or "rejected"))
                done.append((number, change["actions"], list(change["fields"]), "failed"))
        return done

    def _flush_updates(self) -> list[tuple[str, list[str], list[str], str]]:
        batch, self.updates = self.updates, []
        if not batch:
            return []
        changes = [u["payload"] for u in batch]
        results = self._once("update", changes, lambda: _answers(self.plansource.update_subscribers(changes)))
        by_number = {r.get("employee_number"): r for r in results}
        done = []
        for item in batch:
            change = item["change"]
            number = change["employee_number"]
            result = by_number.get(number, {"status": "failed", "message": "no answer for this record"})
            if result.get("status") == "updated":
                done.append(self._finish(change))
            else:
                self._fail(number, "update", str(result.get("message") or "rejected"))
                done.append((number, change["actions"], list(change["fields"]), "failed"))
        return done

    def flush(self) -> list[tuple[str, list[str], list[str], str]]:
        return self._flush_creates() + self._flush_updates()


def _sftp_unreachable() -> tuple[type[BaseException], ...]:
    import socket

    from paramiko.ssh_exception import NoValidConnectionsError

    return (NoValidConnectionsError, ConnectionRefusedError, socket.timeout, socket.gaierror)


def host_key_refused(conn_id: str, host: str | None) -> str:
    """Why an SFTP upload stopped at the server's host key, and how to fix it (never retried: a key
    that does not match is a server the hub must not send PII to, or a connection to correct)."""
    return (
        f"PlanSource's SFTP server at {host or 'the configured host'} did not show the host key that "
        f"connection '{conn_id}' names in its host_key extra, so nothing was sent to it. If the vendor "
        f"changed its key, confirm the new one with them (e.g. `ssh-keyscan -t ed25519 {host or '<host>'}`"
        ", checked against what they tell you) and put it in the host_key extra; then clear the deliver "
        "task. The subscriber changes were sent; the census file was not."
    )
