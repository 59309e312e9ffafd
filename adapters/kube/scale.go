package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/drbot-dev/drbot/runbook"
)

// checkpointPrevious is the checkpoint key under which ScaleAction saves the
// replica counts it read before changing anything (JSON, deployment->count).
const checkpointPrevious = "previous_replicas"

var _ runbook.Action = (*ScaleAction)(nil)

// ScaleAction implements kubernetes.scale. Parameters:
//
//	namespace:   the deployments' namespace
//	deployments: a list of deployment names, with replicas a number: scale
//	             each to that number
//	replicas:    a number (with deployments), or a mapping deployment->count
//	             to restore exactly those counts (a remembered scale-down)
//	wait:        wait for the rollout to reach the target (default true)
//
// It reads every deployment's replicas through the scale subresource before
// changing any, saves them in the step's checkpoint, scales with the scale
// subresource (RBAC: get and update on deployments/scale, as `kubectl scale`),
// waits for the rollout (RBAC: get on deployments) and returns the counts it
// read as Result.Remember (map[string]int). Re-attached after a crash, it
// returns the counts from the checkpoint: the ones before the first attempt
// acted, not the ones it left.
type ScaleAction struct {
	c *Client
}

// Run scales the step's deployments and waits for their rollouts. When the
// wait fails after the scale, the Result still carries Remember next to the
// error, so the counts before the change are not lost.
func (a *ScaleAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeScale(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	ns, targets, wait := spec.Namespace, spec.Targets, spec.Wait
	log := a.c.log.With(zap.String("run_id", req.RunID), zap.String("step_id", req.StepID),
		zap.Int("attempt", req.Attempt), zap.String("namespace", ns))

	previous, err := checkpointed(req.Checkpoint)
	if err != nil {
		return runbook.Result{}, err
	}
	if previous != nil {
		log.Info("re-attaching to scale", zap.Any("previous_replicas", previous))
	}
	scales, err := a.c.readScales(ctx, ns, targets, previous)
	if err != nil {
		return runbook.Result{}, err
	}
	if previous == nil {
		previous = make(map[string]int, len(targets))
		for _, t := range targets {
			previous[t.Deployment] = int(scales[t.Deployment].Spec.Replicas)
		}
		if err := saveCheckpoint(ctx, req, previous); err != nil {
			return runbook.Result{}, err
		}
	}

	changes := make([]string, 0, len(targets))
	for _, t := range targets {
		if err := a.c.setReplicas(ctx, log, ns, t, scales[t.Deployment], previous[t.Deployment]); err != nil {
			return runbook.Result{Remember: previous}, err
		}
		if previous[t.Deployment] == t.Replicas {
			changes = append(changes, fmt.Sprintf("%s/%s already %d", ns, t.Deployment, t.Replicas))
		} else {
			changes = append(changes, fmt.Sprintf("%s/%s %d→%d", ns, t.Deployment, previous[t.Deployment], t.Replicas))
		}
	}
	res := runbook.Result{Summary: "scaled " + strings.Join(changes, ", "), Remember: previous}
	if !wait {
		res.Summary += " (rollout not awaited)"
		return res, nil
	}
	if err := a.c.waitRollouts(ctx, log, ns, targets, progressFunc(req)); err != nil {
		return res, err
	}
	log.Info("scaled", zap.String("summary", res.Summary))
	return res, nil
}

// checkpointed returns the counts an earlier process saved, or nil.
func checkpointed(cp map[string]string) (map[string]int, error) {
	raw, ok := cp[checkpointPrevious]
	if !ok {
		return nil, nil
	}
	var previous map[string]int
	if err := json.Unmarshal([]byte(raw), &previous); err != nil {
		return nil, fmt.Errorf("checkpoint %s %q: %w", checkpointPrevious, raw, err)
	}
	return previous, nil
}

// saveCheckpoint persists previous before the first change, so a process
// that crashes mid-scale re-attaches with the original counts.
func saveCheckpoint(ctx context.Context, req runbook.Request, previous map[string]int) error {
	if req.Save == nil {
		return nil
	}
	raw, err := json.Marshal(previous) // map keys marshal sorted
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := req.Save(ctx, map[string]string{checkpointPrevious: string(raw)}); err != nil {
		return fmt.Errorf("save checkpoint before scaling: %w", err)
	}
	return nil
}

func progressFunc(req runbook.Request) func(context.Context, string) {
	return func(ctx context.Context, text string) {
		if req.Progress != nil {
			req.Progress(ctx, text)
		}
	}
}

// readScales reads each target's scale subresource before anything changes,
// so a missing deployment or a refused read stops the step untouched. It
// also checks that a checkpoint (known) covers every target.
func (c *Client) readScales(ctx context.Context, ns string, targets []runbook.ScaleTarget, known map[string]int) (map[string]*autoscalingv1.Scale, error) {
	scales := make(map[string]*autoscalingv1.Scale, len(targets))
	for _, t := range targets {
		if known != nil {
			if _, ok := known[t.Deployment]; !ok {
				return nil, fmt.Errorf("checkpoint has no previous count for deployment %s/%s; the step's deployments changed since it started", ns, t.Deployment)
			}
		}
		o := op{verb: "get", resource: "deployments/scale", namespace: ns, name: t.Deployment}
		s, err := c.cs.AppsV1().Deployments(ns).GetScale(ctx, t.Deployment, metav1.GetOptions{})
		if err != nil {
			return nil, o.apiError(ctx, fmt.Sprintf("read replicas of %s/%s", ns, t.Deployment), err)
		}
		scales[t.Deployment] = s
	}
	return scales, nil
}

// setReplicas sets t's replicas through the scale subresource. The first
// update uses s, read before the checkpoint was saved; on a conflict (someone
// changed the deployment meanwhile) it reads the scale again and retries.
func (c *Client) setReplicas(ctx context.Context, log *zap.Logger, ns string, t runbook.ScaleTarget, s *autoscalingv1.Scale, previous int) error {
	deployments := c.cs.AppsV1().Deployments(ns)
	get := op{verb: "get", resource: "deployments/scale", namespace: ns, name: t.Deployment}
	update := op{verb: "update", resource: "deployments/scale", namespace: ns, name: t.Deployment}
	failed, first := update, true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			var err error
			if s, err = deployments.GetScale(ctx, t.Deployment, metav1.GetOptions{}); err != nil {
				failed = get
				return err
			}
			log.Info("conflict, scale read again", zap.String("deployment", t.Deployment),
				zap.Int32("replicas", s.Spec.Replicas), zap.String("resource_version", s.ResourceVersion))
			if n := int(s.Spec.Replicas); n != previous && n != t.Replicas {
				log.Warn("replicas changed by someone else since they were remembered", zap.String("deployment", t.Deployment),
					zap.Int("remembered", previous), zap.Int("now", n))
			}
		}
		first = false
		if int(s.Spec.Replicas) == t.Replicas {
			log.Info("already at target", zap.String("deployment", t.Deployment), zap.Int("replicas", t.Replicas))
			return nil
		}
		next := s.DeepCopy()
		next.Spec.Replicas = int32(t.Replicas)
		failed = update
		if _, err := deployments.UpdateScale(ctx, t.Deployment, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
		log.Info("scale updated", zap.String("deployment", t.Deployment),
			zap.Int32("from", s.Spec.Replicas), zap.Int("to", t.Replicas))
		return nil
	})
	if err != nil {
		return failed.apiError(ctx, fmt.Sprintf("scale %s/%s to %d", ns, t.Deployment, t.Replicas), err)
	}
	return nil
}

var _ runbook.Observer = (*ScaleAction)(nil)

// Observe reads the deployments' replica counts now, changing nothing: what a
// skipped scale-down would have remembered.
func (a *ScaleAction) Observe(ctx context.Context, req runbook.Request) (any, error) {
	spec, err := runbook.DecodeScale(req.Params)
	if err != nil {
		return nil, err
	}
	scales, err := a.c.readScales(ctx, spec.Namespace, spec.Targets, nil)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(scales))
	for name, s := range scales {
		counts[name] = int(s.Spec.Replicas)
	}
	return counts, nil
}
