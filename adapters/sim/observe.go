package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

var _ runbook.Observer = action{}

// Observe reads, changing nothing, what a step of the action's kind would
// remember: the simulated replica counts or required approvals now. Other
// kinds remember nothing that can be read back, and report nil.
func (a action) Observe(_ context.Context, req runbook.Request) (any, error) {
	s := a.sim
	switch a.kind {
	case runbook.KindScale:
		spec, err := runbook.DecodeScale(req.Params)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		counts := map[string]int{}
		for _, t := range spec.Targets {
			counts[t.Deployment] = s.replicaLocked(spec.Namespace, t.Deployment, len(counts) == 0)
		}
		return counts, nil
	case runbook.KindRequiredApprovals:
		spec, err := runbook.DecodeApprovals(req.Params)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.approvalsLocked(spec.Repo.String() + "@" + spec.Branch), nil
	}
	return nil, nil
}

var _ runbook.Linker = action{}

// Links points a simulated workflow step at its file on github.com, as the
// real adapter does on the configured GitHub.
func (a action) Links(p runbook.Params) []runbook.Link {
	if a.kind != runbook.KindWorkflow {
		return nil
	}
	spec, err := runbook.DecodeWorkflow(p)
	if err != nil {
		return nil
	}
	return []runbook.Link{{Label: "workflow file " + spec.File, URL: fmt.Sprintf("https://github.com/%s/blob/%s/.github/workflows/%s", spec.Repo, spec.Ref, spec.File)}}
}

// SimulatedImageSHA is the commit every simulated deployment's image is
// tagged with.
const SimulatedImageSHA = "5e1f7a3c9b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f"

// image reads a simulated deployment's image: always tagged with
// SimulatedImageSHA.
func (s *Sim) image(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeImage(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	s.record(runbook.KindImage, req, "read")
	image := fmt.Sprintf("ghcr.io/dfe-digital/%s:%s", spec.Deployment, SimulatedImageSHA)
	sha, err := runbook.ImageCommit(image)
	if err != nil {
		return runbook.Result{}, err
	}
	return runbook.Result{Summary: fmt.Sprintf("%s/%s runs %s: the deploy gets commit %s", spec.Namespace, spec.Deployment, image, sha), Remember: sha}, s.wait(ctx, 1)
}

// nightlies are the simulated nightly backups, newest first: the last
// three days'.
func (s *Sim) nightlies() []string {
	out := make([]string, 3)
	for i := range out {
		out[i] = "nightly_" + s.opts.Clock.Now().Add(-time.Duration(i+1)*24*time.Hour).Format("2006-01-02") + runbook.BackupSuffix
	}
	return out
}

// chooser is the simulated backups.list: the one kind a person may choose
// for, as with the real adapter.
type chooser struct{ action }

var _ runbook.Chooser = chooser{}

// Choices lists the simulated backups.
func (c chooser) Choices(_ context.Context, req runbook.Request) ([]runbook.Choice, error) {
	if _, err := runbook.DecodeBackups(req.Params); err != nil {
		return nil, err
	}
	var out []runbook.Choice
	for i, b := range c.sim.nightlies() {
		out = append(out, runbook.Choice{Value: b, Label: fmt.Sprintf("%s (%s, %dh ago)", b, simBackupSize, 24*(i+1))})
	}
	return out, nil
}
