package handlers

import (
	"context"
	"fmt"

	"github.com/drbot-dev/drbot/runbook"

	"go.uber.org/zap"
)

// Action is what a button does. Its value is the button's Slack action_id: a
// constant routing key; which run and step it is about travels separately.
type Action string

// Button actions.
const (
	ActApprove Action = "step.approve"
	ActSkip    Action = "step.skip"
	ActRetry   Action = "step.retry"
	ActDone    Action = "step.done" // a manual step: the same as approve
	ActAbort   Action = "run.abort"
	ActChoose  Action = "step.choose" // pick another value for what the step remembers
)

// Actions lists every button action.
var Actions = []Action{ActApprove, ActSkip, ActRetry, ActDone, ActAbort, ActChoose, ActStage, ActPostUpdate, ActDrillPass, ActDrillFail, ActFollowUp}

// Click is a button press on a step or the control panel.
type Click struct {
	Action  Action
	RunID   string
	StepID  string // empty for run actions
	Version int    // the step version the message showed (check-and-set)
	UserID  string
	Value   string // what a select picked (the stage)
}

// Click performs a button press. It runs on a worker and returns once the
// press is recorded: an approved step is claimed and runs on the engine's
// executor, holding no worker. Refusals (not an approver, stale or second click) come back
// as text for the user; the engine has audited them on the timeline.
func (h *Handler) Click(ctx context.Context, c Click) Reply {
	if r, ok := h.commsClick(ctx, c); ok {
		return r
	}
	e := h.opts.Engine
	var err error
	switch c.Action {
	case ActApprove, ActDone:
		err = e.Approve(ctx, c.RunID, c.StepID, c.Version, c.UserID)
	case ActSkip:
		if r, needed := h.skipHint(ctx, c); needed {
			return r
		}
		err = e.Skip(ctx, c.RunID, c.StepID, c.Version, c.UserID, "")
	case ActRetry:
		err = e.Retry(ctx, c.RunID, c.StepID, c.Version, c.UserID)
	case ActAbort:
		err = e.Abort(ctx, c.RunID, c.UserID, "aborted from the control panel")
	case ActChoose:
		return h.choiceForm(ctx, c)
	default:
		return Reply{Text: fmt.Sprintf("This button (%s) is not one drbot knows; use the latest message.", c.Action)}
	}
	if err == nil {
		return Reply{}
	}
	h.log.Info("click not done", zap.String("run_id", c.RunID), zap.String("step_id", c.StepID),
		zap.String("user_id", c.UserID), zap.String("action", string(c.Action)), zap.Error(err))
	return h.refusal(err)
}

// ChoiceForm is what a Choose click opens: the things a step offers, for a
// static select in a modal.
type ChoiceForm struct {
	RunID, StepID string
	Version       int
	Title         string // the step's title
	Options       []runbook.Choice
	ChannelID     string // where to reply
}

// choiceForm lists what a step offers for a Choose click.
func (h *Handler) choiceForm(ctx context.Context, c Click) Reply {
	if r, ok := h.mayAct(ctx, h.opts.Approvers, c.UserID, "choose for a step"); !ok {
		return r
	}
	list, err := h.opts.Engine.Choices(ctx, c.RunID, c.StepID)
	if err != nil {
		return h.refusal(err)
	}
	title := c.StepID
	if v, err := h.opts.Engine.View(ctx, c.RunID); err == nil {
		for _, s := range v.Steps {
			if s.Step.ID == c.StepID {
				title = s.Step.Title
			}
		}
	}
	return Reply{Choice: &ChoiceForm{RunID: c.RunID, StepID: c.StepID, Version: c.Version, Title: title, Options: list}}
}

// Choose completes a step with the value picked in its choice form.
func (h *Handler) Choose(ctx context.Context, userID string, f ChoiceForm, value string) Reply {
	if err := h.opts.Engine.Choose(ctx, f.RunID, f.StepID, f.Version, userID, value); err != nil {
		return h.refusal(err)
	}
	return Reply{Text: fmt.Sprintf("Chose %s for %q.", value, f.Title)}
}
