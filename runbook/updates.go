package runbook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Stakeholder updates on a cadence. Nothing here keeps a timer: when the
// next update is due is stored with the run (Incident.LastUpdate +
// UpdateEvery), and RemindDue, called every so often with the engine's
// clock, reminds once per due time. A restart loses nothing, and a run that
// has ended is never reminded of.

// RemindDue records an update.due event for every active run whose
// stakeholder update is due and has not been reminded of, and announces it
// (the bot mentions the comms lead with a Post update button). It returns
// how many it reminded of.
func (e *Engine) RemindDue(ctx context.Context) (int, error) {
	runs, err := e.opts.Store.Runs(ctx, true, 0)
	if err != nil {
		return 0, fmt.Errorf("remind: list active runs: %w", err)
	}
	now := e.opts.Clock.Now()
	n := 0
	var errs []error
	for _, run := range runs {
		due := run.Incident.NextUpdate()
		if due.IsZero() || now.Before(due) || run.Incident.RemindedFor.Equal(due) {
			continue
		}
		ev := &Event{RunID: run.ID, Kind: EventUpdateDue, Actor: "drbot", At: now}
		err := e.updateRun(ctx, run.ID, func(r *Run) error {
			d := r.Incident.NextUpdate()
			if r.State != RunActive || d.IsZero() || now.Before(d) || r.Incident.RemindedFor.Equal(d) {
				return errReminded
			}
			r.Incident.RemindedFor = d
			ev.Text = fmt.Sprintf("a stakeholder update is due (the last went out %s ago; every %s for %s)",
				Minutes(now.Sub(r.Incident.LastUpdate)), Minutes(r.Incident.UpdateEvery), r.Incident.Priority)
			return nil
		}, ev)
		switch {
		case errors.Is(err, errReminded):
		case err != nil:
			errs = append(errs, err)
		default:
			n++
		}
	}
	return n, errors.Join(errs...)
}

// errReminded stops a reminder that another process (or an update) made
// unnecessary between the read and the save.
var errReminded = errors.New("already reminded")

// Remind calls RemindDue every interval until ctx ends. The interval only
// bounds how late a reminder may be; when one is due is stored.
func (e *Engine) Remind(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.RemindDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("stakeholder update reminders", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RecordUpdate records that a stakeholder update went out: on the timeline,
// and as the start of the next cadence period.
func (e *Engine) RecordUpdate(ctx context.Context, runID, actor, text string) error {
	now := e.opts.Clock.Now()
	ev := &Event{RunID: runID, Kind: EventUpdate, Actor: actor, At: now, Text: "stakeholder update: " + text}
	return e.updateRun(ctx, runID, func(r *Run) error {
		r.Incident.LastUpdate = now
		return nil
	}, ev)
}

// UpdateDraft is what the Post update form starts from.
type UpdateDraft struct {
	RunID     string
	Stage     Stage
	DoneSince []string // titles of the steps done since the last update
	Next      string   // the step the team is at, "" when none is left
	Text      string   // the three above as a first draft
}

// DraftUpdate drafts the next stakeholder update of a run: its stage, the
// steps done since the last update and the next step.
func (e *Engine) DraftUpdate(ctx context.Context, runID string) (UpdateDraft, error) {
	v, err := e.View(ctx, runID)
	if err != nil {
		return UpdateDraft{}, err
	}
	d := UpdateDraft{RunID: runID, Stage: v.Run.Incident.Stage}
	since := v.Run.Incident.LastUpdate
	for _, s := range v.Steps {
		if s.State.State == Done && !s.State.EndedAt.Before(since) {
			d.DoneSince = append(d.DoneSince, s.Step.Title)
		}
	}
	if cur, ok := v.Current(); ok && v.Run.State == RunActive {
		d.Next = cur.Step.Title
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Stage: %s.", orWord(string(d.Stage), "unknown"))
	if len(d.DoneSince) > 0 {
		fmt.Fprintf(&b, "\nDone since the last update: %s.", strings.Join(d.DoneSince, "; "))
	} else {
		b.WriteString("\nNo step finished since the last update.")
	}
	if d.Next != "" {
		fmt.Fprintf(&b, "\nNext: %s.", d.Next)
	}
	d.Text = b.String()
	return d, nil
}
