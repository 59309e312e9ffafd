package preflight

import "context"

// Checker is a preflight ready to run: the systems and what to check, built
// once (by cmd, from drbot.yaml and the runbooks) and run on demand: by
// `drbot preflight`, at the start of `drbot serve`, by /dr preflight and
// before /dr start.
type Checker struct {
	Sources Sources
	Targets []Target
	// Slack is drbot's Slack setup; nil leaves the Slack checks out.
	Slack *SlackTarget
}

// Filter chooses what a run checks: the targets of Service and Env ("" for
// all of them), and the Slack setup when Slack is set.
type Filter struct {
	Service, Env string
	Slack        bool
}

// Run checks the targets f chooses.
func (c *Checker) Run(ctx context.Context, f Filter) Result {
	var targets []Target
	for _, t := range c.Targets {
		if (f.Service == "" || t.Service == f.Service) && (f.Env == "" || t.Env == f.Env) {
			targets = append(targets, t)
		}
	}
	var slack *SlackTarget
	if f.Slack {
		slack = c.Slack
	}
	return Run(ctx, c.Sources, targets, slack)
}
