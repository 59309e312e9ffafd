package kube

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/runbook"
)

const ns = "bat-staging"

var deploymentsGR = schema.GroupResource{Group: "apps", Resource: "deployments"}

// failScaleUpdates makes the first n updates of deployments/scale fail with
// err (n < 0: all of them) and counts every update it sees.
func failScaleUpdates(cs *fake.Clientset, n int, err error) *int {
	calls := new(int)
	cs.PrependReactor("update", "deployments/scale", func(k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		if n < 0 || *calls <= n {
			return true, nil, err
		}
		return false, nil, nil
	})
	return calls
}

func forbiddenUpdate(message string) error {
	return apierrors.NewForbidden(deploymentsGR, "web", errors.New(message))
}

func newTestClient(t *testing.T, cs *fake.Clientset, log *zap.Logger) *Client {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	return NewForClientset(cs, Options{Logger: log, PollInterval: 5 * time.Millisecond, RolloutTimeout: 5 * time.Second})
}

func TestScaleAction(t *testing.T) {
	down := runbook.Params{"namespace": ns, "deployments": []any{"web", "worker"}, "replicas": 0}
	tests := []struct {
		name       string
		start      map[string]int32 // deployments and their replicas
		params     runbook.Params
		checkpoint map[string]string
		react      func(cs *fake.Clientset) *int // extra reactors; may count update calls
		noWait     bool                          // no controller plays along

		wantRemember map[string]int
		wantReplicas map[string]int
		wantSummary  string
		wantSaved    string // checkpoint saved; "" means Save was not called
		wantUpdates  int    // update calls the reactor from react counted
		wantErr      string
		wantRetry    bool
	}{
		{
			name:         "scale a list to 0 and remember the counts",
			start:        map[string]int32{"web": 2, "worker": 1},
			params:       down,
			wantRemember: map[string]int{"web": 2, "worker": 1},
			wantReplicas: map[string]int{"web": 0, "worker": 0},
			wantSummary:  "scaled bat-staging/web 2→0, bat-staging/worker 1→0",
			wantSaved:    `{"web":2,"worker":1}`,
		},
		{
			name:         "restore remembered counts from a map",
			start:        map[string]int32{"web": 0, "worker": 0},
			params:       runbook.Params{"namespace": ns, "replicas": map[string]any{"worker": 1, "web": 2.0}},
			wantRemember: map[string]int{"web": 0, "worker": 0},
			wantReplicas: map[string]int{"web": 2, "worker": 1},
			wantSummary:  "scaled bat-staging/web 0→2, bat-staging/worker 0→1",
			wantSaved:    `{"web":0,"worker":0}`,
		},
		{
			name:         "a map with the deployments list too",
			start:        map[string]int32{"web": 0, "worker": 0},
			params:       runbook.Params{"namespace": ns, "deployments": []string{"web", "worker"}, "replicas": map[string]int{"web": 3, "worker": 1}},
			wantRemember: map[string]int{"web": 0, "worker": 0},
			wantReplicas: map[string]int{"web": 3, "worker": 1},
			wantSummary:  "scaled bat-staging/web 0→3, bat-staging/worker 0→1",
			wantSaved:    `{"web":0,"worker":0}`,
		},
		{
			name:         "re-attach after a crash returns the original counts",
			start:        map[string]int32{"web": 0, "worker": 1}, // the crash came after web
			params:       down,
			checkpoint:   map[string]string{checkpointPrevious: `{"web":2,"worker":1}`},
			wantRemember: map[string]int{"web": 2, "worker": 1},
			wantReplicas: map[string]int{"web": 0, "worker": 0},
			wantSummary:  "scaled bat-staging/web 2→0, bat-staging/worker 1→0",
		},
		{
			name:   "conflict is retried by reading again",
			start:  map[string]int32{"web": 2},
			params: runbook.Params{"namespace": ns, "deployments": "web", "replicas": 0},
			react: func(cs *fake.Clientset) *int {
				return failScaleUpdates(cs, 1, apierrors.NewConflict(deploymentsGR, "web", errors.New("the object has been modified")))
			},
			wantRemember: map[string]int{"web": 2},
			wantReplicas: map[string]int{"web": 0},
			wantSummary:  "scaled bat-staging/web 2→0",
			wantSaved:    `{"web":2}`,
			wantUpdates:  2,
		},
		{
			name:         "already at the target",
			start:        map[string]int32{"web": 0, "worker": 1},
			params:       down,
			react:        func(cs *fake.Clientset) *int { return failScaleUpdates(cs, 0, nil) },
			wantRemember: map[string]int{"web": 0, "worker": 1},
			wantReplicas: map[string]int{"web": 0, "worker": 0},
			wantSummary:  "scaled bat-staging/web already 0, bat-staging/worker 1→0",
			wantSaved:    `{"web":0,"worker":1}`,
			wantUpdates:  1,
		},
		{
			name:         "without waiting",
			start:        map[string]int32{"web": 2},
			params:       runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": "1", "wait": false},
			noWait:       true,
			wantRemember: map[string]int{"web": 2},
			wantReplicas: map[string]int{"web": 1},
			wantSummary:  "scaled bat-staging/web 2→1 (rollout not awaited)",
			wantSaved:    `{"web":2}`,
		},
		{
			name:         "missing deployment changes nothing",
			start:        map[string]int32{"web": 2},
			params:       runbook.Params{"namespace": ns, "deployments": []any{"web", "x"}, "replicas": 0},
			wantReplicas: map[string]int{"web": 2},
			wantErr:      "deployment bat-staging/x not found; check the namespace and deployment names in drbot.yaml",
		},
		{
			name:   "forbidden names the verb and resource",
			start:  map[string]int32{"web": 2},
			params: runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": 0},
			react: func(cs *fake.Clientset) *int {
				return failScaleUpdates(cs, -1, forbiddenUpdate(`User "drbot" cannot update resource "deployments/scale" in API group "apps" in the namespace "bat-staging"`))
			},
			wantReplicas: map[string]int{"web": 2},
			wantSaved:    `{"web":2}`,
			wantUpdates:  1,
			wantErr:      `forbidden: drbot's identity "drbot" may not update deployments/scale in namespace bat-staging; grant it the "update" verb on "deployments/scale" in API group "apps"`,
		},
		{
			name:   "forbidden by another authorizer falls back to the call made",
			start:  map[string]int32{"web": 2},
			params: runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": 0},
			react: func(cs *fake.Clientset) *int {
				return failScaleUpdates(cs, -1, forbiddenUpdate("denied by policy"))
			},
			wantReplicas: map[string]int{"web": 2},
			wantSaved:    `{"web":2}`,
			wantUpdates:  1,
			wantErr:      `forbidden: drbot's identity may not update deployments/scale in namespace bat-staging; grant it the "update" verb on "deployments/scale" in API group "apps"`,
		},
		{
			name:   "too many requests is retryable",
			start:  map[string]int32{"web": 2},
			params: runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": 0},
			react: func(cs *fake.Clientset) *int {
				return failScaleUpdates(cs, -1, apierrors.NewTooManyRequests("slow down", 1))
			},
			wantReplicas: map[string]int{"web": 2},
			wantSaved:    `{"web":2}`,
			wantUpdates:  1,
			wantErr:      "scale bat-staging/web to 0: slow down",
			wantRetry:    true,
		},
		{
			name:   "endless conflicts are retryable",
			start:  map[string]int32{"web": 2},
			params: runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": 0},
			react: func(cs *fake.Clientset) *int {
				return failScaleUpdates(cs, -1, apierrors.NewConflict(deploymentsGR, "web", errors.New("the object has been modified")))
			},
			wantReplicas: map[string]int{"web": 2},
			wantSaved:    `{"web":2}`,
			wantUpdates:  5, // retry.DefaultRetry.Steps
			wantErr:      "scale bat-staging/web to 0: Operation cannot be fulfilled",
			wantRetry:    true,
		},
		{
			name:         "no deployments",
			start:        map[string]int32{"web": 2},
			params:       runbook.Params{"namespace": ns, "deployments": []any{}, "replicas": 0},
			wantReplicas: map[string]int{"web": 2},
			wantErr:      `no deployments to scale`,
		},
		{
			name:         "no replicas",
			start:        map[string]int32{"web": 2},
			params:       runbook.Params{"namespace": ns, "deployments": []any{"web"}},
			wantReplicas: map[string]int{"web": 2},
			wantErr:      `parameter "replicas" is missing (give a number with "deployments", or a mapping deployment: count)`,
		},
		{
			name:         "negative replicas",
			start:        map[string]int32{"web": 2},
			params:       runbook.Params{"namespace": ns, "deployments": []any{"web"}, "replicas": -1},
			wantReplicas: map[string]int{"web": 2},
			wantErr:      `replicas for deployment "web" is -1; want 0 or more`,
		},
		{
			name:         "a listed deployment missing from the map",
			start:        map[string]int32{"web": 0},
			params:       runbook.Params{"namespace": ns, "deployments": []any{"web", "worker"}, "replicas": map[string]any{"web": 2}},
			wantReplicas: map[string]int{"web": 0},
			wantErr:      `parameter "replicas" has no count for deployment "worker"`,
		},
		{
			name:         "a checkpoint without a target",
			start:        map[string]int32{"web": 0, "worker": 1},
			params:       down,
			checkpoint:   map[string]string{checkpointPrevious: `{"web":2}`},
			wantReplicas: map[string]int{"web": 0, "worker": 1},
			wantErr:      "checkpoint has no previous count for deployment bat-staging/worker",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var deps []*appsv1.Deployment
			for _, name := range runbook.SortedKeys(tt.start) {
				deps = append(deps, kubetest.Deployment(ns, name, tt.start[name]))
			}
			cs := newFakeClientset(t, deps...)
			var updates *int
			if tt.react != nil {
				updates = tt.react(cs)
			}
			if !tt.noWait {
				kubetest.PlayController(t, cs, ns, kubetest.OneReplicaEvery(2*time.Millisecond))
			}
			rec := &recorder{}

			res, err := newTestClient(t, cs, nil).Actions()[runbook.KindScale].Run(context.Background(), rec.request(tt.params, tt.checkpoint))

			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if got := runbook.IsRetryable(err); got != tt.wantRetry {
					t.Errorf("IsRetryable = %v, want %v (%v)", got, tt.wantRetry, err)
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, _ := res.Remember.(map[string]int); tt.wantRemember != nil && !maps.Equal(got, tt.wantRemember) {
				t.Errorf("Remember = %v, want %v", res.Remember, tt.wantRemember)
			}
			if res.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", res.Summary, tt.wantSummary)
			}
			if got := rec.checkpoint[checkpointPrevious]; got != tt.wantSaved {
				t.Errorf("saved checkpoint = %q, want %q", got, tt.wantSaved)
			}
			if updates != nil && *updates != tt.wantUpdates {
				t.Errorf("scale updates = %d, want %d", *updates, tt.wantUpdates)
			}
			if got := replicasOf(t, cs, ns, runbook.SortedKeys(tt.wantReplicas)...); !maps.Equal(got, tt.wantReplicas) {
				t.Errorf("replicas after = %v, want %v", got, tt.wantReplicas)
			}
		})
	}
}

