#!/usr/bin/env bash
# Debian packages the tests run against: the CNCF distribution registry, skopeo, Chromium for
# the console's browser tests, and PostgreSQL, started, with a role the tests log in as over TCP.
set -euo pipefail
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v chromium >/dev/null || missing+=(chromium)
command -v pg_lsclusters >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The newest installed cluster; the package may or may not have started it (no systemd here).
pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_lsclusters --no-header "$pg_version" main | grep -q online ||
  $sudo_cmd pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
# Debian's pg_hba.conf asks for a scram password on 127.0.0.1: the tests' default URL is
# postgres://ferry:ferry@127.0.0.1:5432/postgres (test/support/postgres.ts). The tests drop
# their databases WITH (FORCE), which must end an autovacuum worker still in one: only members
# of pg_signal_backend may.
if [ "$(PGPASSWORD=ferry psql -h 127.0.0.1 -U ferry -d postgres -tAc "select pg_has_role('pg_signal_backend', 'member')" 2>/dev/null)" != t ]; then
  (cd / && $sudo_cmd runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres) <<'SQL'
SELECT 'CREATE ROLE ferry' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferry') \gexec
ALTER ROLE ferry WITH LOGIN CREATEDB PASSWORD 'ferry';
GRANT pg_signal_backend TO ferry;
SQL
fi

docker-registry --version
skopeo --version
chromium --version
"/usr/lib/postgresql/$pg_version/bin/postgres" --version
