package kubetest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
)

// retryAfter is how long PlayController waits after a failed request before
// it tries again.
const retryAfter = 10 * time.Millisecond

// An Option changes how PlayController plays the deployment controller.
type Option func(*controller)

// ObserveReplicas has observe called for every change of a deployment's
// spec.replicas (its creation, or its first sight, included), in the order
// the API server made them, before the controller settles the status.
func ObserveReplicas(observe func(deployment string, replicas int32)) Option {
	return func(c *controller) { c.observe = observe }
}

// OneReplicaEvery makes a rollout move one replica every tick instead of
// finishing at once, so that a wait sees it in progress.
func OneReplicaEvery(tick time.Duration) Option {
	return func(c *controller) { c.tick = tick }
}

// PlayController stands in for the deployment controller, which neither the
// test API server nor client-go's fake clientset runs: it follows the
// deployments of ns (those already there, then every change through a
// watch), and sets each one's status to its spec (observedGeneration and the
// replicas, updated, ready and available counts) as a finished rollout, at
// once or, with OneReplicaEvery, a replica at a time. It stops when the test
// ends.
func PlayController(t testing.TB, cs kubernetes.Interface, ns string, opts ...Option) {
	t.Helper()
	c := &controller{deployments: cs.AppsV1().Deployments(ns), seen: map[string]int32{}, rolling: map[string]bool{}}
	for _, o := range opts {
		o(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	list, err := c.deployments.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("list deployments in %s: %v", ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ticks <-chan time.Time // nil, which never fires, unless OneReplicaEvery
		if c.tick > 0 {
			ticker := time.NewTicker(c.tick)
			defer ticker.Stop()
			ticks = ticker.C
		}
		for i := range list.Items {
			c.handle(ctx, &list.Items[i])
		}
		// Both the API server and the fake clientset send what changed
		// since the list's resource version, so nothing is missed.
		rv := list.ResourceVersion
		for ctx.Err() == nil {
			w, err := c.deployments.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				pause(ctx, retryAfter)
				continue
			}
			rv = c.follow(ctx, w, ticks, rv)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

type controller struct {
	deployments typedappsv1.DeploymentInterface
	observe     func(deployment string, replicas int32) // may be nil
	tick        time.Duration                           // 0: rollouts finish at once
	seen        map[string]int32                        // spec.replicas last observed
	rolling     map[string]bool                         // deployments moving a replica every tick
}

// follow handles the events of w, and moves the rolling deployments on at
// each tick, until w or ctx ends; it returns the resource version to watch
// again from. It selects on ctx itself: the fake clientset's watch does not
// end with it.
func (c *controller) follow(ctx context.Context, w watch.Interface, ticks <-chan time.Time, rv string) string {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv
		case <-ticks:
			for _, name := range slices.Sorted(maps.Keys(c.rolling)) {
				// A failed request is simply tried again next tick.
				if settled, _ := c.step(ctx, name); settled {
					delete(c.rolling, name)
				}
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				// An error, such as a resource version too old: watch
				// again from now; seen keeps changes from repeating.
				return ""
			}
			rv = d.ResourceVersion
			if ev.Type != watch.Deleted {
				c.handle(ctx, d)
			}
		}
	}
}

// handle observes a change of d's spec.replicas, and settles d at once or
// leaves it to the ticks.
func (c *controller) handle(ctx context.Context, d *appsv1.Deployment) {
	n := desired(d)
	if last, ok := c.seen[d.Name]; !ok || last != n {
		c.seen[d.Name] = n
		if c.observe != nil {
			c.observe(d.Name, n)
		}
	}
	if c.tick > 0 {
		c.rolling[d.Name] = true
		return
	}
	// Read again after a conflict or a failed request, until the status
	// is written, or holds already.
	for {
		settled, err := c.step(ctx, d.Name)
		if settled || err == nil || !pause(ctx, retryAfter) {
			return
		}
	}
}

// step reads deployment name and, unless its status holds (settled) or it is
// gone, writes its status one move towards the spec: all the way, or one
// replica when ticking.
func (c *controller) step(ctx context.Context, name string) (settled bool, err error) {
	d, err := c.deployments.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	want, st := desired(d), d.Status
	if st.ObservedGeneration == d.Generation && st.Replicas == want && st.UpdatedReplicas == want &&
		st.ReadyReplicas == want && st.AvailableReplicas == want {
		return true, nil
	}
	n := want
	if c.tick > 0 {
		n = st.Replicas
		switch {
		case n < want:
			n++
		case n > want:
			n--
		}
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
	}
	_, err = c.deployments.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return false, err
}

// desired is d's spec.replicas, which defaults to 1.
func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// pause waits for d and reports whether ctx is still going.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
