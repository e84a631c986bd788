#!/usr/bin/env bash
# Run cidgate locally: start the private PostgreSQL cluster `dev`, build the
# release binary, migrate, create demo data (prints a token and a curl line),
# then serve. CIDGATE_PG_PORT picks the database port (default 25432);
# CIDGATE_LISTEN, if set, is passed through to the server untouched.
# The cluster keeps running afterwards; stop it with: deploy/local/pg.sh stop dev
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

port=${CIDGATE_PG_PORT:-25432}
url=$(deploy/local/pg.sh start dev "$port")

cargo build --release --bin cidgate
bin=${CARGO_TARGET_DIR:-target}/release/cidgate

export DATABASE_URL=$url
"$bin" migrate
"$bin" demo

echo "run.sh: serving with DATABASE_URL=$DATABASE_URL${CIDGATE_LISTEN:+ CIDGATE_LISTEN=$CIDGATE_LISTEN}" >&2
echo "run.sh: the PostgreSQL cluster 'dev' keeps running after the server exits; stop it with: deploy/local/pg.sh stop dev" >&2
exec "$bin" serve
