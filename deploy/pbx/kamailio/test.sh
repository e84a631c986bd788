#!/usr/bin/env bash
# End-to-end test of deploy/pbx/kamailio/kamailio.cfg, everything on 127.0.0.1:
#
#   sipp UAC (caller) --INVITE--> Kamailio --HTTP--> cidgate serve --> PostgreSQL (pg.sh kamailio)
#                                    |
#                                    +--INVITE + caller data--> sipp UAS (called side)
#
# Cases: a known caller gets the CRM name (From display name, X-Caller-Name) and X-Direct-Line;
# an unknown caller connects without them; with cidgate stalled (SIGSTOP: connections are
# accepted, nothing answers) and with cidgate stopped, calls still connect, without caller
# data, within the HTTP timeout. Ends with `kamailio-e2e: N passed, M failed`; exits non-zero
# on any failure or setup error.
#
# Needs Debian's kamailio, kamailio-utils-modules (http_client), kamailio-extra-modules
# (jansson) and sip-tester (sipp): installed with apt-get when missing and running as root.
#
# Environment:
#   CIDGATE_BIN                    cidgate binary to use (default: cargo build --bin cidgate,
#                                  then target/debug/cidgate)
#   CIDGATE_KAMAILIO_PG_PORT       port of the private PostgreSQL cluster (default 25440)
#   CIDGATE_KAMAILIO_E2E_TIMEOUT   seconds the run may take once set up (default 300)
#   CIDGATE_KEEP_WORKDIR=1         keep the temp dir with configs and logs (kept on failure)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
here=$root/deploy/pbx/kamailio
cd "$root"

pg_name=kamailio
pg_port=${CIDGATE_KAMAILIO_PG_PORT:-25440}
limit=${CIDGATE_KAMAILIO_E2E_TIMEOUT:-300}
http_timeout=1 # seconds; http_client's resolution is whole seconds
packages=(kamailio kamailio-utils-modules kamailio-extra-modules sip-tester)

say() { printf 'kamailio-e2e: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# ---------------------------------------------------------------- processes and cleanup
work=
pg_started=0
cidgate_pid=
kamailio_pid=
uas_pid=
watchdog_pid=
failed_any=0

stop_pid() { # PID [seconds to wait before SIGKILL]
	local pid=$1 wait=${2:-10} i
	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < wait * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local status=$?
	trap - EXIT
	stop_pid "$uas_pid" 5
	stop_pid "$kamailio_pid" 10
	stop_pid "$cidgate_pid" 35
	if ((pg_started)); then
		"$root/deploy/local/pg.sh" stop "$pg_name" >/dev/null 2>&1 || say "warning: could not stop PostgreSQL cluster '$pg_name'"
	fi
	if [[ -n $watchdog_pid ]]; then
		kill -TERM "$watchdog_pid" 2>/dev/null || true
		wait "$watchdog_pid" 2>/dev/null || true
	fi
	if [[ -n $work && -d $work ]]; then
		if ((status != 0 || failed_any)) || [[ ${CIDGATE_KEEP_WORKDIR:-0} == 1 ]]; then
			say "configs and logs kept in $work"
		else
			rm -rf "$work"
		fi
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- prerequisites
missing_packages() {
	local p
	for p in "${packages[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			printf '%s\n' "$p"
		fi
	done
}

command -v dpkg-query >/dev/null 2>&1 || die "this test needs a Debian-like system (dpkg-query, apt-get)"
mapfile -t need < <(missing_packages)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		die "missing packages; install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}"
	fi
	say "installing ${need[*]} (Debian may start its own kamailio service on port 5060; this test does not use it)"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi
for tool in kamailio sipp curl ss psql; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (packages: kamailio, sip-tester, curl, iproute2, postgresql-client)"
done

if [[ -n ${CIDGATE_BIN:-} ]]; then
	bin=$CIDGATE_BIN
else
	say "building cidgate (cargo build --bin cidgate)"
	cargo build --quiet --bin cidgate >&2
	bin=$root/target/debug/cidgate
fi
[[ -x $bin ]] || die "no cidgate binary at $bin"

# From here on everything is bounded in time.
(
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "$limit" &
	sp=$!
	wait "$sp"
	printf 'kamailio-e2e: error: timed out after %ss\n' "$limit" >&2
	kill -TERM $$
) &
watchdog_pid=$!

work=$(mktemp -d "${TMPDIR:-/tmp}/cidgate-kamailio.XXXXXX")

# ---------------------------------------------------------------- ports
used_ports=" $pg_port "
port_busy() { # tcp|udp PORT
	[[ $used_ports == *" $2 "* ]] && return 0
	[[ -n $(ss -Hln --"$1" "sport = :$2" 2>/dev/null) ]]
}
free_port() { # tcp|udp
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 30000))
		if ! port_busy tcp "$p" && ! port_busy udp "$p"; then
			used_ports+="$p "
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "no free port found"
}
wait_udp_listen() { # PORT PID WHAT
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -n $(ss -Hlnu "sport = :$1" 2>/dev/null) ]] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

