package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/drbot-dev/drbot/runbook"
)

// KindScale is the action kind ScaleAction implements.
const KindScale = "kubernetes.scale"

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

// scaleTarget is one deployment and the count it must reach.
type scaleTarget struct {
	name     string
	replicas int
}

// Run scales the step's deployments and waits for their rollouts. When the
// wait fails after the scale, the Result still carries Remember next to the
// error, so the counts before the change are not lost.
func (a *ScaleAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	ns, err := req.Params.String("namespace")
	if err != nil {
		return runbook.Result{}, err
	}
	targets, err := parseTargets(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	wait := req.Params.Bool("wait", true)
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
			previous[t.name] = int(scales[t.name].Spec.Replicas)
		}
		if err := saveCheckpoint(ctx, req, previous); err != nil {
			return runbook.Result{}, err
		}
	}

	changes := make([]string, 0, len(targets))
	for _, t := range targets {
		if err := a.c.setReplicas(ctx, log, ns, t, scales[t.name], previous[t.name]); err != nil {
			return runbook.Result{Remember: previous}, err
		}
		if previous[t.name] == t.replicas {
			changes = append(changes, fmt.Sprintf("%s/%s already %d", ns, t.name, t.replicas))
		} else {
			changes = append(changes, fmt.Sprintf("%s/%s %d→%d", ns, t.name, previous[t.name], t.replicas))
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

// parseTargets reads deployments+replicas (one count for all) or replicas as
// a mapping (a count each). With a mapping, deployments may still be given
// (a runbook may pass both); each listed deployment must then have a count.
func parseTargets(p runbook.Params) ([]scaleTarget, error) {
	var targets []scaleTarget
	if _, isMap := p.Map("replicas"); isMap {
		counts, err := p.IntMap("replicas")
		if err != nil {
			return nil, err
		}
		if names, err := p.Strings("deployments"); err == nil {
			for _, n := range names {
				if _, ok := counts[n]; !ok {
					return nil, fmt.Errorf("parameter \"replicas\" has no count for deployment %q", n)
				}
			}
		}
		for _, n := range runbook.SortedKeys(counts) {
			targets = append(targets, scaleTarget{name: n, replicas: counts[n]})
		}
	} else {
		n, err := p.Int("replicas")
		if err != nil {
			return nil, fmt.Errorf("%w (give a number with \"deployments\", or a mapping deployment: count)", err)
		}
		names, err := p.Strings("deployments")
		if err != nil {
			return nil, err
		}
		seen := make(map[string]bool, len(names))
		for _, name := range names {
			if !seen[name] {
				seen[name] = true
				targets = append(targets, scaleTarget{name: name, replicas: n})
			}
		}
	}
	if len(targets) == 0 {
		return nil, errors.New("no deployments to scale: parameter \"deployments\" or \"replicas\" is empty")
	}
	for _, t := range targets {
		if strings.TrimSpace(t.name) == "" {
			return nil, errors.New("parameter \"deployments\" has an empty name")
		}
		if t.replicas < 0 || t.replicas > math.MaxInt32 {
			return nil, fmt.Errorf("replicas for deployment %q is %d; want 0 or more", t.name, t.replicas)
		}
	}
	return targets, nil
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
func (c *Client) readScales(ctx context.Context, ns string, targets []scaleTarget, known map[string]int) (map[string]*autoscalingv1.Scale, error) {
	scales := make(map[string]*autoscalingv1.Scale, len(targets))
	for _, t := range targets {
		if known != nil {
			if _, ok := known[t.name]; !ok {
				return nil, fmt.Errorf("checkpoint has no previous count for deployment %s/%s; the step's deployments changed since it started", ns, t.name)
			}
		}
		o := op{verb: "get", resource: "deployments/scale", namespace: ns, name: t.name}
		s, err := c.cs.AppsV1().Deployments(ns).GetScale(ctx, t.name, metav1.GetOptions{})
		if err != nil {
			return nil, o.apiError(ctx, fmt.Sprintf("read replicas of %s/%s", ns, t.name), err)
		}
		scales[t.name] = s
	}
	return scales, nil
}

// setReplicas sets t's replicas through the scale subresource. The first
// update uses s, read before the checkpoint was saved; on a conflict (someone
// changed the deployment meanwhile) it reads the scale again and retries.
func (c *Client) setReplicas(ctx context.Context, log *zap.Logger, ns string, t scaleTarget, s *autoscalingv1.Scale, previous int) error {
	deployments := c.cs.AppsV1().Deployments(ns)
	get := op{verb: "get", resource: "deployments/scale", namespace: ns, name: t.name}
	update := op{verb: "update", resource: "deployments/scale", namespace: ns, name: t.name}
	failed, first := update, true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			var err error
			if s, err = deployments.GetScale(ctx, t.name, metav1.GetOptions{}); err != nil {
				failed = get
				return err
			}
			log.Info("conflict, scale read again", zap.String("deployment", t.name),
				zap.Int32("replicas", s.Spec.Replicas), zap.String("resource_version", s.ResourceVersion))
			if n := int(s.Spec.Replicas); n != previous && n != t.replicas {
				log.Warn("replicas changed by someone else since they were remembered", zap.String("deployment", t.name),
					zap.Int("remembered", previous), zap.Int("now", n))
			}
		}
		first = false
		if int(s.Spec.Replicas) == t.replicas {
			log.Info("already at target", zap.String("deployment", t.name), zap.Int("replicas", t.replicas))
			return nil
		}
		next := s.DeepCopy()
		next.Spec.Replicas = int32(t.replicas)
		failed = update
		if _, err := deployments.UpdateScale(ctx, t.name, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
		log.Info("scale updated", zap.String("deployment", t.name),
			zap.Int32("from", s.Spec.Replicas), zap.Int("to", t.replicas))
		return nil
	})
	if err != nil {
		return failed.apiError(ctx, fmt.Sprintf("scale %s/%s to %d", ns, t.name, t.replicas), err)
	}
	return nil
}
