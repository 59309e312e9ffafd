package kube

import (
	"context"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/runbook"
)

var deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")

// newFakeClientset returns client-go's fake clientset holding deps, with the
// deployments/scale subresource mapped onto spec.replicas: the fake does not
// serve it itself (GetScale panics on the empty result, UpdateScale stores
// the Scale in place of the Deployment). An update bumps generation, as the
// API server does for a spec change, so rollout waits see it unobserved.
func newFakeClientset(t *testing.T, deps ...*appsv1.Deployment) *fake.Clientset {
	t.Helper()
	objs := make([]runtime.Object, 0, len(deps))
	for _, d := range deps {
		objs = append(objs, d)
	}
	cs := fake.NewSimpleClientset(objs...)
	tracker := cs.Tracker()
	read := func(ns, name string) (*appsv1.Deployment, error) {
		obj, err := tracker.Get(deploymentsGVR, ns, name)
		if err != nil {
			return nil, err
		}
		return obj.(*appsv1.Deployment).DeepCopy(), nil
	}
	cs.PrependReactor("get", "deployments/scale", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d, err := read(a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		return true, scaleOf(d), nil
	})
	cs.PrependReactor("update", "deployments/scale", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		d, err := read(a.GetNamespace(), s.Name)
		if err != nil {
			return true, nil, err
		}
		if *d.Spec.Replicas != s.Spec.Replicas {
			d.Spec.Replicas = &s.Spec.Replicas
			d.Generation++
		}
		if err := tracker.Update(deploymentsGVR, d, d.Namespace); err != nil {
			return true, nil, err
		}
		return true, scaleOf(d), nil
	})
	return cs
}

func scaleOf(d *appsv1.Deployment) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name, ResourceVersion: d.ResourceVersion},
		Spec:       autoscalingv1.ScaleSpec{Replicas: desired(d)},
		Status:     autoscalingv1.ScaleStatus{Replicas: d.Status.Replicas},
	}
}

// recorder collects what an action saves and reports, safely across the
// controller goroutine and the action.
type recorder struct {
	mu         sync.Mutex
	checkpoint map[string]string
	saves      int
	progress   []string
	onSave     func()
}

func (r *recorder) request(params runbook.Params, checkpoint map[string]string) runbook.Request {
	return runbook.Request{
		RunID: "run-1", StepID: "scale-down", Attempt: 1, Actor: "U123",
		Params: params, Checkpoint: checkpoint,
		Save: func(_ context.Context, cp map[string]string) error {
			r.mu.Lock()
			r.checkpoint, r.saves = cp, r.saves+1
			hook := r.onSave
			r.mu.Unlock()
			if hook != nil {
				hook()
			}
			return nil
		},
		Progress: func(_ context.Context, text string, _ ...runbook.Link) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.progress = append(r.progress, text)
		},
	}
}

func (r *recorder) lastProgress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.progress) == 0 {
		return ""
	}
	return r.progress[len(r.progress)-1]
}

// replicasOf reads each named deployment's spec.replicas.
func replicasOf(t *testing.T, cs kubernetes.Interface, ns string, names ...string) map[string]int {
	t.Helper()
	out := make(map[string]int, len(names))
	for _, n := range names {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get deployment %s/%s: %v", ns, n, err)
		}
		out[n] = int(desired(d))
	}
	return out
}
