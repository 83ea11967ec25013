#!/usr/bin/env bash
# The cloud's tests run against a real PostgreSQL server on 127.0.0.1:5432 (trust auth, database
# `test`). Start it when it is down; fail loudly when it cannot be started.
set -euo pipefail
host=${FORECOURT_TEST_PG_HOST:-127.0.0.1}
port=${FORECOURT_TEST_PG_PORT:-5432}
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  exit 0
fi
echo "ensure-postgres: PostgreSQL is down on $host:$port, starting it"
if [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
for _ in $(seq 1 60); do
  pg_isready -q -h "$host" -p "$port" 2>/dev/null && exit 0
  sleep 0.5
done
echo "ensure-postgres: FATAL: PostgreSQL did not come up on $host:$port" >&2
exit 1
