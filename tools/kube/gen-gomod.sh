#!/usr/bin/env bash
# gen-gomod.sh regenerates this module's go.mod and go.sum for the given
# Kubernetes and etcd versions. k8s.io/kubernetes is not meant to be used as a
# module: its go.mod points each k8s.io staging module at ./staging/...; this
# script turns every such line into a replace with the matching published
# version (v1.X.Y -> v0.X.Y) so the module proxy can serve them.
#
#   tools/kube/gen-gomod.sh [KUBE_VERSION [ETCD_VERSION]]
set -euo pipefail

kube_version=${1:-v1.37.2}
etcd_version=${2:-v3.7.3}
staging_version=v0.${kube_version#v1.}

cd "$(dirname "$0")"

kube_mod=$(go mod download -json "k8s.io/kubernetes@${kube_version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
if [[ -z $kube_mod || ! -f $kube_mod ]]; then
	echo "gen-gomod: cannot find the go.mod of k8s.io/kubernetes@${kube_version}" >&2
	exit 1
fi

replaces=()
while read -r path; do
	replaces+=("-replace=${path}=${path}@${staging_version}")
done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$kube_mod")
if [[ ${#replaces[@]} -eq 0 ]]; then
	echo "gen-gomod: no ./staging replace lines in ${kube_mod}" >&2
	exit 1
fi

rm -f go.mod go.sum
go mod init github.com/drbot-dev/drbot/tools/kube
go mod edit \
	-require="k8s.io/kubernetes@${kube_version}" \
	-require="go.etcd.io/etcd/server/v3@${etcd_version}" \
	"${replaces[@]}"
go mod tidy
echo "gen-gomod: k8s.io/kubernetes ${kube_version} with ${#replaces[@]} staging replaces at ${staging_version}, etcd ${etcd_version}"
