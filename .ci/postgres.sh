#!/usr/bin/env bash
# Installs (if needed) and starts a local PostgreSQL from Debian's packages for the destination
# tests, with a role and database `cgsync`. Prints the DSN to use on stdout.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 && break
    sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='cgsync'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE cgsync LOGIN PASSWORD 'cgsync'\"" >&2
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='cgsync'\"" | grep -q 1 \
    || su postgres -c "createdb -O cgsync cgsync" >&2
echo "postgresql://cgsync:cgsync@127.0.0.1:5432/cgsync"
