#!/usr/bin/env bash
# How fast a full snapshot replaces a tenant's mirror (`cidgate import --replace`).
#
#   deploy/bench/snapshot.sh
#
# Seeds 1,000,000 contacts with `cidgate import` (timed too, as the bulk rate to compare
# with), then replaces them with a snapshot of 1,000,000 rows: 800,000 unchanged,
# 100,000 changed (new name and number), 100,000 new; the other 100,000 seeded contacts
# are missing from it and deleted. A gateway (`cidgate serve`) runs meanwhile, so the
# snapshot's notifications are heard and handled as in production; before the snapshot
# it caches the answers for a contact that will be deleted and one that will change,
# and the script times how long after the commit it answers the new mirror. Prints the
# figures as Markdown and writes them to deploy/bench/results/snapshot.md.
#
# Uses the private PostgreSQL cluster `snapshotbench` (deploy/local/pg.sh, default
# durability, as deploy/bench/run.sh) on port SNAPSHOT_BENCH_PG_PORT (default 25439),
# recreated on every run, stopped and dropped on exit. SNAPSHOT_BENCH_PROFILE=debug
# uses the debug build (default release).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
prog=bench/snapshot.sh
contacts=1000000
pg_port=${SNAPSHOT_BENCH_PG_PORT:-25439}
gw_port=${SNAPSHOT_BENCH_GW_PORT:-18099}
profile=${SNAPSHOT_BENCH_PROFILE:-release}
cluster=snapshotbench
out=deploy/bench/results/snapshot.md
work=$(mktemp -d)
gw_pid=

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
cleanup() {
	if [[ -n $gw_pid ]]; then
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	deploy/local/pg.sh stop "$cluster" >/dev/null 2>&1 || true
	rm -rf "${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/$cluster" "$work"
}
trap cleanup EXIT
for tool in curl awk; do
	command -v "$tool" >/dev/null || die "$tool is missing"
done
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

if [[ $profile == release ]]; then
	cargo build --release --bin cidgate >&2
else
	cargo build --bin cidgate >&2
fi
cidgate=$root/target/$profile/cidgate
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

admin_url=$(deploy/local/pg.sh start "$cluster" "$pg_port")
psql_bin=$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
psql() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$admin_url" -c 'DROP DATABASE IF EXISTS cidgate_snapshot WITH (FORCE)' -c 'CREATE DATABASE cidgate_snapshot'
export DATABASE_URL=${admin_url%/postgres}/cidgate_snapshot
export RUST_LOG=warn
"$cidgate" migrate >&2
"$cidgate" tenant create bench --region RO >/dev/null
lookup_token=$("$cidgate" token create --tenant bench --scope lookup)

# Seed: contact i has 0720 + i (6 digits). Snapshot: i % 10 == 0 missing, i % 10 == 1
# changed (0721 + i), the rest unchanged, and 100,000 new ones (0723 + n).
awk -v n="$contacts" 'BEGIN {
	print "id,name,phones"
	for (i = 1; i <= n; i++) printf "%d,Contact %d,0720%06d\n", i, i, i % 1000000
}' >"$work/seed.csv"
awk -v n="$contacts" 'BEGIN {
	print "id,name,phones"
	for (i = 1; i <= n; i++) {
		if (i % 10 == 0) continue
		if (i % 10 == 1) printf "%d,Changed %d,0721%06d\n", i, i, i % 1000000
		else printf "%d,Contact %d,0720%06d\n", i, i, i % 1000000
	}
	for (j = 1; j <= n / 10; j++) printf "%d,New %d,0723%06d\n", n + j, j, j
}' >"$work/snapshot.csv"
snapshot_rows=$(($(wc -l <"$work/snapshot.csv") - 1))

say "importing $contacts contacts"
t0=$(now)
import_out=$("$cidgate" import --tenant bench "$work/seed.csv")
import_secs=$(since "$t0")
say "$import_out"
psql "$DATABASE_URL" -c 'VACUUM ANALYZE'

CIDGATE_LISTEN=127.0.0.1:$gw_port "$cidgate" serve >"$work/serve.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 600); do
	curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null || die "the gateway did not start: $(tail -5 "$work/serve.log")"
name_of() { # number: the answer's name, or null
	curl -fsS "http://127.0.0.1:$gw_port/api/lookup?telephone=$1&token=$lookup_token" |
		grep -o '"name":[^,]*' | cut -d: -f2
}
# Cached before the snapshot: a contact that goes, one that changes its number.
[[ $(name_of 0720999990) == '"Contact 999990"' ]] || die "seeded contact not found"
[[ $(name_of 0720999991) == '"Contact 999991"' ]] || die "seeded contact not found"

say "replacing them with a snapshot of $snapshot_rows rows"
t0=$(now)
snapshot_out=$("$cidgate" import --tenant bench --replace "$work/snapshot.csv")
snapshot_secs=$(since "$t0")
say "$snapshot_out"
[[ $snapshot_out == *"(100000 created, 900000 updated, 0 stale), rejected 0 rows, 100000 deleted"* ]] ||
	die "unexpected counts: $snapshot_out"
t0=$(now)
until [[ $(name_of 0720999990) == null && $(name_of 0720999991) == null &&
	$(name_of 0721999991) == '"Changed 999991"' ]]; do
	(($(awk -v s="$(since "$t0")" 'BEGIN { print (s > 120) }'))) && die "the gateway still answers the old mirror"
	sleep 0.05
done
caught_up=$(since "$t0")
notifications=$(curl -fsS "http://127.0.0.1:$gw_port/metrics" |
	awk '/^cidgate_notifications_total\{channel="cidgate_contacts"\}/ { print $2 }')

report=$(
	cat <<EOF
# Full snapshot sync, measured

\`deploy/bench/snapshot.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, load before: $load_before,
$profile build, PostgreSQL cluster with default durability, a gateway listening meanwhile.

| figure | value |
| --- | ---: |
| import of $contacts new contacts (s) | $import_secs |
| import rate (contacts/s) | $(rate "$contacts" "$import_secs") |
| snapshot of $snapshot_rows rows: 800,000 unchanged, 100,000 changed, 100,000 new, 100,000 deleted (s) | $snapshot_secs |
| snapshot rate (rows/s) | $(rate "$snapshot_rows" "$snapshot_secs") |
| gateway answers the new mirror, after the command returned (s) | $caught_up |
| contact notifications the gateway handled (payloads, seed and snapshot) | ${notifications:-?} |

Import: \`$import_out\`
Snapshot: \`$snapshot_out\`
EOF
)
printf '%s\n' "$report"
printf '%s\n' "$report" >"$out"
say "written to $out"
