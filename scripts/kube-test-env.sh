#!/usr/bin/env bash
# kube-test-env.sh runs a real etcd and kube-apiserver on 127.0.0.1 for the
# integration tests of adapters/kube, reached through kubeconfigs as in
# production. No controller-manager runs: tests play the deployment controller.
#
#   env=$(scripts/kube-test-env.sh start) || exit 1  # build if needed, start, print exports
#   eval "$env"
#   go test ./...
#   scripts/kube-test-env.sh stop               # end the two servers by pid, remove the dir
#
# (Not `eval "$(... start)"` alone: a failed start would then go unnoticed
# and the integration tests would only be skipped.) DRBOT_KUBE_TEST_DIR, set
# before start, chooses the state directory; it defaults to a new one in /tmp.
#
#   scripts/kube-test-env.sh build              # only build (cached) and print the bin dir
#
# start prints, on stdout and nothing else:
#   export DRBOT_TEST_KUBECONFIG=DIR/admin.kubeconfig            (group system:masters)
#   export DRBOT_TEST_KUBECONFIG_LIMITED=DIR/limited.kubeconfig  (user drbot-limited, no RBAC;
#                                                                 tests grant it what they need)
#   export DRBOT_KUBE_TEST_DIR=DIR  DRBOT_KUBE_TEST_PIDS="ETCD_PID APISERVER_PID"
# and writes the same lines to DIR/env.sh. Progress and timings go to stderr,
# logs to DIR/etcd.log and DIR/kube-apiserver.log.
#
# The binaries are built from tools/kube (a module of its own: kube-apiserver
# from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server) into
# ${DRBOT_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-~/.cache}/drbot/kube/<hash of tools/kube>/bin},
# outside the work tree; a cold build takes minutes and a few GB of Go build
# cache, a warm one nothing. Needs go, openssl and curl.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/tools/kube"
kube_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$tools/go.mod")
# Stamp the version kube-apiserver reports at /version (it says v0.0.0-master
# otherwise; the flags are those of kubernetes' hack/lib/version.sh).
kube_minor=${kube_version#v1.}
kube_minor=${kube_minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${kube_minor}"

log() { printf 'kube-test-env: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

bin_dir() {
	if [[ -n ${DRBOT_KUBE_BIN_DIR:-} ]]; then
		echo "$DRBOT_KUBE_BIN_DIR"
		return
	fi
	local key
	key=$(cat "$tools/go.mod" "$tools/go.sum" "$tools/cmd/etcd/main.go" <(echo "$ldflags") | sha256sum | cut -c1-12)
	echo "${XDG_CACHE_HOME:-$HOME/.cache}/drbot/kube/$key/bin"
}

build() {
	local bin tmp start
	bin=$(bin_dir)
	if [[ -x $bin/kube-apiserver && -x $bin/etcd ]]; then
		log "binaries cached in $bin"
		return
	fi
	command -v go >/dev/null || die "go is not installed"
	start=$SECONDS
	mkdir -p "$(dirname "$bin")"
	tmp=$(mktemp -d "$(dirname "$bin")/build.XXXXXX")
	log "building etcd and kube-apiserver ${kube_version} into $bin (a cold build takes several minutes)"
	(
		cd "$tools"
		export GOWORK=off
		go build -buildvcs=false -trimpath -ldflags="-s -w" -o "$tmp/etcd" ./cmd/etcd
		go build -buildvcs=false -trimpath -ldflags="$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	) >&2 || {
		rm -rf "$tmp"
		die "build failed"
	}
	mkdir -p "$bin"
	mv "$tmp/etcd" "$tmp/kube-apiserver" "$bin/"
	rm -rf "$tmp"
	log "built in $((SECONDS - start))s"
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "no free port found"
}

# wait_for PID URL SECONDS [CURL ARGS...] polls URL until it answers with a
# success status (/readyz answers 500 until every check passes), giving up
# early if process PID has exited.
wait_for() {
	local pid=$1 url=$2 timeout=$3
	shift 3
	local deadline=$((SECONDS + timeout))
	until curl -sf --max-time 2 -o /dev/null "$@" "$url" 2>/dev/null; do
		((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
}

write_kubeconfig() { # file server ca user token
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: drbot-test
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 "$3")
users:
- name: $4
  user:
    token: $5
contexts:
- name: drbot-test-$4
  context:
    cluster: drbot-test
    user: $4
current-context: drbot-test-$4
EOF
	chmod 600 "$1"
}

start() {
	command -v openssl >/dev/null || die "openssl is not installed"
	command -v curl >/dev/null || die "curl is not installed"
	build
	local bin
	bin=$(bin_dir)
	# dir, pids and ready are global: the EXIT trap reads them.
	dir=${DRBOT_KUBE_TEST_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/drbot-kube.XXXXXX")}
	dir=${dir%/}
	mkdir -p "$dir"
	# Whatever stops start before it is done ends what it started.
	pids=()
	ready=
	trap '[[ -n $ready ]] || stop_pids "$dir" "${pids[@]}"' EXIT

	# Keys and certificates: a CA, a serving certificate for 127.0.0.1 and
	# localhost, and the service account signing key.
	(
		cd "$dir"
		openssl genrsa -out ca.key 2048
		openssl req -x509 -new -key ca.key -subj /CN=drbot-test-ca -days 2 -out ca.crt
		openssl genrsa -out server.key 2048
		openssl req -new -key server.key -subj /CN=kube-apiserver -out server.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt
		openssl genrsa -out sa.key 2048
	) >/dev/null 2>&1 || die "openssl failed in $dir"
	local admin_token limited_token
	admin_token=$(openssl rand -hex 24)
	limited_token=$(openssl rand -hex 24)
	# Static tokens: token,user,uid,"groups" (kube-apiserver --token-auth-file).
	printf '%s,drbot-admin,drbot-admin,"system:masters"\n%s,drbot-limited,drbot-limited\n' \
		"$admin_token" "$limited_token" >"$dir/tokens.csv"
	chmod 600 "$dir/tokens.csv" "$dir"/*.key

	local etcd_port peer_port api_port start_at
	etcd_port=$(free_port)
	peer_port=$(free_port)
	api_port=$(free_port)
	start_at=$SECONDS

	# stdout and stderr go to files, so that $(...) around this script does
	# not wait for the servers to exit.
	"$bin/etcd" --name drbot-test --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "drbot-test=http://127.0.0.1:$peer_port" \
		--unsafe-no-fsync --log-level warn </dev/null >"$dir/etcd.log" 2>&1 &
	pids+=($!)
	wait_for "${pids[-1]}" "http://127.0.0.1:$etcd_port/health" 30 || {
		tail -20 "$dir/etcd.log" >&2
		die "etcd did not become healthy; log in $dir/etcd.log"
	}

	"$bin/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--endpoint-reconciler-type none \
		--tls-cert-file "$dir/server.crt" --tls-private-key-file "$dir/server.key" --cert-dir "$dir/certs" \
		--service-cluster-ip-range 10.96.0.0/24 \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$dir/sa.key" --service-account-signing-key-file "$dir/sa.key" \
		--token-auth-file "$dir/tokens.csv" \
		--authorization-mode RBAC \
		--profiling=false \
		</dev/null >"$dir/kube-apiserver.log" 2>&1 &
	pids+=($!)
	local server="https://127.0.0.1:$api_port"
	wait_for "${pids[-1]}" "$server/readyz" 60 --cacert "$dir/ca.crt" -H "Authorization: Bearer $admin_token" || {
		tail -30 "$dir/kube-apiserver.log" >&2
		die "kube-apiserver did not become ready; log in $dir/kube-apiserver.log"
	}
	log "etcd and kube-apiserver ready at $server in $((SECONDS - start_at))s"

	write_kubeconfig "$dir/admin.kubeconfig" "$server" "$dir/ca.crt" drbot-admin "$admin_token"
	write_kubeconfig "$dir/limited.kubeconfig" "$server" "$dir/ca.crt" drbot-limited "$limited_token"
	echo "${pids[*]}" >"$dir/pids"
	cat >"$dir/env.sh" <<EOF
export DRBOT_TEST_KUBECONFIG=$dir/admin.kubeconfig
export DRBOT_TEST_KUBECONFIG_LIMITED=$dir/limited.kubeconfig
export DRBOT_KUBE_TEST_DIR=$dir
export DRBOT_KUBE_TEST_PIDS="${pids[*]}"
EOF
	ready=1
	cat "$dir/env.sh"
}

# ours DIR PID: PID is alive (not a zombie) and one of the servers started
# with state in DIR, not an unrelated process that reused a stale pid.
ours() {
	local stat
	stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]] && tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$1/"
}

# stop_pids DIR PID... ends the given servers one at a time, last started
# first (kube-apiserver shuts down slowly once etcd is gone): TERM, then KILL
# after 10 s.
stop_pids() {
	local dir=$1 i pid
	shift
	for ((i = $#; i > 0; i--)); do
		pid=${!i}
		ours "$dir" "$pid" || continue
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			ours "$dir" "$pid" || continue 2
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

stop() {
	local dir=${1:-${DRBOT_KUBE_TEST_DIR:-}}
	[[ -n $dir && -f $dir/pids ]] || die "stop: give the directory start printed (DRBOT_KUBE_TEST_DIR)"
	# shellcheck disable=SC2046 # one pid per word
	stop_pids "$dir" $(cat "$dir/pids")
	rm -rf "$dir"
	log "stopped and removed $dir"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
build)
	build
	bin_dir
	;;
*) die "usage: $0 start | stop [DIR] | build" ;;
esac
