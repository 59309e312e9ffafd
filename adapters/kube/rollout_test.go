package kube

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
)

func TestRolloutState(t *testing.T) {
	// status builds a deployment with spec replicas, generation 2 and the
	// given status counts.
	status := func(spec int32, observed int64, replicas, updated, ready int32) *appsv1.Deployment {
		d := kubetest.Deployment(ns, "web", spec)
		d.Generation = 2
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready}
		return d
	}
	timedOut := status(2, 2, 2, 1, 1)
	timedOut.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
		Reason: progressDeadlineExceeded, Message: `ReplicaSet "web-1" has timed out progressing.`,
	}}
	tests := []struct {
		name      string
		d         *appsv1.Deployment
		target    int
		wantState string
		wantDone  bool
		wantErr   string
	}{
		{"stopped", status(0, 2, 0, 0, 0), 0, "web stopped", true, ""},
		{"stopped but spec not yet observed", status(0, 1, 0, 0, 0), 0, "web stopped", false, ""},
		{"replicas left", status(0, 2, 1, 1, 1), 0, "web 1 left", false, ""},
		{"all ready", status(2, 2, 2, 2, 2), 2, "web 2/2 ready", true, ""},
		{"some ready", status(2, 2, 2, 2, 1), 2, "web 1/2 ready", false, ""},
		{"ready but spec not yet observed", status(2, 1, 2, 2, 2), 2, "web 2/2 ready", false, ""},
		{"old replicas remain", status(2, 2, 3, 2, 2), 2, "web 2/2 ready", false, ""},
		{"not all updated", status(2, 2, 2, 1, 2), 2, "web 2/2 ready", false, ""},
		{"progress deadline exceeded", timedOut, 2, "", false, `rollout of bat-staging/web exceeded its progress deadline (web 1/2 ready): ReplicaSet "web-1" has timed out progressing.`},
		{"rescaled by an autoscaler", status(3, 2, 3, 3, 2), 2, "web 2/3 ready (set to 3 by someone else)", false, ""},
		{"rescaled by an autoscaler and ready", status(3, 2, 3, 3, 3), 2, "web 3/3 ready (set to 3 by someone else)", true, ""},
		{"started by someone else", status(1, 2, 1, 1, 1), 0, "", false, "deployment bat-staging/web has 1 replicas, not 0: scaled by someone else"},
		{"stopped by someone else", status(0, 2, 0, 0, 0), 2, "", false, "deployment bat-staging/web has 0 replicas, not 2: scaled by someone else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, done, err := rolloutState(tt.d, tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("rolloutState: %v", err)
			}
			if state != tt.wantState || done != tt.wantDone {
				t.Errorf("rolloutState = %q, %v; want %q, %v", state, done, tt.wantState, tt.wantDone)
			}
		})
	}
	if _, _, err := rolloutState(status(0, 2, 0, 0, 0), 2); !errors.Is(err, errScaledElsewhere) {
		t.Errorf("error %v is not errScaledElsewhere", err)
	}
}
