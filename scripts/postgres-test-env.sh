#!/usr/bin/env bash
# postgres-test-env.sh runs a throwaway PostgreSQL 15 on 127.0.0.1 for the
# store's tests against PostgreSQL and the two-replica end-to-end test: the
# distribution's server, a cluster made for the run, trust auth on loopback.
#
#   env=$(scripts/postgres-test-env.sh start) || exit 1  # install if needed, initdb, start, print exports
#   eval "$env"
#   go test ./store/
#   scripts/postgres-test-env.sh stop               # pg_ctl stop, remove the dir
#
# start prints, on stdout and nothing else:
#   export DRBOT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   export DRBOT_POSTGRES_TEST_DIR=DIR
# Progress goes to stderr, the server's log to DIR/log.
#
# initdb and the server refuse to run as root: both run as the postgres
# user (created by the package), on a directory it owns. The socket goes in
# DIR too (-k), so nothing is written to /var/run/postgresql.
set -euo pipefail

pg_version=15
bin=/usr/lib/postgresql/$pg_version/bin

log() { printf 'postgres-test-env: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

install() {
	if [[ -x $bin/initdb && -x $bin/pg_ctl ]]; then
		return
	fi
	log "installing postgresql (Debian's, $pg_version)"
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 ||
		die "apt-get install postgresql failed"
	[[ -x $bin/initdb ]] || die "no $bin/initdb after installing postgresql"
}

# as_postgres runs a command as the postgres user (as is when already it).
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		"$@"
	else
		runuser -u postgres -- "$@"
	fi
}

# free_port asks the kernel for a free loopback port.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
	install
	local dir port start_at=$SECONDS
	dir=$(mktemp -d /tmp/drbot-postgres.XXXXXX)
	chmod 755 "$dir"
	mkdir "$dir/data"
	chown postgres: "$dir" "$dir/data" 2>/dev/null || [[ $(id -un) == postgres ]] || die "cannot give $dir to the postgres user"
	as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; die "initdb failed; logs in $dir"; }
	for _ in 1 2 3; do
		port=$(free_port)
		if as_postgres "$bin/pg_ctl" -D "$dir/data" -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" \
			-l "$dir/log" -w -t 30 start >&2; then
			log "PostgreSQL $pg_version on 127.0.0.1:$port in $((SECONDS - start_at))s"
			cat <<EOT
export DRBOT_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'
export DRBOT_POSTGRES_TEST_DIR=$dir
EOT
			return
		fi
		log "start on port $port failed; trying another"
	done
	cat "$dir/log" >&2 || true
	die "PostgreSQL did not start; logs in $dir"
}

stop() {
	local dir=${1:-${DRBOT_POSTGRES_TEST_DIR:-}}
	[[ -n $dir && -d $dir/data ]] || die "stop: give the directory start printed (DRBOT_POSTGRES_TEST_DIR)"
	# Only the server of this directory: pg_ctl reads its pid from DIR/data.
	as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	log "stopped and removed $dir"
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 install | start | stop [DIR]" ;;
esac