// TestScaleSavesBeforeScaling checks the checkpoint is written before the
// first change, which is what makes a re-attach return the original counts.
func TestScaleSavesBeforeScaling(t *testing.T) {
	cs := newFakeClientset(t, kubetest.Deployment(ns, "web", 2))
	kubetest.PlayController(t, cs, ns, kubetest.OneReplicaEvery(2*time.Millisecond))
	rec := &recorder{}
	rec.onSave = func() {
		for _, a := range cs.Actions() {
			if a.GetVerb() == "update" && a.GetSubresource() == "scale" {
				t.Errorf("scale updated before the checkpoint was saved")
			}
		}
	}
	req := rec.request(runbook.Params{"namespace": ns, "deployments": "web", "replicas": 0}, nil)
	if _, err := newTestClient(t, cs, nil).Actions()[runbook.KindScale].Run(context.Background(), req); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rec.saves != 1 {
		t.Errorf("Save called %d times, want 1", rec.saves)
	}
}

func TestScaleReportsProgressAndLogs(t *testing.T) {
	cs := newFakeClientset(t, kubetest.Deployment(ns, "web", 0), kubetest.Deployment(ns, "worker", 0))
	kubetest.PlayController(t, cs, ns, kubetest.OneReplicaEvery(2*time.Millisecond))
	core, logs := observer.New(zapcore.InfoLevel)
	rec := &recorder{}
	req := rec.request(runbook.Params{"namespace": ns, "replicas": map[string]int{"web": 3, "worker": 1}}, nil)

	if _, err := newTestClient(t, cs, zap.New(core)).Actions()[runbook.KindScale].Run(context.Background(), req); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got, want := rec.lastProgress(), "web 3/3 ready, worker 1/1 ready"; got != want {
		t.Errorf("last progress = %q, want %q (all: %q)", got, want, rec.progress)
	}
	if first := rec.progress[0]; first == rec.lastProgress() {
		t.Errorf("progress reported only the end: %q", rec.progress)
	}
	updated := logs.FilterMessage("scale updated").All()
	if len(updated) != 2 {
		t.Fatalf("%d 'scale updated' logs, want 2", len(updated))
	}
	fields := updated[0].ContextMap()
	for k, want := range map[string]any{"run_id": "run-1", "step_id": "scale-down", "namespace": ns, "deployment": "web", "from": int32(0), "to": int64(3)} {
		if fields[k] != want {
			t.Errorf("log field %s = %v, want %v", k, fields[k], want)
		}
	}
}

