package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/runbook"
)

// twoContexts is a kubeconfig with a context per environment, as a DR
// setup with staging and production clusters has.
const twoContexts = `apiVersion: v1
kind: Config
clusters:
- {name: staging, cluster: {server: "https://staging.example:6443"}}
- {name: production, cluster: {server: "https://production.example:6443"}}
users:
- {name: drbot, user: {token: t0ken}}
contexts:
- {name: staging, context: {cluster: staging, user: drbot}}
- {name: production, context: {cluster: production, user: drbot}}
current-context: staging
`

func TestRestConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(twoContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster, whatever runs the test
	tests := []struct {
		name       string
		kubeconfig string
		context    string
		wantHost   string
		wantErr    string
	}{
		{name: "current context", kubeconfig: path, wantHost: "https://staging.example:6443"},
		{name: "named context", kubeconfig: path, context: "production", wantHost: "https://production.example:6443"},
		{name: "a list of files", kubeconfig: filepath.Join(dir, "absent") + string(filepath.ListSeparator) + path, context: "production", wantHost: "https://production.example:6443"},
		{name: "unknown context", kubeconfig: path, context: "prod", wantErr: `kubeconfig ` + path + `, context "prod": context "prod" does not exist`},
		{name: "missing file", kubeconfig: filepath.Join(dir, "absent"), wantErr: "kubeconfig " + filepath.Join(dir, "absent") + ": stat " + filepath.Join(dir, "absent") + ": no such file or directory"},
		{name: "context without kubeconfig reads ~/.kube/config", context: "drbot-no-such-context", wantErr: `, context "drbot-no-such-context": `},
		{name: "neither kubeconfig nor cluster", wantErr: "no kubeconfig given and not running in a cluster; set KUBECONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := restConfig(tt.kubeconfig, tt.context)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("restConfig: %v", err)
			}
			if cfg.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", cfg.Host, tt.wantHost)
			}
		})
	}
}

func TestNewForConfigDefaults(t *testing.T) {
	c, err := NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"}, Options{})
	if err != nil {
		t.Fatalf("NewForConfig: %v", err)
	}
	if c.pollInterval != DefaultPollInterval || c.rolloutTimeout != DefaultRolloutTimeout {
		t.Errorf("defaults = %v, %v", c.pollInterval, c.rolloutTimeout)
	}
	if _, ok := c.Actions()[runbook.KindScale]; !ok {
		t.Errorf("Actions() has no %s", runbook.KindScale)
	}
	if _, ok := runbook.Kinds[runbook.KindScale]; !ok {
		t.Errorf("%s is not in runbook.Kinds", runbook.KindScale)
	}
}

func TestListDeployments(t *testing.T) {
	half := kubetest.Deployment(ns, "web", 2)
	half.Status.ReadyReplicas = 1
	cs := newFakeClientset(t, kubetest.Deployment(ns, "worker", 1), half, kubetest.Deployment("other", "web", 5))

	got, err := newTestClient(t, cs, nil).ListDeployments(context.Background(), ns)

	if err != nil {
		t.Fatalf("ListDeployments: %v", err)
	}
	want := []Deployment{{Name: "web", Replicas: 2, ReadyReplicas: 1}, {Name: "worker", Replicas: 1, ReadyReplicas: 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ListDeployments = %+v, want %+v", got, want)
	}
}
