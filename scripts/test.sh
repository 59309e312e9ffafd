#!/usr/bin/env bash
# test.sh is drbot's one test command: it starts what the tests need (a real
# etcd + kube-apiserver on loopback, built from the Go module proxy on first
# use), runs every test with the race detector, and stops what it started.
#
#   scripts/test.sh            # all tests
#   scripts/test.sh ./runbook/ # some packages (extra args go to go test)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v openssl >/dev/null; then
	echo "test.sh: installing openssl (the kube-apiserver test keys need it)" >&2
	apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

stop() { scripts/kube-test-env.sh stop >/dev/null 2>&1 || true; }
trap stop EXIT
eval "$(scripts/kube-test-env.sh start)"

pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
go test -race -timeout 15m "${pkgs[@]}"