// TestScaleWaitFails covers a rollout that never completes: the Result still
// carries the counts to remember next to the error.
func TestScaleWaitFails(t *testing.T) {
	tests := []struct {
		name             string
		cancelOnProgress bool // the step is cancelled once the wait has begun
		wantErr          string
		wantIs           error
	}{
		{
			name:    "rollout timeout",
			wantErr: "rollout in bat-staging did not reach its target within 50ms (web 2 left)",
			wantIs:  context.DeadlineExceeded,
		},
		{
			name:             "step cancelled",
			cancelOnProgress: true,
			wantErr:          "wait for rollout in bat-staging (web 2 left)",
			wantIs:           context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFakeClientset(t, kubetest.Deployment(ns, "web", 2)) // no controller: nothing ever moves
			c := NewForClientset(cs, Options{Logger: zaptest.NewLogger(t), PollInterval: 5 * time.Millisecond, RolloutTimeout: 50 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := (&recorder{}).request(runbook.Params{"namespace": ns, "deployments": "web", "replicas": 0}, nil)
			if tt.cancelOnProgress {
				req.Progress = func(context.Context, string, ...runbook.Link) { cancel() }
			}

			res, err := c.Actions()[runbook.KindScale].Run(ctx, req)

			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if runbook.IsRetryable(err) {
				t.Errorf("a failed wait must not be retryable: %v", err)
			}
			if got, _ := res.Remember.(map[string]int); !maps.Equal(got, map[string]int{"web": 2}) {
				t.Errorf("Remember = %v, want map[web:2]", res.Remember)
			}
		})
	}
}
