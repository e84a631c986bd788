#!/usr/bin/env bash
# Manage a private PostgreSQL cluster built from the machine's own PostgreSQL
# binaries (no Docker, no system service).
#
#   deploy/local/pg.sh start NAME PORT [--fast] [--tls]
#                                                 start (initdb on first use); prints the URL.
#                                                 --tls: serve TLS too, with a certificate for
#                                                 localhost/127.0.0.1 from a private CA whose
#                                                 certificate is DATADIR/tls-ca.crt
#   deploy/local/pg.sh stop  NAME                 stop it (no error if not running / never created)
#   deploy/local/pg.sh url   NAME PORT            print the URL without touching anything
#
# Data lives in ${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/NAME. The server
# listens only on 127.0.0.1:PORT (unix socket inside the data directory) and
# trusts every local connection: it is for development and tests only.
# Binaries: $PG_BIN, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin. As root, initdb/pg_ctl run as the `postgres` OS
# user. `start` prints only the connection URL on stdout; progress goes to stderr.
set -euo pipefail

prog=${0##*/}

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

usage() {
	cat >&2 <<USAGE
usage: $prog start NAME PORT [--fast] [--tls]
       $prog stop NAME
       $prog url NAME PORT
USAGE
	exit 2
}

is_root() { [[ $(id -u) -eq 0 ]]; }

check_name() {
	[[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "invalid cluster name '$1' (use letters, digits, '_', '.', '-')"
}

check_port() {
	if [[ ! $1 =~ ^[0-9]{1,5}$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then
		die "invalid port '$1'"
	fi
}

url_for() { printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$((10#$1))"; }

# Run a command as the user that owns the cluster: `postgres` when we are root
# (initdb and pg_ctl refuse to run as root), ourselves otherwise. cd / first so
# the postgres user never trips over an unreadable working directory.
as_pg() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

has_bins() {
	[[ -n $1 && -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]
}

locate_bin() {
	local d
	if [[ -n ${PG_BIN:-} ]]; then
		has_bins "$PG_BIN" || die "PG_BIN=$PG_BIN does not contain initdb, pg_ctl and postgres"
		printf '%s\n' "$PG_BIN"
		return 0
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if has_bins "$d"; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if has_bins "$d"; then
		printf '%s\n' "$d"
		return 0
	fi
	return 1
}

find_bin() {
	if locate_bin; then
		return 0
	fi
	if is_root && command -v apt-get >/dev/null 2>&1; then
		say "no PostgreSQL server binaries found; installing them with apt-get (Debian may also start its own cluster on port 5432; we do not use it)"
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
		if locate_bin; then
			return 0
		fi
	fi
	say "error: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found."
	say "install them with:  sudo apt-get install postgresql"
	say "or point PG_BIN at a directory containing them."
	exit 1
}

ensure_postgres_user() {
	if ! id -u postgres >/dev/null 2>&1; then
		say "creating system user 'postgres'"
		useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
	fi
	command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) is needed to run PostgreSQL as the postgres user"
}

# Settings live in DATADIR/cidgate.conf, included from postgresql.conf and
# rewritten on every start, so new settings apply at the next (re)start.
desired_conf() {
	local port=$1 fast=$2 sockdir=${3//\'/\'\'} tls=$4
	cat <<CONF
# Written by deploy/local/pg.sh on every start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $((10#$port))
unix_socket_directories = '$sockdir'
max_connections = 300
CONF
	if [[ $fast == 1 ]]; then
		printf '%s\n' 'fsync = off' 'synchronous_commit = off' 'full_page_writes = off'
	else
		printf '%s\n' 'fsync = on' 'synchronous_commit = on' 'full_page_writes = on'
	fi
	if [[ $tls == 1 ]]; then
		printf '%s\n' 'ssl = on' "ssl_cert_file = 'server.crt'" "ssl_key_file = 'server.key'"
	fi
}

# A private CA (DATADIR/tls-ca.crt) and a server certificate it signed for localhost and
# 127.0.0.1, made once per cluster: clients can verify the server against the CA.
make_tls_files() {
	local data=$1
	[[ -f $data/server.crt && -f $data/server.key && -f $data/tls-ca.crt ]] && return 0
	if ! command -v openssl >/dev/null 2>&1 && is_root && command -v apt-get >/dev/null 2>&1; then
		say "installing openssl (--tls makes certificates with it)"
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y openssl >&2
	fi
	command -v openssl >/dev/null 2>&1 || die "--tls needs openssl (sudo apt-get install openssl)"
	say "creating a private CA and a server certificate in $data"
	as_pg bash -euc '
		cd "$1"
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cidgate local CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout tls-ca.key -out tls-ca.crt 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
		printf "%s\n" "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
		openssl x509 -req -in server.csr -CA tls-ca.crt -CAkey tls-ca.key -CAcreateserial -days 3650 \
			-extfile server.ext -out server.crt 2>/dev/null
		rm -f server.csr server.ext tls-ca.srl
		chmod 644 tls-ca.crt
	' _ "$data" || die "could not create TLS certificates in $data"
}

is_running() {
	[[ -f $1/PG_VERSION ]] && as_pg "$bin/pg_ctl" status -D "$1" >/dev/null 2>&1
}

port_in_use() {
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

show_log_tail() {
	if [[ -f $1/server.log ]]; then
		say "last lines of $1/server.log:"
		tail -n 30 "$1/server.log" >&2 || true
	fi
}

prepare_dirs() {
	local root=$1 data=$2
	if [[ -L $root ]]; then
		die "$root is a symlink; refusing to use it (set CIDGATE_PG_ROOT elsewhere)"
	fi
	mkdir -p "$root"
	if is_root; then
		local owner
		owner=$(stat -c %U "$root")
		if [[ $owner != root && $owner != postgres ]]; then
			die "$root is owned by '$owner'; refusing to take it over (remove it or set CIDGATE_PG_ROOT)"
		fi
		chown postgres: "$root"
		chmod 700 "$root"
		if [[ ! -d $data ]]; then
			mkdir -m 700 "$data"
		fi
		chown postgres: "$data"
		runuser -u postgres -- test -w "$data" ||
			die "the postgres OS user cannot reach $data (every parent directory must be searchable by it); set CIDGATE_PG_ROOT to somewhere like /tmp/cidgate-pg"
	else
		[[ -O $root ]] || die "$root is not owned by $(id -un); remove it or set CIDGATE_PG_ROOT"
		chmod 700 "$root"
	fi
}

run_initdb() {
	local data=$1 out
	say "initialising cluster in $data"
	if out=$(as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 2>&1); then
		return 0
	fi
	say "initdb with --locale=C.UTF-8 failed; retrying with --locale=C"
	if out=$(as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C 2>&1); then
		return 0
	fi
	printf '%s\n' "$out" >&2
	die "initdb failed for $data"
}

cmd_start() {
	local name=$1 port=$2 fast=$3 tls=$4
	local root data conf want
	root=${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}
	[[ $root == /* ]] || root=$PWD/$root
	data=$root/$name
	conf=$data/cidgate.conf

	bin=$(find_bin)
	if is_root; then
		ensure_postgres_user
	fi
	prepare_dirs "$root" "$data"

	if [[ ! -f $data/PG_VERSION ]]; then
		run_initdb "$data"
	fi
	if ! grep -qxF "include_if_exists = 'cidgate.conf'" "$data/postgresql.conf"; then
		printf '\n%s\n' "include_if_exists = 'cidgate.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
	fi

	if [[ $tls == 1 ]]; then
		make_tls_files "$data"
	fi
	want=$(desired_conf "$port" "$fast" "$data" "$tls")
	if is_running "$data"; then
		if [[ -f $conf && "$(cat "$conf")" == "$want" ]]; then
			say "cluster '$name' already running ($data)"
			url_for "$port"
			return 0
		fi
		say "cluster '$name' is running with different settings; restarting it"
		as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >&2
	fi

	if port_in_use "$port"; then
		die "port $port on 127.0.0.1 is already in use by another process; stop that process or choose another port (run.sh: CIDGATE_PG_PORT, test.sh: CIDGATE_TEST_PG_PORT)"
	fi

	printf '%s\n' "$want" | as_pg tee "$conf" >/dev/null
	say "starting cluster '$name' on 127.0.0.1:$port (data: $data, log: $data/server.log)"
	if ! as_pg "$bin/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" start >&2; then
		show_log_tail "$data"
		die "could not start PostgreSQL cluster '$name' on port $port"
	fi
	url_for "$port"
}

cmd_stop() {
	local name=$1 root data
	root=${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}
	[[ $root == /* ]] || root=$PWD/$root
	data=$root/$name
	if [[ ! -f $data/PG_VERSION ]]; then
		say "cluster '$name' does not exist ($data); nothing to stop"
		return 0
	fi
	bin=$(find_bin)
	if is_root; then
		ensure_postgres_user
	fi
	if ! is_running "$data"; then
		say "cluster '$name' is not running"
		return 0
	fi
	say "stopping cluster '$name'"
	as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >&2
}

bin=

main() {
	(($# >= 1)) || usage
	local cmd=$1
	shift
	case $cmd in
	start)
		local fast=0 tls=0 args=() a
		for a in "$@"; do
			case $a in
			--fast) fast=1 ;;
			--tls) tls=1 ;;
			-*) usage ;;
			*) args+=("$a") ;;
			esac
		done
		((${#args[@]} == 2)) || usage
		check_name "${args[0]}"
		check_port "${args[1]}"
		cmd_start "${args[0]}" "${args[1]}" "$fast" "$tls"
		;;
	stop)
		(($# == 1)) || usage
		check_name "$1"
		cmd_stop "$1"
		;;
	url)
		(($# == 2)) || usage
		check_name "$1"
		check_port "$2"
		url_for "$2"
		;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
