#!/usr/bin/env bash
# The compose file's sandbox service: seed once into /sandbox, start the vendor stand-ins and stay in
# the foreground while they run; SIGTERM (docker compose stop) stops them.
#
# The sandbox serves public demo credentials, so it binds loopback only (it refuses anything else).
# The sandbox-gateway service runs in this container's network namespace and forwards the compose
# network's ports 8000 (PlanSource API), 2222 (SFTP) and 8001 (iJoin API) to the loopback ports below.
# The HCM and recordkeeper are SQLite files in /sandbox, a volume the workers mount at the same path.
set -euo pipefail
dir="${SANDBOX_DIR:-/sandbox}"

hub-sandbox start --dir "$dir" --employees "${SANDBOX_EMPLOYEES:-1000}" --plans "${SANDBOX_PLANS:-6}" \
  --http-port 18000 --sftp-port 18022 --ijoin-port 18001
trap 'hub-sandbox stop --dir "$dir"; exit 0' TERM INT
while hub-sandbox status --dir "$dir" >/dev/null; do
  sleep 5 &
  wait $!
done
echo "sandbox: the servers stopped; see $dir/sandbox.log" >&2
exit 1
