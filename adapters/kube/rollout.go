package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/runbook"
)

// waitRollouts polls the targets' deployments until every rollout has reached
// its target, ctx ends or the Client's rollout timeout passes. It reports
// progress ("web 1/2 ready, worker 0/1 ready") each time it changes. A failed
// read that is transient is logged and polled again.
func (c *Client) waitRollouts(ctx context.Context, log *zap.Logger, ns string, targets []runbook.ScaleTarget, progress func(context.Context, string)) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.rolloutTimeout)
	defer cancel()
	tick := time.NewTicker(c.pollInterval)
	defer tick.Stop()

	last := ""
	for {
		states, done, err := c.rollouts(ctx, ns, targets)
		switch {
		case err == nil:
			if text := strings.Join(states, ", "); text != last {
				last = text
				progress(parent, text)
			}
			if done {
				return nil
			}
		case runbook.IsRetryable(err) && ctx.Err() == nil:
			log.Warn("rollout status read failed, polling again", zap.Error(err))
		case ctx.Err() == nil:
			return err
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("wait for rollout in %s (%s): %w", ns, last, parent.Err())
			}
			return fmt.Errorf("rollout in %s did not reach its target within %s (%s): %w",
				ns, c.rolloutTimeout, last, context.DeadlineExceeded)
		case <-tick.C:
		}
	}
}

// rollouts reads each target's deployment and says how far its rollout is.
// done is true when all of them have reached their targets.
func (c *Client) rollouts(ctx context.Context, ns string, targets []runbook.ScaleTarget) (states []string, done bool, err error) {
	done = true
	for _, t := range targets {
		d, err := c.cs.AppsV1().Deployments(ns).Get(ctx, t.Deployment, metav1.GetOptions{})
		if err != nil {
			o := op{verb: "get", resource: "deployments", namespace: ns, name: t.Deployment}
			return nil, false, o.apiError(ctx, fmt.Sprintf("read rollout of %s/%s", ns, t.Deployment), err)
		}
		state, ok, err := rolloutState(d, t.Replicas)
		if err != nil {
			return nil, false, err
		}
		states = append(states, state)
		done = done && ok
	}
	return states, done, nil
}

// errScaledElsewhere means someone stopped or started a deployment while
// drbot waited for the opposite.
var errScaledElsewhere = errors.New("scaled by someone else while drbot waited")

// rolloutState describes d's rollout towards target replicas and reports
// whether it is complete: the controller has seen the latest spec
// (observedGeneration >= generation) and, for 0, no replicas are left, else
// all replicas are updated and ready and no old ones remain. If someone (an
// autoscaler, say) changes a non-zero target to another non-zero count, the
// rollout to that count is awaited; a stopped deployment started again, or
// the reverse, is an error. A rollout past its progress deadline is an
// error, as for `kubectl rollout status`.
func rolloutState(d *appsv1.Deployment, target int) (state string, done bool, err error) {
	want := desired(d)
	if (want == 0) != (target == 0) {
		return "", false, fmt.Errorf("deployment %s/%s has %d replicas, not %d: %w", d.Namespace, d.Name, want, target, errScaledElsewhere)
	}
	st := d.Status
	observed := st.ObservedGeneration >= d.Generation
	if want == 0 {
		done = observed && st.Replicas == 0
		if st.Replicas == 0 {
			return d.Name + " stopped", done, nil
		}
		return fmt.Sprintf("%s %d left", d.Name, st.Replicas), done, nil
	}
	state = fmt.Sprintf("%s %d/%d ready", d.Name, st.ReadyReplicas, want)
	if int(want) != target {
		state += fmt.Sprintf(" (set to %d by someone else)", want)
	}
	if observed {
		for _, cond := range st.Conditions {
			if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == progressDeadlineExceeded {
				return "", false, fmt.Errorf("rollout of %s/%s exceeded its progress deadline (%s): %s", d.Namespace, d.Name, state, cond.Message)
			}
		}
	}
	done = observed && st.Replicas == want && st.UpdatedReplicas == want && st.ReadyReplicas >= want
	return state, done, nil
}

// desired is a deployment's spec.replicas; the API defaults it to 1.
func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// progressDeadlineExceeded is the Progressing condition's reason once a
// rollout passes spec.progressDeadlineSeconds (TimedOutReason in
// k8s.io/kubernetes/pkg/controller/deployment/util).
const progressDeadlineExceeded = "ProgressDeadlineExceeded"
