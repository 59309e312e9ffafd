package handlers

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Icon is a step state's icon, the same in every message.
func Icon(s runbook.State) string {
	switch s {
	case runbook.AwaitingApproval:
		return "👉"
	case runbook.Running:
		return "⏳"
	case runbook.Done:
		return "✅"
	case runbook.Failed:
		return "❌"
	case runbook.Skipped:
		return "⏭️"
	}
	return "▫️"
}

var slackUser = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// Mention writes an actor for Slack: user ids become mentions, anything else
// ("drbot", a terminal user) stays as it is.
func Mention(actor string) string {
	if slackUser.MatchString(actor) {
		return "<@" + actor + ">"
	}
	if actor == "" {
		return "drbot"
	}
	return actor
}

// StepLine is one step in a list: icon, number, title and who/how long.
func StepLine(i int, s runbook.StepView) string {
	st := s.State
	line := fmt.Sprintf("%s %d. %s", Icon(st.State), i+1, s.Step.Title)
	switch st.State {
	case runbook.AwaitingApproval:
		line += " — waiting for approval"
		if s.Step.Approvals > 1 {
			line += fmt.Sprintf(" (%d of %d)", len(st.Approvers), s.Step.Approvals)
		}
	case runbook.Running:
		line += " — running, approved by " + Mention(st.Actor)
	case runbook.Done:
		line += " — done by " + Mention(st.Actor)
		if d := st.Duration(); d > 0 {
			line += " · " + runbook.HumanDuration(d)
		}
	case runbook.Failed:
		line += " — failed"
	case runbook.Skipped:
		line += " — skipped by " + Mention(st.Actor)
	}
	return line
}

// StatusText describes a run and its steps for /dr status.
func StatusText(v *runbook.RunView, loc *time.Location, now time.Time) string {
	r := v.Run
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* · %s (%s) · %s/%s — *%s*\n", r.ID, v.Runbook.ID, v.Runbook.Title, r.Service, r.Env, r.State)
	fmt.Fprintf(&b, "Started %s by %s%s", runbook.FormatBoth(r.StartedAt, loc), Mention(r.StartedBy), channelRef(r))
	if r.EndedAt.IsZero() {
		fmt.Fprintf(&b, " · running for %s\n", runbook.HumanDuration(now.Sub(r.StartedAt)))
	} else {
		fmt.Fprintf(&b, " · ended %s\n", runbook.FormatBoth(r.EndedAt, loc))
	}
	if in := r.Incident; in.Declared() {
		fmt.Fprintf(&b, "%s %s · stage *%s* · %s\n", in.Priority, in.Kind.Word(), in.Stage, in.Roles(Mention))
		if next := in.NextUpdate(); r.State == runbook.RunActive && !next.IsZero() {
			fmt.Fprintf(&b, "Next stakeholder update due %s\n", runbook.FormatBoth(next, loc))
		}
	}
	for i, s := range v.Steps {
		b.WriteString(StepLine(i, s) + "\n")
	}
	return strings.TrimSpace(b.String())
}
