package runbook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Approve records actor's approval of a step awaiting it at version. When the
// step has all the approvals it needs, Approve claims it (one atomic
// check-and-set: a double click or a second replica finds it claimed) and
// hands it to the executor, which runs it and advances the run. It returns
// once the step is claimed: with the default executor before the step ends
// (ctx must outlive the call: it bounds the step; its end leaves the step
// for Resume), with SyncExecutor after. A manual step is marked done by
// approving it.
func (e *Engine) Approve(ctx context.Context, runID, stepID string, version int, actor string) error {
	// A step awaits approval once, so any click on it while it still awaits
	// is current even if its version moved (another person approved first);
	// a lost check-and-set between two approvers is simply tried again.
	for try := 1; ; try++ {
		err := e.approve(ctx, runID, stepID, version, actor)
		if try < 3 && errors.Is(err, ErrConflict) {
			continue
		}
		return err
	}
}

func (e *Engine) approve(ctx context.Context, runID, stepID string, version int, actor string) error {
	cur, err := e.step(ctx, runID, stepID)
	if err == nil && cur.State == AwaitingApproval && cur.Version > version {
		version = cur.Version
	}
	run, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "approve", AwaitingApproval)
	if err != nil {
		return err
	}
	if slices.Contains(st.Approvers, actor) {
		return e.refuse(ctx, run, stepID, actor, fmt.Sprintf("you already approved %q; it needs a second person", step.Title))
	}
	need, err := e.approvals(ctx, run, step)
	if err != nil {
		return err
	}
	now := e.opts.Clock.Now()
	st.Approvers = append(st.Approvers, actor)
	st.Actor = actor
	st.Version++
	if len(st.Approvers) < need {
		ev := &Event{RunID: runID, StepID: stepID, Kind: EventStepApproved, Actor: actor, At: now,
			Text: fmt.Sprintf("approved %q (%d of %d approvals; a second person must approve)", step.Title, len(st.Approvers), need)}
		return e.swap(ctx, run, st, ev)
	}
	if err := e.claim(ctx, run, &st, step, actor); err != nil {
		return err
	}
	e.runClaimed(ctx, run, st, step)
	return nil
}

// Retry runs a failed step again: claimed here, run on the executor (see
// Approve).
func (e *Engine) Retry(ctx context.Context, runID, stepID string, version int, actor string) error {
	run, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "retry", Failed)
	if err != nil {
		return err
	}
	st.Attempt++
	st.Checkpoint = nil
	st.Error = ""
	st.Version++
	if err := e.claim(ctx, run, &st, step, actor); err != nil {
		return err
	}
	e.runClaimed(ctx, run, st, step)
	return nil
}

// Skip skips a step awaiting approval or one that failed. A step whose
// remembered value a later step needs is not skipped this way: the refusal
// says what is needed (see SkipNeeds and SkipWithValue), so that a skip
// never breaks a later step with no way forward.
func (e *Engine) Skip(ctx context.Context, runID, stepID string, version int, actor, reason string) error {
	return e.SkipWithValue(ctx, runID, stepID, version, actor, reason, "")
}

// SkipWithValue skips a step and stores value, as a person typed it, as
// what the step would have remembered. value is needed exactly when
// SkipNeeds reports a need.
func (e *Engine) SkipWithValue(ctx context.Context, runID, stepID string, version int, actor, reason, value string) error {
	run, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "skip", AwaitingApproval, Failed)
	if err != nil {
		return err
	}
	need, err := e.SkipNeeds(ctx, runID, stepID)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("skipped %q", step.Title)
	if reason != "" {
		text += ": " + reason
	}
	if need != nil {
		if value == "" {
			return &Refusal{Text: need.Text(step)}
		}
		v, err := parseRemembered(step, value)
		if err != nil {
			return Refusef("%s for %s: %v (%s)", step.Remember, step.Title, err, need.Help)
		}
		if err := e.updateRun(ctx, runID, func(r *Run) error {
			r.Remembered[step.Remember] = v
			return nil
		}, nil); err != nil {
			return fmt.Errorf("remember %s: %w", step.Remember, err)
		}
		text += fmt.Sprintf("; %s=%s given by %s", step.Remember, strings.TrimSpace(value), actor)
		if need.Current != "" {
			text += fmt.Sprintf(" (the system held %s)", need.Current)
		}
	}
	if err := e.finish(ctx, run, st, Skipped, actor, text, nil); err != nil {
		return err
	}
	return e.advance(ctx, runID)
}

// Abort ends a run: nothing further runs, and a running step is cancelled.
func (e *Engine) Abort(ctx context.Context, runID, actor, reason string) error {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("abort %s: %w", runID, err)
	}
	if err := e.authorize(ctx, run, "", actor, "abort the run"); err != nil {
		return err
	}
	if run.State != RunActive {
		return Refusef("run %s is already %s", runID, run.State)
	}
	text := "aborted the run"
	if reason != "" {
		text += ": " + reason
	}
	now := e.opts.Clock.Now()
	if err := e.updateRun(ctx, runID, func(r *Run) error {
		if r.State != RunActive {
			return Refusef("run %s is already %s", runID, r.State)
		}
		r.State, r.EndedAt = RunAborted, now
		r.Incident.resolve(now, actor)
		return nil
	}, &Event{RunID: runID, Kind: EventRunAborted, Actor: actor, At: now, Text: text}); err != nil {
		return err
	}
	e.mu.Lock()
	for key, cancel := range e.cancels {
		if strings.HasPrefix(key, runID+"/") {
			cancel()
		}
	}
	e.mu.Unlock()
	return nil
}

