// Package report builds a run's incident report — summary, roles,
// priority, stages with times, the timeline in UTC and local time, every
// step with its approvers, result, duration, links and retries, what was
// skipped and why, the time to recover — and writes it as Markdown (the
// file uploaded into the incident channel, `drbot report`) or JSON.
//
// It imports only runbook: the bot, the handlers and cmd use it alike.
package report

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Report is a run's incident report.
type Report struct {
	RunID       string `json:"run_id"`
	Scenario    string `json:"scenario"`
	Title       string `json:"title"`
	Service     string `json:"service"`
	Env         string `json:"env"`
	State       string `json:"state"`
	Priority    string `json:"priority,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Description string `json:"description,omitempty"`
	Roles       Roles  `json:"roles"`
	// Simulated names the simulated adapter families: such a run touched
	// nothing real there.
	Simulated []string `json:"simulated,omitempty"`

	Started       Time     `json:"started"`
	Ended         *Time    `json:"ended,omitempty"`
	TimeToRecover Duration `json:"time_to_recover"` // declared → resolved (→ now while active)
	Counts        Counts   `json:"counts"`
	Stages        []Stage  `json:"stages"`
	Steps         []Step   `json:"steps"`
	Skipped       []Skip   `json:"skipped"`
	Timeline      []Event  `json:"timeline"`
	Drill         *Drill   `json:"drill_result,omitempty"`
	FollowUps     []Link   `json:"follow_ups,omitempty"`
	Generated     Time     `json:"generated"`
	zone          string   // the local zone's name
	loc           *time.Location
}

// Roles are the incident's leads (Slack user ids).
type Roles struct {
	IncidentLead string `json:"incident_lead"`
	CommsLead    string `json:"comms_lead,omitempty"`
	TechLead     string `json:"tech_lead,omitempty"`
}

// Time is an instant in UTC and in the configured local zone.
type Time struct {
	UTC   time.Time `json:"utc"`
	Local string    `json:"local"`
}

// Duration is a length of time in seconds and as people read it.
type Duration struct {
	Seconds float64 `json:"seconds"`
	Text    string  `json:"text"`
}

// Counts are the steps by result.
type Counts struct {
	Done    int `json:"done"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	NotRun  int `json:"not_run"`
}

// Stage is one stage of the incident with its times.
type Stage struct {
	Stage    string    `json:"stage"`
	From     Time      `json:"from"`
	Until    *Time     `json:"until,omitempty"`
	Duration *Duration `json:"duration,omitempty"`
	By       string    `json:"by"`
}

// Step is one step's record.
type Step struct {
	N         int       `json:"n"`
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Result    string    `json:"result"`
	Approvers []string  `json:"approvers,omitempty"`
	Started   *Time     `json:"started,omitempty"`
	Ended     *Time     `json:"ended,omitempty"`
	Duration  *Duration `json:"duration,omitempty"`
	Attempts  int       `json:"attempts"`
	Retries   int       `json:"retries"`
	Summary   string    `json:"summary,omitempty"`
	Error     string    `json:"error,omitempty"`
	Links     []Link    `json:"links,omitempty"`
}

