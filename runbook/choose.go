package runbook

import (
	"context"
	"fmt"
	"slices"
)

// Chooser is implemented by actions whose step remembers one of several
// things a person may pick instead of the default (the backups in a
// container, newest first). Choices reads them live, changing nothing.
type Chooser interface {
	Choices(ctx context.Context, req Request) ([]Choice, error)
}

// Choice is one thing a person may pick: Value is what the step remembers,
// Label what they read (name, size, age).
type Choice struct {
	Value, Label string
}

// Choices lists what a person may pick for a step awaiting approval whose
// action is a Chooser, as its adapter reads them now.
func (e *Engine) Choices(ctx context.Context, runID, stepID string) ([]Choice, error) {
	run, _, step, err := e.runStep(ctx, runID, stepID)
	if err != nil {
		return nil, err
	}
	c, ok := e.opts.Actions[step.Action].(Chooser)
	if !ok || step.Remember == "" {
		return nil, Refusef("%q offers nothing to choose from", step.Title)
	}
	params, err := e.checkedParams(ctx, run, step)
	if err != nil {
		return nil, err
	}
	list, err := c.Choices(ctx, Request{RunID: runID, StepID: stepID, Params: params})
	if err != nil {
		return nil, fmt.Errorf("list choices of %q: %w", step.Title, err)
	}
	if len(list) == 0 {
		return nil, Refusef("%q has nothing to choose from now", step.Title)
	}
	return list, nil
}

// Choose completes a step awaiting approval with what a person picked
// instead of running it: value must be one of its Choices now, and becomes
// the value the step remembers. Approving the step keeps its default.
func (e *Engine) Choose(ctx context.Context, runID, stepID string, version int, actor, value string) error {
	run, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "choose for", AwaitingApproval)
	if err != nil {
		return err
	}
	list, err := e.Choices(ctx, runID, stepID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(c Choice) bool { return c.Value == value })
	if i < 0 {
		return Refusef("%q is not one of the choices of %q now; pick from the list", value, step.Title)
	}
	st.Version++
	if err := e.claim(ctx, run, &st, step, actor); err != nil {
		return err
	}
	defer e.unqueue(run.ID + "/" + step.ID)
	if err := e.remember(ctx, runID, step, Result{Remember: value}); err != nil {
		return fmt.Errorf("remember %s: %w", step.Remember, err)
	}
	res := Result{Summary: fmt.Sprintf("%s chose %s", actor, list[i].Label)}
	if err := e.finish(ctx, run, st, Done, actor, fmt.Sprintf("%q done: %s", step.Title, res.Summary), &res); err != nil {
		return err
	}
	return e.advance(ctx, runID)
}
