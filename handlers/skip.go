package handlers

import (
	"context"
	"fmt"

	"github.com/drbot-dev/drbot/runbook"
)

// skipHint tells a Skip click on a step whose remembered value a later step
// needs what to type instead: the Skip button cannot carry that value, so
// drbot changes nothing and shows the /dr skip command, filled in with what
// the system holds now.
func (h *Handler) skipHint(ctx context.Context, c Click) (Reply, bool) {
	need, err := h.opts.Engine.SkipNeeds(ctx, c.RunID, c.StepID)
	if err != nil || need == nil {
		return Reply{}, false // Skip itself reports any error
	}
	value := need.Current
	if value == "" {
		value = "…"
	}
	v, err := h.opts.Engine.View(ctx, c.RunID)
	title := c.StepID
	if err == nil {
		for _, s := range v.Steps {
			if s.Step.ID == c.StepID {
				title = s.Step.Title
			}
		}
	}
	cmd := Command{Verb: VerbSkip, StepID: c.StepID, Inputs: map[string]string{need.Name: value}}
	return Reply{Text: fmt.Sprintf("Not skipped: %s.\nTo skip it, give the value: `/dr %s` (or approve %q instead).",
		need.Text(runbook.Step{Title: title}), cmd.String(), title)}, true
}

// skip skips a step of the channel's run with the value a later step needs.
func (h *Handler) skip(ctx context.Context, req Request, cmd Command) Reply {
	if r, ok := h.mayAct(ctx, h.opts.Approvers, req.UserID, "skip a step"); !ok {
		return r
	}
	run, err := h.findRun(ctx, req.ChannelID, "")
	if err != nil {
		return h.refusal(err)
	}
	need, err := h.opts.Engine.SkipNeeds(ctx, run.ID, cmd.StepID)
	if err != nil {
		return h.refusal(err)
	}
	var name, value string
	for k, v := range cmd.Inputs {
		name, value = k, v
	}
	switch {
	case need == nil:
		return Reply{Text: fmt.Sprintf("Step %s needs no value to be skipped; use its Skip button.", cmd.StepID)}
	case name != need.Name:
		return Reply{Text: fmt.Sprintf("Step %s remembers %s, not %s: `/dr skip %s %s=<%s>`.", cmd.StepID, need.Name, name, cmd.StepID, need.Name, need.Help)}
	}
	if err := h.opts.Engine.SkipWithValue(ctx, run.ID, cmd.StepID, 0, req.UserID, cmd.Text, value); err != nil {
		return h.refusal(err)
	}
	return Reply{Text: fmt.Sprintf("Skipped %s on %s with %s=%s.", cmd.StepID, run.ID, name, value)}
}