// Note adds a free-text event to the timeline (e.g. a stakeholder update).
func (e *Engine) Note(ctx context.Context, runID, actor, text string) error {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("note on %s: %w", runID, err)
	}
	ev := Event{RunID: runID, Kind: EventNote, Actor: actor, At: e.opts.Clock.Now(), Text: text}
	if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
		return fmt.Errorf("note on %s: %w", runID, err)
	}
	e.notify(ctx, run, ev)
	return nil
}

// SetMeta stores a value of the caller's (e.g. a Slack message ts) on the run.
func (e *Engine) SetMeta(ctx context.Context, runID string, kv map[string]string) error {
	return e.updateRun(ctx, runID, func(r *Run) error {
		maps.Copy(r.Meta, kv)
		return nil
	}, nil)
}

// actionable loads a step for a person's click and refuses a click that is
// not allowed, stale (the step moved on) or on a finished run.
func (e *Engine) actionable(ctx context.Context, runID, stepID string, version int, actor, verb string, want ...State) (*Run, StepState, Step, error) {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return nil, StepState{}, Step{}, err
	}
	step, ok := rb.Step(stepID)
	if !ok {
		return nil, StepState{}, Step{}, Refusef("run %s has no step %q", runID, stepID)
	}
	if err := e.authorize(ctx, run, stepID, actor, verb+" "+fmt.Sprintf("%q", step.Title)); err != nil {
		return nil, StepState{}, Step{}, err
	}
	if run.State != RunActive {
		return nil, StepState{}, Step{}, Refusef("run %s is %s; nothing more runs", runID, run.State)
	}
	if err := e.sameSetup(run); err != nil {
		return nil, StepState{}, Step{}, err
	}
	st, err := e.step(ctx, runID, stepID)
	if err != nil {
		return nil, StepState{}, Step{}, err
	}
	if !slices.Contains(want, st.State) {
		return nil, StepState{}, Step{}, &Refusal{Text: staleText(step, st)}
	}
	if version != 0 && st.Version != version {
		// The step moved on since the click's message: a lost race.
		return nil, StepState{}, Step{}, &Refusal{Text: staleText(step, st), Err: ErrConflict}
	}
	return run, st, step, nil
}

// staleText tells a late or second click what already happened.
func staleText(step Step, st StepState) string {
	who := st.Actor
	if who == "" {
		who = "drbot"
	}
	at := st.StartedAt
	if !st.EndedAt.IsZero() {
		at = st.EndedAt
	}
	switch st.State {
	case Running:
		return fmt.Sprintf("%q is already running (approved by %s at %s)", step.Title, who, at.Format("15:04:05 UTC"))
	case Done:
		return fmt.Sprintf("%q is already done (approved by %s, finished %s)", step.Title, who, at.Format("15:04:05 UTC"))
	case Skipped:
		return fmt.Sprintf("%q was already skipped by %s at %s", step.Title, who, at.Format("15:04:05 UTC"))
	case Pending:
		return fmt.Sprintf("%q is not ready yet: earlier steps come first", step.Title)
	}
	return fmt.Sprintf("%q changed since this message (now %s); use the latest message", step.Title, st.State)
}

func (e *Engine) authorize(ctx context.Context, run *Run, stepID, actor, what string) error {
	if e.opts.Authorizer == nil {
		return nil
	}
	ok, err := e.opts.Authorizer.MayAct(ctx, actor)
	if err != nil {
		return fmt.Errorf("check approver %s: %w", actor, err)
	}
	if ok {
		return nil
	}
	return e.refuse(ctx, run, stepID, actor, "you are not a configured approver, so you may not "+what+"; ask an approver")
}

// refuse audits a refusal on the timeline and returns it.
func (e *Engine) refuse(ctx context.Context, run *Run, stepID, actor, text string) error {
	ev := Event{RunID: run.ID, StepID: stepID, Kind: EventRefused, Actor: actor, At: e.opts.Clock.Now(), Text: "refused: " + text}
	if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
		return fmt.Errorf("audit refusal: %w", err)
	}
	e.log.Warn("refused", zap.String("run_id", run.ID), zap.String("step_id", stepID), zap.String("user_id", actor), zap.String("reason", text))
	e.notify(ctx, run, ev)
	return &Refusal{Text: text}
}

// Events returns a run's stored timeline, in order.
func (e *Engine) Events(ctx context.Context, runID string) ([]Event, error) {
	evs, err := e.opts.Store.Events(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", runID, err)
	}
	return evs, nil
}
