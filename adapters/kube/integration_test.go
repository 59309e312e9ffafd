package kube

import (
	"context"
	"maps"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/runbook"
)

// testNamespace is a fresh namespace on the real API server, with an admin
// clientset to set it up and to play the deployment controller.
type testNamespace struct {
	name  string
	admin kubernetes.Interface
}

// newTestNamespace skips the test unless scripts/kube-test-env.sh's API
// server is there, and creates a namespace that is deleted after the test.
func newTestNamespace(t *testing.T) *testNamespace {
	t.Helper()
	admin := kubetest.Clientset(t, kubetest.AdminKubeconfig(t))
	return &testNamespace{name: kubetest.Namespace(t, admin, "drbot-it-"), admin: admin}
}

// client returns drbot's Client built from a kubeconfig, as in production.
func (tn *testNamespace) client(t *testing.T, kubeconfig string, log *zap.Logger) *Client {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	c, err := New(Options{Kubeconfig: kubeconfig, Logger: log, PollInterval: 20 * time.Millisecond, RolloutTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("New(%s): %v", kubeconfig, err)
	}
	return c
}

func run(t *testing.T, c *Client, rec *recorder, params runbook.Params) (runbook.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Actions()[runbook.KindScale].Run(ctx, rec.request(params, nil))
}

func TestIntegrationScaleDownAndRestore(t *testing.T) {
	tn := newTestNamespace(t)
	kubetest.Deploy(t, tn.admin, tn.name, "web", 2)
	kubetest.Deploy(t, tn.admin, tn.name, "worker", 1)
	kubetest.PlayController(t, tn.admin, tn.name, kubetest.OneReplicaEvery(20*time.Millisecond))
	c := tn.client(t, kubetest.AdminKubeconfig(t), nil)

	down := &recorder{}
	res, err := run(t, c, down, runbook.Params{"namespace": tn.name, "deployments": []any{"web", "worker"}, "replicas": 0})
	if err != nil {
		t.Fatalf("scale down: %v", err)
	}
	remembered, _ := res.Remember.(map[string]int)
	if want := map[string]int{"web": 2, "worker": 1}; !maps.Equal(remembered, want) {
		t.Fatalf("Remember = %v, want %v", res.Remember, want)
	}
	if got, want := down.lastProgress(), "web stopped, worker stopped"; got != want {
		t.Errorf("last progress = %q, want %q", got, want)
	}
	if got := replicasOf(t, tn.admin, tn.name, "web", "worker"); !maps.Equal(got, map[string]int{"web": 0, "worker": 0}) {
		t.Errorf("replicas after scale down = %v", got)
	}

	up := &recorder{}
	if _, err := run(t, c, up, runbook.Params{"namespace": tn.name, "replicas": remembered}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := up.lastProgress(), "web 2/2 ready, worker 1/1 ready"; got != want {
		t.Errorf("last progress = %q, want %q", got, want)
	}
	list, err := c.ListDeployments(context.Background(), tn.name)
	if err != nil {
		t.Fatalf("ListDeployments: %v", err)
	}
	want := []Deployment{{Name: "web", Replicas: 2, ReadyReplicas: 2}, {Name: "worker", Replicas: 1, ReadyReplicas: 1}}
	if len(list) != len(want) || list[0] != want[0] || list[1] != want[1] {
		t.Errorf("ListDeployments = %+v, want %+v", list, want)
	}
}

// TestIntegrationConflictRetried changes the deployment while drbot saves
// its checkpoint, between reading the scale and updating it: the API server
// refuses the stale resourceVersion with 409 and drbot reads again. No
// controller runs, so that change is the only other write.
func TestIntegrationConflictRetried(t *testing.T) {
	tn := newTestNamespace(t)
	kubetest.Deploy(t, tn.admin, tn.name, "web", 2)
	core, logs := observer.New(zapcore.InfoLevel)
	c := tn.client(t, kubetest.AdminKubeconfig(t), zap.New(core))

	rec := &recorder{onSave: func() {
		deployments := tn.admin.AppsV1().Deployments(tn.name)
		d, err := deployments.Get(context.Background(), "web", metav1.GetOptions{})
		if err == nil {
			metav1.SetMetaDataAnnotation(&d.ObjectMeta, "drbot.test/touched", "yes")
			_, err = deployments.Update(context.Background(), d, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("touch deployment: %v", err)
		}
	}}
	if _, err := run(t, c, rec, runbook.Params{"namespace": tn.name, "deployments": "web", "replicas": 1, "wait": false}); err != nil {
		t.Fatalf("scale: %v", err)
	}
	if n := logs.FilterMessage("conflict, scale read again").Len(); n != 1 {
		t.Errorf("%d conflicts retried, want 1; logs: %v", n, logs.All())
	}
	if got := replicasOf(t, tn.admin, tn.name, "web"); got["web"] != 1 {
		t.Errorf("replicas = %v, want web: 1", got)
	}
}

func TestIntegrationRefusals(t *testing.T) {
	tests := []struct {
		name    string
		limited bool // act with the limited user, granted read-only access
		params  func(ns string) runbook.Params
		wantErr func(ns string) string
	}{
		{
			name:    "the limited identity may not update the scale",
			limited: true,
			params: func(ns string) runbook.Params {
				return runbook.Params{"namespace": ns, "deployments": "web", "replicas": 0}
			},
			wantErr: func(ns string) string {
				return `forbidden: drbot's identity "drbot-limited" may not update deployments/scale in namespace ` + ns +
					`; grant it the "update" verb on "deployments/scale" in API group "apps"`
			},
		},
		{
			name: "a missing deployment is named",
			params: func(ns string) runbook.Params {
				return runbook.Params{"namespace": ns, "deployments": []any{"web", "wbe"}, "replicas": 0}
			},
			wantErr: func(ns string) string {
				return "deployment " + ns + "/wbe not found; check the namespace and deployment names in drbot.yaml"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newTestNamespace(t)
			kubetest.Deploy(t, tn.admin, tn.name, "web", 2)
			kubeconfig := kubetest.AdminKubeconfig(t)
			if tt.limited {
				kubeconfig = kubetest.LimitedKubeconfig(t)
				kubetest.GrantReadOnly(t, tn.admin, kubeconfig, tn.name)
			}

			_, err := run(t, tn.client(t, kubeconfig, nil), &recorder{}, tt.params(tn.name))

			if want := tt.wantErr(tn.name); err == nil || err.Error() != want {
				t.Fatalf("error = %v\nwant    %s", err, want)
			}
			if runbook.IsRetryable(err) {
				t.Errorf("a refusal must not be retryable: %v", err)
			}
			if got := replicasOf(t, tn.admin, tn.name, "web"); got["web"] != 2 {
				t.Errorf("replicas = %v, want web untouched at 2", got)
			}
		})
	}
}

// TestIntegrationScaleUnderFaults scales down and back up through a proxy
// that fails a quarter of the requests — 503s, timeouts, conflicts, and
// writes carried out whose answer is lost — retrying retryable errors as the
// engine does (the checkpoint carried over). The counts remembered are the
// ones before anything changed, and the deployments end where they should.
func TestIntegrationScaleUnderFaults(t *testing.T) {
	tn := newTestNamespace(t)
	kubetest.Deploy(t, tn.admin, tn.name, "web", 2)
	kubetest.Deploy(t, tn.admin, tn.name, "worker", 1)
	kubetest.PlayController(t, tn.admin, tn.name, kubetest.OneReplicaEvery(10*time.Millisecond))
	proxy := kubetest.NewFaultProxy(t, kubetest.AdminKubeconfig(t), kubetest.Faults{
		Seed: 8, Unavailable: 0.1, Timeouts: 0.05, Lost: 0.3, Conflicts: 0.2})
	c := tn.client(t, proxy.Kubeconfig, zap.NewNop())

	retries := 0
	until := func(params runbook.Params) runbook.Result {
		t.Helper()
		rec := &recorder{}
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			res, err := c.Actions()[runbook.KindScale].Run(ctx, rec.request(params, rec.checkpoint))
			cancel()
			if err == nil {
				return res
			}
			if !runbook.IsRetryable(err) || attempt == 20 {
				t.Fatalf("attempt %d: %v (retryable: %t)", attempt, err, runbook.IsRetryable(err))
			}
			retries++
		}
	}
	down := until(runbook.Params{"namespace": tn.name, "deployments": []any{"web", "worker"}, "replicas": 0})
	remembered, _ := down.Remember.(map[string]int)
	if want := map[string]int{"web": 2, "worker": 1}; !maps.Equal(remembered, want) {
		t.Fatalf("Remember = %v, want the counts before the change, %v", down.Remember, want)
	}
	until(runbook.Params{"namespace": tn.name, "replicas": remembered})
	if got := replicasOf(t, tn.admin, tn.name, "web", "worker"); !maps.Equal(got, map[string]int{"web": 2, "worker": 1}) {
		t.Errorf("replicas after restore = %v", got)
	}
	injected := proxy.Injected()
	if injected[kubetest.FaultLost] == 0 || injected[kubetest.FaultConflict] == 0 || injected[kubetest.FaultUnavailable] == 0 {
		t.Errorf("faults injected %v: each kind at least once, or the test proves little", injected)
	}
	t.Logf("faults %v; %d step retries; %d writes reached the API server", injected, retries, proxy.Writes())
}
