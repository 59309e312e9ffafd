//go:build tools

// Package tools pins the programs drbot's Kubernetes integration tests run: a
// real kube-apiserver and etcd, built from the module proxy by
// scripts/kube-test-env.sh. This is a module of its own so the main module
// never sees the Kubernetes source tree.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
