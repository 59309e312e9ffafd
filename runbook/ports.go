package runbook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store persists runs, steps and timeline events. Implementations must make
// SwapStep and SaveRun atomic check-and-sets: that is what makes a double
// click, a Slack redelivery or a second replica harmless.
type Store interface {
	// CreateRun stores a new run with its steps and first event. It returns an
	// *ActiveRunError if an active run exists for the same service and env.
	CreateRun(ctx context.Context, run *Run, steps []StepState, ev *Event) error
	// Run returns a run by id, or ErrNotFound.
	Run(ctx context.Context, id string) (*Run, error)
	// Runs lists runs, newest first; activeOnly limits it to active runs.
	Runs(ctx context.Context, activeOnly bool, limit int) ([]*Run, error)
	// SaveRun writes run if the stored version is run.Version-1, else ErrConflict.
	// ev, if not nil, is appended in the same transaction.
	SaveRun(ctx context.Context, run *Run, ev *Event) error
	// Steps returns a run's steps in runbook order.
	Steps(ctx context.Context, runID string) ([]StepState, error)
	// SwapStep writes step if the stored version is step.Version-1, else
	// ErrConflict. ev, if not nil, is appended in the same transaction.
	SwapStep(ctx context.Context, step StepState, ev *Event) error
	// AppendEvent stores ev and sets ev.Seq.
	AppendEvent(ctx context.Context, ev *Event) error
	// Events returns a run's timeline in order.
	Events(ctx context.Context, runID string) ([]Event, error)
	// Claim records, durably and atomically, that claim.RunID/StepID owns
	// claim.Resource. Claiming again from the same step is a no-op; when
	// another step holds the resource it returns a *ClaimedError naming that
	// step (errors.Is ErrClaimed) and changes nothing.
	Claim(ctx context.Context, claim Claim) error
	// ClaimOf returns the claim on resource, or ErrNotFound.
	ClaimOf(ctx context.Context, resource string) (Claim, error)
}

// Claim says that one step of one run owns an external resource, such as the
// workflow run its dispatch started. Resources are keyed by a string the
// adapter builds, e.g. "github-run:owner/repo:123". A claim is never
// released: a GitHub run that did one step's work must never be taken for
// another step's, even after the first run ends.
type Claim struct {
	Resource string
	RunID    string
	StepID   string
	At       time.Time
}

// ErrClaimed means a resource is claimed by another step.
var ErrClaimed = errors.New("claimed by another step")

// ClaimedError is a refused claim: Holder owns the resource.
type ClaimedError struct{ Holder Claim }

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("%s is claimed by step %s of run %s", e.Holder.Resource, e.Holder.StepID, e.Holder.RunID)
}

// Is makes errors.Is(err, ErrClaimed) true.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// Notifier announces timeline events (Slack, the terminal). It is called after
// the event is stored; it must not block the engine for long.
type Notifier interface {
	Notify(ctx context.Context, run *Run, ev Event)
}

// Clock tells the time; tests inject a fixed one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Action performs one kind of step (see Kinds). Adapters implement it; the
// engine looks actions up by kind in a Registry.
type Action interface {
	Run(ctx context.Context, req Request) (Result, error)
}

// Simulator is implemented by actions that touch nothing real. The engine
// marks everything they report as SIMULATED.
type Simulator interface {
	Simulated() bool
}

// Registry maps action kinds to their implementations.
type Registry map[string]Action

// Request is what an action gets to run a step.
type Request struct {
	RunID   string
	StepID  string
	Attempt int
	Actor   string // who approved
	Params  Params // the step's rendered `with`
	// Checkpoint is what an earlier process saved for this same attempt; when
	// it is not empty the action must re-attach to what it started rather
	// than act again.
	Checkpoint map[string]string
	// Save persists a checkpoint. Call it before an irreversible call whose
	// result must be found again after a crash (e.g. before a dispatch).
	Save func(ctx context.Context, checkpoint map[string]string) error
	// Progress reports a long step's progress (text plus optional links).
	Progress func(ctx context.Context, text string, links ...Link)
	// Claim takes an external resource (see Claim) for this step before the
	// action treats it as its own: nil if the step holds it now, a
	// *ClaimedError (errors.Is ErrClaimed) if another step does. Nil when
	// nothing keeps claims, as in some adapter tests.
	Claim func(ctx context.Context, resource string) error
	// ClaimOf returns the claim on resource, or ErrNotFound, so that an
	// action can pass over what other steps own without claiming it. Nil
	// when Claim is.
	ClaimOf func(ctx context.Context, resource string) (Claim, error)
}

// Result is what a finished action reports.
type Result struct {
	Summary  string // one line for the timeline, e.g. "scaled 2 deployments to 0"
	Links    []Link
	Remember any // stored under the step's `remember` name
}

// retryable marks an error as worth trying again (rate limits, 5xx, conflicts).
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retryable marks err as transient: the engine retries the step with backoff.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// IsRetryable reports whether err, or an error it wraps, was marked Retryable.
func IsRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}
