package runbook

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Priority is an incident's priority in the team's playbook: P1 is the
// highest (stakeholder updates every 30 minutes, the P1 contacts told).
type Priority string

// Priorities, highest first.
const (
	P1 Priority = "P1"
	P2 Priority = "P2"
	P3 Priority = "P3"
)

// Priorities lists the priorities, highest first.
var Priorities = []Priority{P1, P2, P3}

// DefaultPriority is the priority of a run declared without one.
const DefaultPriority = P2

// ParsePriority reads p1, P1 or 1; empty is DefaultPriority.
func ParsePriority(s string) (Priority, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return DefaultPriority, nil
	}
	if !strings.HasPrefix(s, "P") {
		s = "P" + s
	}
	if p := Priority(s); slices.Contains(Priorities, p) {
		return p, nil
	}
	return "", fmt.Errorf("priority %q: use P1 (highest), P2 or P3", s)
}

// IncidentKind tells a real incident from a DR test.
type IncidentKind string

// Incident kinds.
const (
	KindIncident IncidentKind = "incident"
	KindTest     IncidentKind = "test"
)

// ParseKind reads incident, real, test or drill; empty is KindIncident.
func ParseKind(s string) (IncidentKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "incident", "real":
		return KindIncident, nil
	case "test", "drill", "dr-test", "dr_test":
		return KindTest, nil
	}
	return "", fmt.Errorf("kind %q: use incident (a real incident) or test (a DR test)", s)
}

// Word is the kind as people read it.
func (k IncidentKind) Word() string {
	if k == KindTest {
		return "DR test"
	}
	return "incident"
}

// Stage is where an incident is in the playbook:
// investigating -> recovering -> monitoring -> resolved.
type Stage string

// Stages of an incident.
const (
	StageInvestigating Stage = "investigating"
	StageRecovering    Stage = "recovering"
	StageMonitoring    Stage = "monitoring"
	StageResolved      Stage = "resolved"
)

// Stages lists the stages in order.
var Stages = []Stage{StageInvestigating, StageRecovering, StageMonitoring, StageResolved}

// ParseStage reads a stage name.
func ParseStage(s string) (Stage, error) {
	st := Stage(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Stages, st) {
		return st, nil
	}
	return "", fmt.Errorf("stage %q: use one of investigating, recovering, monitoring, resolved", s)
}

// order is a stage's place in Stages.
func (s Stage) order() int { return slices.Index(Stages, s) }

// StageChange is one entry of an incident's stage history.
type StageChange struct {
	Stage Stage     `json:"stage"`
	At    time.Time `json:"at"`
	By    string    `json:"by"` // "drbot" when derived from the run
}

// DrillResult is what a DR test recorded at its end.
type DrillResult struct {
	Passed bool      `json:"passed"`
	Note   string    `json:"note,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Word is the result as people read it.
func (d DrillResult) Word() string {
	if d.Passed {
		return "pass"
	}
	return "fail"
}

// Incident is what the playbook declares about a run and what the comms
// lead keeps current: roles, priority, kind, stage and the stakeholder
// update cadence. It is stored with the run.
type Incident struct {
	Priority     Priority     `json:"priority,omitempty"`
	Kind         IncidentKind `json:"kind,omitempty"`
	Description  string       `json:"description,omitempty"` // one line
	IncidentLead string       `json:"incident_lead,omitempty"`
	CommsLead    string       `json:"comms_lead,omitempty"`
	TechLead     string       `json:"tech_lead,omitempty"`
	// Stage is the current stage; Stages its history, oldest first.
	Stage  Stage         `json:"stage,omitempty"`
	Stages []StageChange `json:"stages,omitempty"`
	// UpdateEvery is the stakeholder update cadence, fixed at the start
	// from the priority; LastUpdate is when the last update went out (the
	// notice counts) and RemindedFor the due time already reminded of, so
	// a reminder is sent once per due time, whatever restarts happen.
	UpdateEvery time.Duration `json:"update_every,omitempty"`
	LastUpdate  time.Time     `json:"last_update,omitzero"`
	RemindedFor time.Time     `json:"reminded_for,omitzero"`
	// Drill is a DR test's recorded result; nil until recorded.
	Drill *DrillResult `json:"drill,omitempty"`
	// FollowUps are the issues raised after the run.
	FollowUps []Link `json:"follow_ups,omitempty"`
}

// Declared reports whether the run was declared with the playbook's fields
// (runs from before them have an empty Incident).
func (in Incident) Declared() bool { return in.Priority != "" }

// IsTest reports whether the run is a DR test.
func (in Incident) IsTest() bool { return in.Kind == KindTest }

// NextUpdate is when the next stakeholder update is due; zero when no
// cadence is set.
func (in Incident) NextUpdate() time.Time {
	if in.UpdateEvery <= 0 || in.LastUpdate.IsZero() {
		return time.Time{}
	}
	return in.LastUpdate.Add(in.UpdateEvery)
}

// Since is when the incident entered stage s (zero if it never did).
func (in Incident) Since(s Stage) time.Time {
	for _, c := range in.Stages {
		if c.Stage == s {
			return c.At
		}
	}
	return time.Time{}
}

// Cadence is how often stakeholders hear from the comms lead.
type Cadence struct {
	Every time.Duration // default 60 minutes
	P1    time.Duration // for P1, default 30 minutes
}

// For is the cadence of a priority.
func (c Cadence) For(p Priority) time.Duration {
	if p == P1 {
		if c.P1 > 0 {
			return c.P1
		}
		return 30 * time.Minute
	}
	if c.Every > 0 {
		return c.Every
	}
	return 60 * time.Minute
}

// Roles describes the leads in one line, e.g. for the timeline.
func (in Incident) Roles(mention func(string) string) string {
	name := func(id string) string {
		if id == "" {
			return "not named"
		}
		return mention(id)
	}
	return fmt.Sprintf("incident lead %s · comms lead %s · tech lead %s", name(in.IncidentLead), name(in.CommsLead), name(in.TechLead))
}

// Minutes writes a cadence for people: "30 minutes", "1 minute".
func Minutes(d time.Duration) string {
	n := int(d.Round(time.Minute) / time.Minute)
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}