cg_port=$(free_port tcp)
sip_port=$(free_port udp)
uas_port=$(free_port udp)
uac_port=$(free_port udp)

# ---------------------------------------------------------------- PostgreSQL + cidgate
database_url=$("$root/deploy/local/pg.sh" start "$pg_name" "$pg_port" --fast)
pg_started=1
# Start from an empty database every run.
psql -q -X -v ON_ERROR_STOP=1 "$database_url" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS cidgate_kamailio_e2e WITH (FORCE);
CREATE DATABASE cidgate_kamailio_e2e;
SQL
DATABASE_URL=${database_url%/*}/cidgate_kamailio_e2e
export DATABASE_URL
export RUST_LOG=${RUST_LOG:-warn}

"$bin" migrate >&2
"$bin" tenant create kamailio-e2e --region RO --name "Kamailio e2e" >/dev/null
lookup_token=$("$bin" token create --tenant kamailio-e2e --scope lookup --label kamailio)
sync_token=$("$bin" token create --tenant kamailio-e2e --scope sync --label e2e)
[[ $lookup_token =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected lookup token format"

CIDGATE_LISTEN=127.0.0.1:$cg_port "$bin" serve >"$work/cidgate.log" 2>&1 &
cidgate_pid=$!
base=http://127.0.0.1:$cg_port
for ((i = 0; ; i++)); do
	if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then
		break
	fi
	kill -0 "$cidgate_pid" 2>/dev/null || {
		tail -n 20 "$work/cidgate.log" >&2
		die "cidgate serve exited"
	}
	((i < 300)) || die "cidgate did not become ready in 30 s"
	sleep 0.1
done

known_number=0722000007
known_name="Ion Popescu"
known_direct="SIP/ion-popescu"
unknown_number=0722999999
dialled=0210000000

status=$(curl -sS -o "$work/put.json" -w '%{http_code}' --max-time 10 -X PUT \
	"$base/api/v1/contacts/12345" \
	-H "Authorization: Bearer $sync_token" -H 'Content-Type: application/json' \
	-d "{\"name\":\"$known_name\",\"phones\":[\"$known_number\"],\"direct_line\":\"$known_direct\",\"crm_url\":\"https://crm.example.com/contacts/12345\"}")
[[ $status == 201 ]] || die "PUT /api/v1/contacts/12345 answered $status: $(cat "$work/put.json")"

answer=$(curl -fsS --max-time 5 -H "Authorization: Bearer $lookup_token" \
	"$base/api/lookup?telephone=$known_number&dnid=$dialled")
[[ $answer == *"\"name\":\"$known_name\""* ]] || die "cidgate lookup does not find the contact: $answer"

# ---------------------------------------------------------------- Kamailio
sed -e "s|^#!substdef \"!CIDGATE_LOOKUP_URL!.*|#!substdef \"!CIDGATE_LOOKUP_URL!$base/api/lookup!g\"|" \
	-e "s|^#!substdef \"!CIDGATE_TOKEN!.*|#!substdef \"!CIDGATE_TOKEN!$lookup_token!g\"|" \
	-e "s|^#!substdef \"!CIDGATE_TIMEOUT!.*|#!substdef \"!CIDGATE_TIMEOUT!$http_timeout!g\"|" \
	-e "s|^#!substdef \"!SIP_LISTEN!.*|#!substdef \"!SIP_LISTEN!udp:127.0.0.1:$sip_port!g\"|" \
	-e "s|^#!substdef \"!NEXT_HOP!.*|#!substdef \"!NEXT_HOP!sip:127.0.0.1:$uas_port!g\"|" \
	"$here/kamailio.cfg" >"$work/kamailio.cfg"
for key in "$base/api/lookup" "$lookup_token" "udp:127.0.0.1:$sip_port" "sip:127.0.0.1:$uas_port"; do
	grep -qF -- "$key" "$work/kamailio.cfg" || die "rendering kamailio.cfg failed (missing $key)"
done
mkdir -p "$work/run"

kamailio -c -f "$work/kamailio.cfg" >"$work/kamailio-check.log" 2>&1 || {
	cat "$work/kamailio-check.log" >&2
	die "kamailio -c rejects the rendered config"
}
kamailio -c -A WITH_DIRECT_LINE_RURI -f "$work/kamailio.cfg" >>"$work/kamailio-check.log" 2>&1 || {
	cat "$work/kamailio-check.log" >&2
	die "kamailio -c rejects the config with WITH_DIRECT_LINE_RURI"
}

# -DD: the main process stays in the foreground (no systemd, no daemon); -E: log to stderr.
kamailio -f "$work/kamailio.cfg" -P "$work/run/kamailio.pid" -Y "$work/run" -w "$work/run" \
	-DD -E -m 64 -M 8 >"$work/kamailio.log" 2>&1 &
kamailio_pid=$!
wait_udp_listen "$sip_port" "$kamailio_pid" || {
	tail -n 30 "$work/kamailio.log" >&2
	die "kamailio did not start listening on udp 127.0.0.1:$sip_port"
}

# ---------------------------------------------------------------- calls
passed=0
failed=0
call_ms=0

# place_call NAME CALLER: one call through Kamailio; the INVITE the UAS got is in $work/NAME.uas.msg
place_call() {
	local name=$1 caller=$2 uas_rc=0 uac_rc=0 t0 t1
	: >"$work/$name.uas.msg"
	timeout 30 sipp -sf "$here/sipp/uas.xml" -i 127.0.0.1 -p "$uas_port" -m 1 -nostdin \
		-timeout 25s -timeout_error -trace_msg -message_file "$work/$name.uas.msg" \
		>"$work/$name.uas.out" 2>&1 &
	uas_pid=$!
	if ! wait_udp_listen "$uas_port" "$uas_pid"; then
		say "$name: the sipp UAS did not start"
		return 1
	fi
	t0=$(date +%s%N)
	timeout 30 sipp -sf "$here/sipp/uac.xml" -i 127.0.0.1 -p "$uac_port" -m 1 -nostdin \
		-key caller "$caller" -s "$dialled" -timeout 25s -timeout_error \
		-trace_msg -message_file "$work/$name.uac.msg" \
		"127.0.0.1:$sip_port" >"$work/$name.uac.out" 2>&1 || uac_rc=$?
	t1=$(date +%s%N)
	call_ms=$(((t1 - t0) / 1000000))
	wait "$uas_pid" || uas_rc=$?
	uas_pid=
	if ((uac_rc != 0 || uas_rc != 0)); then
		say "$name: call did not complete (caller sipp exit $uac_rc, called sipp exit $uas_rc)"
		return 1
	fi
}

# The INVITE as the called side received it (first message in the UAS log).
received_invite() {
	awk '/^INVITE /{p=1} p && /^[[:space:]]*$/{exit} p' "$work/$1.uas.msg"
}

check_has() { # NAME REGEX WHAT
	if ! received_invite "$1" | grep -Eq -- "$2"; then
		say "$1: the INVITE at the called side lacks $3"
		return 1
	fi
}
check_lacks() { # NAME REGEX WHAT
	if received_invite "$1" | grep -Eq -- "$2"; then
		say "$1: the INVITE at the called side carries $3"
		return 1
	fi
}

report() { # NAME STATUS
	if (($2 == 0)); then
		passed=$((passed + 1))
		say "PASS $1 (${call_ms} ms)"
	else
		failed=$((failed + 1))
		failed_any=1
		say "FAIL $1 (${call_ms} ms)"
		if [[ -f $work/$1.uas.msg ]]; then
			say "INVITE at the called side:"
			received_invite "$1" | sed 's/^/    /' >&2 || true
		fi
		say "last kamailio log lines:"
		tail -n 15 "$work/kamailio.log" | sed 's/^/    /' >&2 || true
	fi
}

no_caller_data() {
	check_lacks "$1" '^X-Caller-Name:' "X-Caller-Name" &&
		check_lacks "$1" '^X-Direct-Line:' "X-Direct-Line" &&
		check_lacks "$1" '^From: *"' "a From display name"
}

# 1. Known caller: name and direct line from cidgate; the caller's own X-Caller-Name is dropped.
case_known() {
	local n=known_caller_gets_name_and_direct_line rc=0
	{
		place_call "$n" "$known_number" &&
			check_has "$n" "^From: *\"$known_name\" *<sip:$known_number@" "From: \"$known_name\" <sip:$known_number@…>" &&
			check_has "$n" "^X-Caller-Name: $known_name\s*\$" "X-Caller-Name: $known_name" &&
			check_has "$n" "^X-Direct-Line: $known_direct\s*\$" "X-Direct-Line: $known_direct" &&
			check_has "$n" '^X-CRM-Id: 12345\s*$' "X-CRM-Id: 12345" &&
			check_lacks "$n" 'Spoofed By Caller' "the caller's spoofed X-Caller-Name"
	} || rc=1
	report "$n" "$rc"
}

# 2. Unknown caller: connects, nothing added.
case_unknown() {
	local n=unknown_caller_connects_without_name rc=0
	{ place_call "$n" "$unknown_number" && no_caller_data "$n"; } || rc=1
	report "$n" "$rc"
}

# 3. cidgate accepts connections but never answers: the call waits at most the HTTP timeout.
case_stalled() {
	local n=stalled_cidgate_call_connects_after_http_timeout rc=0
	kill -STOP "$cidgate_pid"
	{ place_call "$n" "$known_number" && no_caller_data "$n"; } || rc=1
	kill -CONT "$cidgate_pid"
	if ((rc == 0 && call_ms > (http_timeout + 2) * 1000)); then
		say "$n: the call took ${call_ms} ms, more than the ${http_timeout} s HTTP timeout + 2 s"
		rc=1
	fi
	report "$n" "$rc"
}

# 4. cidgate stopped: the call connects at once, without caller data.
case_stopped() {
	local n=stopped_cidgate_call_connects_without_name rc=0
	stop_pid "$cidgate_pid" 35
	cidgate_pid=
	{ place_call "$n" "$known_number" && no_caller_data "$n"; } || rc=1
	if ((rc == 0 && call_ms > (http_timeout + 2) * 1000)); then
		say "$n: the call took ${call_ms} ms, more than the ${http_timeout} s HTTP timeout + 2 s"
		rc=1
	fi
	report "$n" "$rc"
}

case_known
case_unknown
case_stalled
case_stopped

echo "kamailio-e2e: $passed passed, $failed failed"
((failed == 0))
