package runbook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RecordDrill records a DR test's result once its run has ended: pass or
// fail and a note, on the run and its timeline. Recording again replaces
// the result (a person corrects a wrong click), and says so.
func (e *Engine) RecordDrill(ctx context.Context, runID, actor string, passed bool, note string) error {
	now := e.opts.Clock.Now()
	ev := &Event{RunID: runID, Kind: EventDrill, Actor: actor, At: now}
	return e.updateRun(ctx, runID, func(r *Run) error {
		if !r.Incident.IsTest() {
			return Refusef("run %s is not a DR test; only a DR test records a result", runID)
		}
		if r.State == RunActive {
			return Refusef("run %s is still active; record the DR test's result when it has ended", runID)
		}
		prev := r.Incident.Drill
		r.Incident.Drill = &DrillResult{Passed: passed, Note: strings.TrimSpace(note), By: actor, At: now}
		ev.Text = "DR test result: " + r.Incident.Drill.Word()
		if r.Incident.Drill.Note != "" {
			ev.Text += " — " + r.Incident.Drill.Note
		}
		if prev != nil {
			ev.Text += fmt.Sprintf(" (replaces %s recorded by %s)", prev.Word(), mention(prev.By))
		}
		return nil
	}, ev)
}

// AddFollowUp records a follow-up raised after a run (e.g. a GitHub issue)
// on the run and, with its link, on the timeline.
func (e *Engine) AddFollowUp(ctx context.Context, runID, actor string, link Link) error {
	ev := &Event{RunID: runID, Kind: EventFollowUp, Actor: actor, At: e.opts.Clock.Now(),
		Text: "follow-up raised: " + link.Label, Links: []Link{link}}
	return e.updateRun(ctx, runID, func(r *Run) error {
		if !slices.Contains(r.Incident.FollowUps, link) {
			r.Incident.FollowUps = append(r.Incident.FollowUps, link)
		}
		return nil
	}, ev)
}

// Drill is the last DR test of one service, environment and scenario.
type Drill struct {
	Service, Env, Scenario string
	RunID                  string
	At                     time.Time // when the test started
	Result                 string    // pass, fail, or "not recorded"
	Note                   string
	TimeToRecover          time.Duration
	Runs                   int  // DR tests of this target
	Overdue                bool // the last test is older than the interval
}

// Drills lists the last DR test per service, environment and scenario, from
// runs (any order), with those older than maxAge (at now) marked overdue.
func Drills(runs []*Run, now time.Time, maxAge time.Duration) []Drill {
	last := map[[3]string]*Drill{}
	for _, r := range runs {
		if !r.Incident.IsTest() || r.State == RunActive {
			continue
		}
		key := [3]string{r.Service, r.Env, r.RunbookID}
		d := last[key]
		if d == nil {
			d = &Drill{Service: r.Service, Env: r.Env, Scenario: r.RunbookID}
			last[key] = d
		}
		d.Runs++
		if !d.At.IsZero() && !r.StartedAt.After(d.At) {
			continue
		}
		d.RunID, d.At, d.TimeToRecover = r.ID, r.StartedAt, r.EndedAt.Sub(r.StartedAt)
		d.Result, d.Note = "not recorded", ""
		if r.State == RunAborted {
			d.Result = "aborted"
		}
		if r.Incident.Drill != nil {
			d.Result, d.Note = r.Incident.Drill.Word(), r.Incident.Drill.Note
		}
	}
	out := make([]Drill, 0, len(last))
	for _, d := range last {
		d.Overdue = maxAge > 0 && now.Sub(d.At) > maxAge
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Drill) int {
		return strings.Compare(a.Service+"\x00"+a.Env+"\x00"+a.Scenario, b.Service+"\x00"+b.Env+"\x00"+b.Scenario)
	})
	return out
}
