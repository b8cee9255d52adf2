#!/usr/bin/env bash
# One-shot set-up of a hub cluster, run before any other Airflow component starts: the metadata
# schema, the vendor pools and the staging bucket. Safe to run again (every step is idempotent).
#
# The compose file's airflow-init service runs it, and tests/topology/test_celery_cluster.py runs the
# same script natively, so the two topologies are set up the same way. docs/production.md explains
# each step and the variables below.
set -euo pipefail

echo "airflow-init: migrating the metadata database"
airflow db migrate

# Pools cap the concurrent calls to each vendor's API, whatever the number of workers or runs.
echo "airflow-init: pools"
airflow pools set plansource_api "${HUB_PLANSOURCE_API_SLOTS:-4}" "PlanSource Admin API: concurrent calls"
airflow pools set ijoin_api "${HUB_IJOIN_API_SLOTS:-4}" "iJoin API: concurrent calls"

# The staging area's root: for s3:// this creates the bucket when it is missing.
echo "airflow-init: staging area"
python - <<'PY'
from airflow.sdk import ObjectStoragePath

from benefits_hub.staging import staging_base_url, staging_conn_id

base = ObjectStoragePath(staging_base_url(), conn_id=staging_conn_id())
base.mkdir(parents=True, exist_ok=True)
print(f"airflow-init: staging at {base.protocol}://{base.path}")
PY
echo "airflow-init: done"