// Skip is a skipped step and why.
type Skip struct {
	Step   string `json:"step"`
	Title  string `json:"title"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// Event is one timeline entry.
type Event struct {
	Seq   int64  `json:"seq"`
	At    Time   `json:"at"`
	Kind  string `json:"kind"`
	Actor string `json:"actor"`
	Step  string `json:"step,omitempty"`
	Text  string `json:"text"`
	Links []Link `json:"links,omitempty"`
}

// Link is a labelled URL.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// Drill is a DR test's recorded result.
type Drill struct {
	Result string `json:"result"`
	Note   string `json:"note,omitempty"`
	By     string `json:"by"`
	At     Time   `json:"at"`
}

// Build assembles the report of the run in v from its stored timeline, as
// of now; loc is the local zone shown next to UTC.
func Build(v *runbook.RunView, events []runbook.Event, now time.Time, loc *time.Location) Report {
	if loc == nil {
		loc = time.UTC
	}
	run, in := v.Run, v.Run.Incident
	at := func(t time.Time) Time { return Time{UTC: t.UTC(), Local: t.In(loc).Format("2006-01-02 15:04:05 MST")} }
	opt := func(t time.Time) *Time {
		if t.IsZero() {
			return nil
		}
		x := at(t)
		return &x
	}
	r := Report{
		RunID: run.ID, Scenario: v.Runbook.ID, Title: v.Runbook.Title, Service: run.Service, Env: run.Env, State: string(run.State),
		Priority: string(in.Priority), Kind: string(in.Kind), Description: in.Description,
		Roles:     Roles{IncidentLead: orDefault(in.IncidentLead, run.StartedBy), CommsLead: in.CommsLead, TechLead: in.TechLead},
		Simulated: run.Setup.Simulated, Started: at(run.StartedAt), Ended: opt(run.EndedAt), Generated: at(now),
		zone: loc.String(),
	}
	if !in.Declared() {
		r.Kind = ""
	}
	end := run.EndedAt
	if end.IsZero() {
		end = now
	}
	r.TimeToRecover = duration(end.Sub(run.StartedAt))
	for i, c := range in.Stages {
		s := Stage{Stage: string(c.Stage), From: at(c.At), By: c.By}
		var until time.Time
		if i+1 < len(in.Stages) {
			until = in.Stages[i+1].At
		} else if c.Stage != runbook.StageResolved {
			until = now
		}
		if !until.IsZero() {
			if i+1 < len(in.Stages) {
				s.Until = opt(until)
			}
			d := duration(until.Sub(c.At))
			s.Duration = &d
		}
		r.Stages = append(r.Stages, s)
	}
	skipWhy := map[string]runbook.Event{}
	for _, ev := range events {
		if ev.Kind == runbook.EventStepSkipped {
			skipWhy[ev.StepID] = ev
		}
		r.Timeline = append(r.Timeline, Event{Seq: ev.Seq, At: at(ev.At), Kind: string(ev.Kind), Actor: ev.Actor, Step: ev.StepID,
			Text: Plain(ev.Text), Links: links(ev.Links)})
	}
	for i, s := range v.Steps {
		st := s.State
		step := Step{N: i + 1, ID: s.Step.ID, Title: s.Step.Title, Result: string(st.State), Approvers: st.Approvers,
			Started: opt(st.StartedAt), Ended: opt(st.EndedAt), Attempts: st.Attempt, Retries: max(st.Attempt-1, 0),
			Summary: Plain(st.Summary), Error: Plain(st.Error), Links: links(st.Links)}
		if st.State == runbook.Done || st.State == runbook.Failed {
			if len(step.Approvers) == 0 && st.Actor != "" {
				step.Approvers = []string{st.Actor}
			}
			if d := st.Duration(); d > 0 {
				dd := duration(d)
				step.Duration = &dd
			}
		}
		switch st.State {
		case runbook.Done:
			r.Counts.Done++
		case runbook.Skipped:
			r.Counts.Skipped++
			ev := skipWhy[s.Step.ID]
			r.Skipped = append(r.Skipped, Skip{Step: s.Step.ID, Title: s.Step.Title, By: orDefault(ev.Actor, st.Actor), Reason: skipReason(ev.Text)})
		case runbook.Failed:
			r.Counts.Failed++
		default:
			r.Counts.NotRun++
		}
		r.Steps = append(r.Steps, step)
	}
	if d := in.Drill; d != nil {
		r.Drill = &Drill{Result: d.Word(), Note: d.Note, By: d.By, At: at(d.At)}
	}
	r.FollowUps = links(in.FollowUps)
	return r
}

// skipReason is why a step was skipped, from its event's text
// (`skipped "Title": reason`).
func skipReason(text string) string {
	if _, why, ok := strings.Cut(text, "\": "); ok {
		return Plain(why)
	}
	if text == "" {
		return "not recorded"
	}
	return "skipped by hand, no reason given"
}

func links(ls []runbook.Link) []Link {
	var out []Link
	for _, l := range ls {
		out = append(out, Link{Label: Plain(l.Label), URL: l.URL})
	}
	return out
}

func duration(d time.Duration) Duration {
	return Duration{Seconds: d.Seconds(), Text: runbook.HumanDuration(d)}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// slackMarkup matches Slack's <@U…>, <#C…|name>, <#C…> and <url|label>.
var slackMarkup = regexp.MustCompile(`<([@#!]?)([^<>|]+)(?:\|([^<>]*))?>`)

// Plain rewrites Slack markup for a file: <@U1> → @U1, <#C1|ops> → #ops,
// <https://x|label> → label (https://x).
func Plain(s string) string {
	return slackMarkup.ReplaceAllStringFunc(s, func(m string) string {
		p := slackMarkup.FindStringSubmatch(m)
		sigil, target, label := p[1], p[2], p[3]
		switch {
		case sigil == "@":
			return "@" + target
		case sigil == "#" && label != "":
			return "#" + label
		case sigil == "#":
			return "#" + target
		case sigil == "!":
			return "@" + strings.TrimPrefix(orDefault(label, target), "subteam^")
		case label != "":
			return fmt.Sprintf("%s (%s)", label, target)
		}
		return target
	})
}
