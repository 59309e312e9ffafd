#!/usr/bin/env bash
# test.sh is drbot's one test command: it starts what the tests need (a real
# etcd + kube-apiserver on loopback, built from the Go module proxy on first
# use, Azurite's blob service, installed from npm on first use, and a
# throwaway PostgreSQL 15 from Debian's package), runs every test with the
# race detector, and stops what it started.
#
#   scripts/test.sh            # all tests
#   scripts/test.sh ./runbook/ # some packages (extra args go to go test)
set -euo pipefail
cd "$(dirname "$0")/.."

# The test apiserver's keys and readiness check need openssl and curl.
for tool in openssl curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "test.sh: installing $tool" >&2
		apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
	fi
done

# Azurite starts in the background while the apiserver does; its exports
# go to a file read once both are up.
azurite_out=$(mktemp)
bash scripts/azurite-test-env.sh start >"$azurite_out" &
azurite_start=$!
stop_all() {
	bash scripts/kube-test-env.sh stop >/dev/null 2>&1 || true
	if [[ -n ${DRBOT_POSTGRES_TEST_DIR:-} ]]; then
		bash scripts/postgres-test-env.sh stop >/dev/null 2>&1 || true
	fi
	if [[ -n ${DRBOT_AZURITE_TEST_DIR:-} ]]; then
		bash scripts/azurite-test-env.sh stop >/dev/null 2>&1 || true
	else
		wait "$azurite_start" 2>/dev/null || true
		# shellcheck disable=SC1090 # the exports start printed, if it got that far
		[[ -s $azurite_out ]] && source "$azurite_out" && bash scripts/azurite-test-env.sh stop >/dev/null 2>&1 || true
	fi
	rm -f "$azurite_out"
}
trap stop_all EXIT

# Two steps each, so a failed start fails the run instead of silently
# skipping the integration tests.
kube_env=$(bash scripts/kube-test-env.sh start)
eval "$kube_env"
# The store's suite and the two-replica test run on it (CI=true makes them
# fail rather than skip without it).
postgres_env=$(bash scripts/postgres-test-env.sh start)
eval "$postgres_env"
wait "$azurite_start" || { echo "test.sh: Azurite did not start" >&2; exit 1; }
azurite_env=$(cat "$azurite_out")
eval "$azurite_env"

pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
go test -race -timeout 15m "${pkgs[@]}"
