package runbook

import (
	"errors"
	"fmt"
	"time"
)

// State is a step's place in its life cycle:
// pending -> awaiting_approval -> running -> done | failed | skipped; failed -> running on Retry.
type State string

// Step states.
const (
	Pending          State = "pending"
	AwaitingApproval State = "awaiting_approval"
	Running          State = "running"
	Done             State = "done"
	Failed           State = "failed"
	Skipped          State = "skipped"
)

// Terminal reports whether no further transition is expected without a person (Retry).
func (s State) Terminal() bool { return s == Done || s == Skipped }

// RunState is the state of a whole run.
type RunState string

// Run states.
const (
	RunActive  RunState = "active"
	RunDone    RunState = "done"
	RunAborted RunState = "aborted"
)

// Run is one execution of a runbook for a service and environment.
type Run struct {
	ID         string
	RunbookID  string
	Runbook    []byte // the pinned YAML; later edits affect only new runs
	Version    int    // bumped on every save; the store checks it
	Service    string
	Env        string
	State      RunState
	StartedBy  string
	StartedAt  time.Time
	EndedAt    time.Time
	Vars       map[string]any    // config, inputs and rendered run vars
	Remembered map[string]any    // values steps remembered (.remember.NAME)
	Meta       map[string]string // opaque to the engine: e.g. the bot's channel and message ts
	Setup      Setup             // how the run runs; fixed at its start
	Incident   Incident          // roles, priority, kind, stage, update cadence
}

// Setup is how a run runs: which adapter families are simulated, the config
// file and the store it was started with. It is part of the run so that a
// resume uses the same adapters (a live run never goes on as a simulation,
// a rehearsal never turns live) and can print the exact command to go on.
type Setup struct {
	// Simulated lists the simulated adapter families (github, kubernetes,
	// azure, http, slack), sorted; empty means every one is real.
	Simulated []string `json:"simulated"`
	// Families lists every adapter family the run was started with, so that
	// "none simulated" is told apart from "unknown" (a run from before setups).
	Families []string `json:"families"`
	Config   string   `json:"config,omitempty"` // the config file it was started with
	Store    string   `json:"store,omitempty"`  // the store (--db) it lives in
}

// Known reports whether the run recorded its setup.
func (s Setup) Known() bool { return len(s.Families) > 0 }

// Live reports whether any adapter family of the run is real.
func (s Setup) Live() bool { return len(s.Simulated) < len(s.Families) }

// Link is a URL with a label, e.g. a workflow run.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// StepState is the durable state of one step of one run.
type StepState struct {
	RunID     string
	StepID    string
	Index     int
	State     State
	Version   int // bumped on every transition; clicks carry it (check-and-set)
	Attempt   int // 1 on the first run, +1 on each Retry
	Approvers []string
	Actor     string // who made the last transition
	StartedAt time.Time
	EndedAt   time.Time
	// Checkpoint is what the action saved before acting (e.g. the dispatch time
	// and the workflow run id), so a restart re-attaches instead of acting again.
	Checkpoint map[string]string
	Progress   string
	Summary    string
	Error      string
	Links      []Link
}

// Duration is how long the step ran, zero if it has not ended.
func (s StepState) Duration() time.Duration {
	if s.StartedAt.IsZero() || s.EndedAt.IsZero() {
		return 0
	}
	return s.EndedAt.Sub(s.StartedAt)
}

// EventKind names what happened on a run's timeline.
type EventKind string

// Timeline event kinds.
const (
	EventRunStarted   EventKind = "run.started"
	EventRunDone      EventKind = "run.done"
	EventRunAborted   EventKind = "run.aborted"
	EventStepWaiting  EventKind = "step.awaiting_approval"
	EventStepApproved EventKind = "step.approved" // one of several approvals
	EventStepRunning  EventKind = "step.running"
	EventStepProgress EventKind = "step.progress"
	EventStepDone     EventKind = "step.done"
	EventStepFailed   EventKind = "step.failed"
	EventStepSkipped  EventKind = "step.skipped"
	EventRefused      EventKind = "refused"
	EventNote         EventKind = "note"       // e.g. /dr notify text, re-attach after restart
	EventStage        EventKind = "stage"      // the incident moved to another stage
	EventUpdate       EventKind = "update"     // a stakeholder update was posted
	EventUpdateDue    EventKind = "update.due" // a stakeholder update is due (a reminder)
	EventRoles        EventKind = "roles"      // a lead was named
	EventDrill        EventKind = "drill"      // a DR test's result was recorded
	EventFollowUp     EventKind = "follow_up"  // a follow-up issue was raised
)

// Event is one line of a run's timeline. It is stored before it is announced.
type Event struct {
	RunID  string
	Seq    int64 // assigned by the store, increasing per run
	StepID string
	Kind   EventKind
	Actor  string
	At     time.Time
	Text   string
	Links  []Link
}

// Errors the engine and store return; check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict means a check-and-set lost: someone else changed the row first.
	ErrConflict = errors.New("changed by someone else")
)

// ActiveRunError refuses a second run for a service and environment.
type ActiveRunError struct {
	RunID, Service, Env string
}

func (e *ActiveRunError) Error() string {
	return fmt.Sprintf("run %s is already active for %s/%s", e.RunID, e.Service, e.Env)
}

// Refusal is a "no" for a person (not allowed, stale click, bad input), as
// opposed to a failure. Text is what the user is told.
type Refusal struct {
	Text string
	Err  error // the cause, if any (e.g. ErrConflict for a lost race)
}

func (r *Refusal) Error() string { return r.Text }

// Unwrap returns the cause.
func (r *Refusal) Unwrap() error { return r.Err }

// Refusef builds a Refusal.
func Refusef(format string, args ...any) error {
	return &Refusal{Text: fmt.Sprintf(format, args...)}
}

// IsRefusal reports whether err is a Refusal and returns its text.
func IsRefusal(err error) (string, bool) {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Text, true
	}
	return "", false
}
