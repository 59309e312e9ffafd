// Package deploy holds drbot's deployment files: the Slack app manifest and
// the Kubernetes manifests (kubernetes/, kustomize: a base for one replica
// on SQLite and the ha overlay for two or more on PostgreSQL). Its test
// renders the manifests and checks what the README promises of them.
package deploy
