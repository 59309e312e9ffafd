#!/usr/bin/env bash
# azurite-test-env.sh runs Azurite's blob service on 127.0.0.1 for the blob
# storage tests of adapters/azure (and the live end-to-end test), reached with
# azblob and the well-known development account, as in production with a key
# instead of an identity.
#
#   env=$(scripts/azurite-test-env.sh start) || exit 1  # install if needed, start, print exports
#   eval "$env"
#   go test ./...
#   scripts/azurite-test-env.sh stop               # end Azurite by pid, remove the dir
#
# start prints, on stdout and nothing else:
#   export DRBOT_TEST_AZURITE_BLOB_URL=http://127.0.0.1:PORT/devstoreaccount1
#   export DRBOT_AZURITE_TEST_DIR=DIR DRBOT_AZURITE_TEST_PID=PID
# Progress and timings go to stderr, Azurite's log to DIR/azurite.log.
#
# Azurite (npm package azurite, pinned below) is installed with npm into
# ${DRBOT_AZURITE_DIR:-${XDG_CACHE_HOME:-~/.cache}/drbot/azurite/<version>},
# outside the work tree: about a minute the first time, nothing after. It
# asks for Node 22 and runs on Node 20 with a warning. Needs node and npm.
# --skipApiVersionCheck: without it azblob's API version gets HTTP 400;
# --disableTelemetry: without it Azurite does not exit on SIGTERM.
set -euo pipefail

azurite_version=3.37.0

log() { printf 'azurite-test-env: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

install_dir() {
	echo "${DRBOT_AZURITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/drbot/azurite/$azurite_version}"
}

install() {
	local dir start_at=$SECONDS
	dir=$(install_dir)
	if [[ -x $dir/node_modules/.bin/azurite-blob ]]; then
		return
	fi
	command -v npm >/dev/null || die "npm is needed to install Azurite (apt-get install -y nodejs npm)"
	log "installing azurite@$azurite_version into $dir"
	mkdir -p "$dir"
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$azurite_version" >&2 ||
		die "npm install azurite@$azurite_version failed"
	log "installed in $((SECONDS - start_at))s"
}

# free_port asks the kernel for a free loopback port.
free_port() {
	node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

start() {
	install
	local bin dir port pid start_at=$SECONDS
	bin="$(install_dir)/node_modules/.bin/azurite-blob"
	dir=$(mktemp -d /tmp/drbot-azurite.XXXXXX)
	port=$(free_port)
	"$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" --skipApiVersionCheck --disableTelemetry --silent \
		--debug "$dir/azurite.log" </dev/null >"$dir/stdout.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pid"
	for _ in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$dir/stdout.log" >&2
			die "Azurite exited at start; logs in $dir"
		fi
		if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			log "Azurite blob service on 127.0.0.1:$port in $((SECONDS - start_at))s"
			cat <<EOF
export DRBOT_TEST_AZURITE_BLOB_URL=http://127.0.0.1:$port/devstoreaccount1
export DRBOT_AZURITE_TEST_DIR=$dir
export DRBOT_AZURITE_TEST_PID=$pid
EOF
			return
		fi
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	die "Azurite did not open port $port in 30s; logs in $dir"
}

stop() {
	local dir=${1:-${DRBOT_AZURITE_TEST_DIR:-}} pid
	[[ -n $dir && -f $dir/pid ]] || die "stop: give the directory start printed (DRBOT_AZURITE_TEST_DIR)"
	pid=$(cat "$dir/pid")
	# Only the Azurite this script started with state in DIR, not a process
	# that reused a stale pid.
	if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	log "stopped and removed $dir"
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 install | start | stop [DIR]" ;;
esac
