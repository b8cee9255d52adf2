"""One run of an integration at a time, whether it runs on its own or as a member of an integration set.

Each integration DAG and each set DAG has ``max_active_runs=1``, so Airflow already keeps two runs of
one DAG apart. A set runs its members inline, though, so a set and a standalone run of one of its members
are two DAGs: both could send the same changes at once, or overwrite each other's watermark. The
``validate`` stage therefore refuses while a *competing* DAG has a running run: for a standalone run,
every set that contains it; for a set's member, the member's own DAG.

Why this is safe without a lock: a DAG run is ``running`` for its whole life, and each run checks the
other only after it is itself running. Two runs starting together both see each other and both refuse
(nobody runs twice); never do both go on. With ``max_active_runs=1`` a competing DAG has at most one
running run, so naming the DAG names the run that holds the integration.
"""

from __future__ import annotations

# Which integrations each set runs (a DAG integrity test checks this against the set DAGs' members).
INTEGRATION_SETS: dict[str, tuple[str, ...]] = {
    "plansource_benefits_set": ("plansource_hcm_demographic_export", "plansource_deductions_import"),
}


def competitors(integration_dag_id: str, own_dag_id: str) -> list[str]:
    """The DAGs whose running run would overlap a run of ``integration_dag_id`` started by ``own_dag_id``
    (the integration's own DAG, or a set that contains it)."""
    dags = [integration_dag_id] + [
        s for s, members in INTEGRATION_SETS.items() if integration_dag_id in members
    ]
    return [d for d in dags if d != own_dag_id]


def overlap_refusal(integration_name: str, holder_dag_id: str, holder_name: str, activity_url: str) -> str:
    return (
        f"{holder_name} is running, and it runs the {integration_name} too: two runs at once could send the "
        f"same changes twice. This run did nothing. Run it again once that run has ended (Activity Monitor: "
        f"{activity_url}; DAG {holder_dag_id})."
    )


def running_competitor(integration_dag_id: str, own_dag_id: str) -> str | None:
    """The first competing DAG with a running run, asked of Airflow through the Task SDK."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    for dag_id in competitors(integration_dag_id, own_dag_id):
        if RuntimeTaskInstance.get_dr_count(dag_id=dag_id, states=["running"]):
            return dag_id
    return None
