package kube

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/runbook"
)

// deployment returns a valid deployment (the real API server checks the
// selector and template) whose status is settled at replicas.
func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: replicas, AvailableReplicas: replicas,
		},
	}
}

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

// playController stands in for the deployment controller, which neither the
// fake clientset nor the test API server runs: every tick it moves each
// deployment in ns one replica towards its spec and marks the spec observed.
// It stops when the test ends.
func playController(t *testing.T, cs kubernetes.Interface, ns string, tick time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range list.Items {
				reconcileOneStep(ctx, cs, &list.Items[i])
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func reconcileOneStep(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) {
	want, st := desired(d), d.Status
	if st.ObservedGeneration >= d.Generation && st.Replicas == want && st.ReadyReplicas == want && st.UpdatedReplicas == want {
		return
	}
	n := st.Replicas
	switch {
	case n < want:
		n++
	case n > want:
		n--
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
	}
	// A conflict with drbot's own update is simply tried again next tick.
	_, _ = cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
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
