#!/usr/bin/env bash
# test.sh is drbot's one test command: it starts what the tests need (a real
# etcd + kube-apiserver on loopback, built from the Go module proxy on first
# use), runs every test with the race detector, and stops what it started.
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

# Two steps, so a failed start fails the run instead of silently skipping
# the integration tests.
kube_env=$(bash scripts/kube-test-env.sh start)
eval "$kube_env"
trap 'bash scripts/kube-test-env.sh stop >/dev/null 2>&1 || true' EXIT

pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
go test -race -timeout 15m "${pkgs[@]}"
