package runbook

import (
	"strings"
	"time"
)

// StepObserver is told how steps end and how long actions take, for metrics.
// The engine calls it from its executor goroutines, so it must be quick and
// safe for concurrent use. The runbook package knows nothing of how the
// numbers are kept (cmd wires a Prometheus implementation).
type StepObserver interface {
	// StepEnded reports a step of action kind that reached a terminal
	// state (Done, Failed, Skipped); d is from its claim to its end (zero
	// for a step skipped without running).
	StepEnded(kind string, outcome State, d time.Duration)
	// ActionCalled reports one call of an action of kind: how long it took
	// and its error (nil on success). A retried call is reported each time.
	ActionCalled(kind string, d time.Duration, err error)
}

// Family is the adapter family of an action kind: the part before the
// first dot ("github" of "github.workflow", "manual" of "manual").
func Family(kind string) string {
	family, _, _ := strings.Cut(kind, ".")
	return family
}

// nopObserver is the StepObserver of an engine without metrics.
type nopObserver struct{}

func (nopObserver) StepEnded(string, State, time.Duration)    {}
func (nopObserver) ActionCalled(string, time.Duration, error) {}

// observeEnd reports a step's end to the observer, with its action kind.
func (e *Engine) observeEnd(run *Run, st StepState) {
	kind := ""
	if rb, err := e.pinned(run); err == nil {
		if step, ok := rb.Step(st.StepID); ok {
			kind = step.Action
		}
	}
	var d time.Duration
	if st.State != Skipped || !st.StartedAt.Equal(st.EndedAt) {
		d = st.Duration()
	}
	e.opts.Observer.StepEnded(kind, st.State, d)
}
