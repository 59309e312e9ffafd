// Package terminal renders runs for a person at a terminal: the timeline as
// it happens, each step's exact action before it is approved, and the closing
// summary. It is the engine's Notifier for `drbot rehearse`.
package terminal

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Printer writes runs to a terminal. It is safe for concurrent use.
type Printer struct {
	mu  sync.Mutex
	out io.Writer
	loc *time.Location
}

// New returns a Printer writing to out, showing times in UTC and loc.
func New(out io.Writer, loc *time.Location) *Printer {
	return &Printer{out: out, loc: loc}
}

var _ runbook.Notifier = (*Printer)(nil)

// icons per event kind, so the eye finds failures fast.
var icons = map[runbook.EventKind]string{
	runbook.EventRunStarted: "▶", runbook.EventRunDone: "🏁", runbook.EventRunAborted: "⛔",
	runbook.EventStepWaiting: "⏸", runbook.EventStepApproved: "👍", runbook.EventStepRunning: "⚙",
	runbook.EventStepProgress: "…", runbook.EventStepDone: "✅", runbook.EventStepFailed: "❌",
	runbook.EventStepSkipped: "⏭", runbook.EventRefused: "🚫", runbook.EventNote: "📝",
}

// StateIcon is the icon of a step state, shared by every renderer.
func StateIcon(s runbook.State) string {
	return map[runbook.State]string{
		runbook.Pending: "○", runbook.AwaitingApproval: "⏸", runbook.Running: "⚙",
		runbook.Done: "✅", runbook.Failed: "❌", runbook.Skipped: "⏭",
	}[s]
}

// Notify prints one timeline event with its time in UTC and local time.
func (p *Printer) Notify(_ context.Context, _ *runbook.Run, ev runbook.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%s  %s %s", runbook.FormatBoth(ev.At, p.loc), icons[ev.Kind], ev.Text)
	if ev.Actor != "" && ev.Actor != "drbot" {
		line += "  · " + ev.Actor
	}
	fmt.Fprintln(p.out, line)
	for _, l := range ev.Links {
		fmt.Fprintf(p.out, "      ↳ %s: %s\n", l.Label, l.URL)
	}
}

// Step prints what a step will do, before a person decides.
func (p *Printer) Step(v *runbook.RunView, s runbook.StepView) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx := s.State.Index + 1
	fmt.Fprintf(p.out, "\n── Step %d/%d: %s", idx, len(v.Steps), s.Step.Title)
	if s.Step.Destructive {
		fmt.Fprint(p.out, "  [DESTRUCTIVE]")
	}
	if s.Simulated {
		fmt.Fprint(p.out, "  [SIMULATED]")
	}
	fmt.Fprintln(p.out)
	for _, line := range strings.Split(s.Step.Explain, "\n") {
		fmt.Fprintln(p.out, "   "+line)
	}
	fmt.Fprintln(p.out, "   → "+strings.ReplaceAll(s.Call, "\n", "\n     "))
	if s.Step.Approvals > 1 {
		fmt.Fprintf(p.out, "   needs %d different approvers (%d so far: %s)\n", s.Step.Approvals, len(s.State.Approvers), strings.Join(s.State.Approvers, ", "))
	}
}

// Plan prints every step of a resolved run and the exact call it would make.
func (p *Printer) Plan(v *runbook.RunView) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%s: %s for %s/%s (runbook version %s)\n", v.Runbook.ID, v.Runbook.Title, v.Run.Service, v.Run.Env, v.Runbook.Version)
	fmt.Fprintln(p.out, "Nothing is executed. Each step and the exact call it would make:")
	for i, s := range v.Steps {
		var tags []string
		if s.Step.Auto {
			tags = append(tags, "automatic")
		}
		if s.Step.Destructive {
			tags = append(tags, "destructive")
		}
		if s.Step.Approvals > 1 {
			tags = append(tags, fmt.Sprintf("%d approvers", s.Step.Approvals))
		}
		if s.Step.When != "" {
			tags = append(tags, "only when "+s.Step.When)
		}
		if s.Simulated {
			tags = append(tags, "SIMULATED")
		}
		tag := ""
		if len(tags) > 0 {
			tag = " [" + strings.Join(tags, ", ") + "]"
		}
		fmt.Fprintf(p.out, "\n%2d. %s (%s)%s\n    %s: %s\n", i+1, s.Step.Title, s.Step.ID, tag, s.Step.Action, strings.ReplaceAll(s.Call, "\n", "\n    "))
	}
}

// Summary prints the closing report: each step's state, who, how long, and
// the time to recover.
func (p *Printer) Summary(sum runbook.Summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "\n══ Summary of %s: %s\n", sum.RunID, sum.Title)
	for i, s := range sum.Steps {
		d := ""
		if s.Duration > 0 {
			d = runbook.HumanDuration(s.Duration)
		}
		fmt.Fprintf(p.out, "%2d. %s %-9s %-58s %8s  %s\n", i+1, StateIcon(s.State), s.State, s.Title, d, s.Actor)
		if s.Error != "" {
			fmt.Fprintf(p.out, "      error: %s\n", s.Error)
		}
	}
	fmt.Fprintf(p.out, "%d done, %d skipped, %d failed, %d not reached; time to recover %s\n",
		sum.Done, sum.Skipped, sum.Failed, sum.Pending, runbook.HumanDuration(sum.TimeToRecover))
}
