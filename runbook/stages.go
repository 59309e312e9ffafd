package runbook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// IsRecovery reports whether a step is part of the recovery: what its
// runbook says (recovery: true|false), else whether it acts on a system —
// not a Slack post and not a manual checklist item.
func IsRecovery(s Step) bool {
	if s.Recovery != nil {
		return *s.Recovery
	}
	return s.Action != ManualKind && !strings.HasPrefix(s.Action, "slack.")
}

// DeriveStage is the stage a run is in by its steps: investigating until the
// first recovery step starts, recovering until the last one has ended,
// monitoring after, resolved once the run has ended.
func DeriveStage(rb *Runbook, steps []StepState, state RunState) Stage {
	if state != RunActive {
		return StageResolved
	}
	started, open := false, false
	for i, st := range steps {
		if i >= len(rb.Steps) || !IsRecovery(rb.Steps[i]) {
			continue
		}
		if st.State != Pending && st.State != AwaitingApproval {
			started = true
		}
		if !st.State.Terminal() {
			open = true
		}
	}
	switch {
	case !started && open:
		return StageInvestigating
	case open:
		return StageRecovering
	}
	return StageMonitoring
}

// movesStage reports whether an event can change the derived stage.
func movesStage(k EventKind) bool {
	switch k {
	case EventStepRunning, EventStepDone, EventStepSkipped:
		return true
	}
	return false
}

// followStage moves a declared run's stage forward to the one its steps
// imply, stored with its own event before it is announced. A derived stage
// never moves a run back: a person may have set a later one.
func (e *Engine) followStage(ctx context.Context, runID string, k EventKind) {
	if !movesStage(k) {
		return
	}
	run, rb, err := e.load(ctx, runID)
	if err != nil || !run.Incident.Declared() {
		return
	}
	steps, err := e.opts.Store.Steps(ctx, runID)
	if err != nil {
		e.log.Warn("stage: read steps", zap.String("run_id", runID), zap.Error(err))
		return
	}
	to := DeriveStage(rb, steps, run.State)
	if to.order() <= run.Incident.Stage.order() {
		return
	}
	if err := e.changeStage(ctx, runID, "drbot", to, false); err != nil {
		if _, refused := IsRefusal(err); !refused {
			e.log.Warn("stage", zap.String("run_id", runID), zap.Error(err))
		}
	}
}

// resolve marks a declared incident resolved as its run ends, in the same
// save as the run's end: the run.done or run.aborted event says it.
func (in *Incident) resolve(at time.Time, by string) {
	if !in.Declared() || in.Stage == StageResolved {
		return
	}
	in.Stage = StageResolved
	in.Stages = append(in.Stages, StageChange{Stage: StageResolved, At: at, By: by})
}

// SetStage sets a run's stage by hand (from the panel). Who may is the
// caller's decision (the comms lead keeps the stage current, and need not
// be an approver).
func (e *Engine) SetStage(ctx context.Context, runID, actor string, to Stage) error {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("set stage of %s: %w", runID, err)
	}
	if to == StageResolved && run.State == RunActive {
		return Refusef("the run is still active: it is resolved when its last step ends or it is aborted")
	}
	return e.changeStage(ctx, runID, actor, to, true)
}

func (e *Engine) changeStage(ctx context.Context, runID, actor string, to Stage, byHand bool) error {
	now := e.opts.Clock.Now()
	ev := &Event{RunID: runID, Kind: EventStage, Actor: actor, At: now}
	return e.updateRun(ctx, runID, func(r *Run) error {
		from := r.Incident.Stage
		if from == to {
			return Refusef("the incident is already %s", to)
		}
		if !byHand && to.order() <= from.order() {
			return Refusef("the incident is already %s", from)
		}
		if from == StageResolved && r.State != RunActive {
			return Refusef("run %s has ended; its stage stays resolved", runID)
		}
		r.Incident.Stage = to
		r.Incident.Stages = append(r.Incident.Stages, StageChange{Stage: to, At: now, By: actor})
		how := "as the run went on"
		if byHand {
			how = "set by hand"
		}
		ev.Text = fmt.Sprintf("stage: %s → %s (%s)", orWord(string(from), "none"), to, how)
		return nil
	}, ev)
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
