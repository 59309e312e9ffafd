package runbook

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"
)

// data is what a step's templates see: the run's vars, what earlier steps
// remembered (or, for display, a placeholder naming the step that will, as
// long as it has not ended) and the step's own vars.
func data(run *Run, rb *Runbook, placeholders bool, steps []StepState) map[string]any {
	d := maps.Clone(run.Vars)
	remembered := maps.Clone(run.Remembered)
	if remembered == nil {
		remembered = map[string]any{}
	}
	if placeholders {
		for i, s := range rb.Steps {
			ended := i < len(steps) && steps[i].State.Terminal()
			if _, ok := remembered[s.Remember]; s.Remember != "" && !ok && !ended {
				remembered[s.Remember] = placeholder(s.Remember, s.ID)
			}
		}
	}
	d["remember"] = remembered
	return d
}

func doneFunc(steps []StepState) func(string) bool {
	return func(id string) bool {
		for _, st := range steps {
			if st.StepID == id {
				return st.State == Done
			}
		}
		return false
	}
}

// renderStep renders a step's `with` against d.
func renderStep(d map[string]any, step Step, steps []StepState) (Params, error) {
	r := renderer{data: d, done: doneFunc(steps)}
	local := map[string]any{}
	for _, name := range SortedKeys(step.Vars) {
		v, err := r.value(step.Vars[name], 0)
		if err != nil {
			return nil, fmt.Errorf("step %s var %s: %w", step.ID, name, err)
		}
		local[name] = v
	}
	d = maps.Clone(d)
	d["step"] = local
	r.data = d
	out := Params{}
	for _, key := range SortedKeys(step.With) {
		v, err := r.value(step.With[key], 0)
		if err != nil {
			return nil, fmt.Errorf("step %s with.%s: %w", step.ID, key, err)
		}
		out[key] = v
	}
	return out, nil
}

func (e *Engine) render(run *Run, step Step, steps []StepState) (Params, error) {
	rb, err := e.pinned(run)
	if err != nil {
		return nil, err
	}
	return renderStep(data(run, rb, false, steps), step, steps)
}

// RenderPlan renders every step of run for display (plans, step messages):
// values a later step will remember show as placeholders.
func RenderPlan(rb *Runbook, run *Run, steps []StepState) ([]Params, error) {
	d := data(run, rb, true, steps)
	out := make([]Params, len(rb.Steps))
	var problems []string
	for i, s := range rb.Steps {
		p, err := renderStep(d, s, steps)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out[i] = p
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("%s/%s cannot run %s: %s", run.Service, run.Env, rb.ID, strings.Join(problems, "; "))
	}
	return out, nil
}

// when evaluates a step's condition.
func (e *Engine) when(run *Run, step Step, steps []StepState) (bool, error) {
	rb, err := e.pinned(run)
	if err != nil {
		return false, err
	}
	r := renderer{data: data(run, rb, false, steps), done: doneFunc(steps)}
	s, err := r.text(step.When)
	if err != nil {
		return false, err
	}
	s = strings.TrimSpace(s)
	return s != "" && s != "false" && s != "<no value>", nil
}

// Control is something a person can do to a step now.
type Control string

// Controls offered on steps.
const (
	ControlApprove  Control = "approve"
	ControlMarkDone Control = "done" // a manual step: the same as approve
	ControlSkip     Control = "skip"
	ControlRetry    Control = "retry"
	// ControlChoose picks another value for what the step remembers (see
	// Chooser) instead of running it.
	ControlChoose Control = "choose"
)

// StepView is a step as people see it: definition, state, the exact call and
// what may be done now.
type StepView struct {
	Step      Step
	State     StepState
	Call      string // the exact call with rendered parameters
	Params    Params
	Simulated bool
	Controls  []Control
	// Links point at what the step will act on (e.g. the workflow file),
	// from its adapter, before it runs; what it started is in State.Links.
	Links []Link
}

// Linker is implemented by actions that can link to what a step with these
// parameters acts on, before it runs. Adapters build the links (they know
// the system's web address, e.g. GitHub Enterprise), renderers only show them.
type Linker interface {
	Links(p Params) []Link
}

// RunView is a run as people see it. Renderers (Slack blocks, the terminal)
// turn it into messages; deciding what to show is done here.
type RunView struct {
	Run     *Run
	Runbook *Runbook
	Steps   []StepView
}

// Current returns the step a person should look at: the first one that is
// not done or skipped.
func (v *RunView) Current() (StepView, bool) {
	for _, s := range v.Steps {
		if !s.State.State.Terminal() {
			return s, true
		}
	}
	return StepView{}, false
}

// Stamper is a Store that tells cheaply whether a run or its steps changed
// (store.Store does): View then rebuilds a run's view only when they did,
// not for every Slack message it renders.
type Stamper interface {
	// RunStamp is equal for equal states of a run and its steps.
	RunStamp(ctx context.Context, runID string) (string, error)
}

// viewCacheMax bounds the views kept; when full it starts over.
const viewCacheMax = 256

type cachedView struct {
	stamp string
	view  *RunView
}

// View returns a run's current view. Views are shared between callers: they
// must not be changed.
func (e *Engine) View(ctx context.Context, runID string) (*RunView, error) {
	st, ok := e.opts.Store.(Stamper)
	if !ok {
		return e.buildView(ctx, runID)
	}
	// The stamp is read before the view is built, so a view is never older
	// than its stamp: a newer one is only rebuilt once more.
	stamp, err := st.RunStamp(ctx, runID)
	if err != nil {
		return e.buildView(ctx, runID)
	}
	e.mu.Lock()
	c, hit := e.views[runID]
	e.mu.Unlock()
	if hit && c.stamp == stamp {
		return c.view, nil
	}
	v, err := e.buildView(ctx, runID)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.views) >= viewCacheMax {
		clear(e.views)
	}
	e.views[runID] = cachedView{stamp: stamp, view: v}
	e.mu.Unlock()
	return v, nil
}

func (e *Engine) buildView(ctx context.Context, runID string) (*RunView, error) {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return nil, err
	}
	steps, err := e.opts.Store.Steps(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("steps of %s: %w", runID, err)
	}
	return BuildView(run, rb, steps, e.opts.Actions), nil
}

// BuildView assembles a RunView; actions tell which steps are simulated.
func BuildView(run *Run, rb *Runbook, steps []StepState, actions Registry) *RunView {
	rb = rb.forRun(run)
	params, _ := RenderPlan(rb, run, steps)
	v := &RunView{Run: run, Runbook: rb}
	for i, s := range rb.Steps {
		sv := StepView{Step: s, Params: params[i], Call: Describe(s.Action, params[i])}
		sv.Step.Approvals = Approvals(s, params[i])
		if i < len(steps) {
			sv.State = steps[i]
		}
		if a, ok := actions[s.Action]; ok {
			sv.Simulated = isSimulated(a)
			if l, ok := a.(Linker); ok && params[i] != nil && !pending(params[i]) {
				sv.Links = l.Links(params[i])
			}
		}
		if run.State == RunActive {
			sv.Controls = controls(s, sv.State.State)
			if _, ok := actions[s.Action].(Chooser); ok && s.Remember != "" && sv.State.State == AwaitingApproval {
				sv.Controls = append(sv.Controls, ControlChoose)
			}
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}

func controls(s Step, st State) []Control {
	switch st {
	case AwaitingApproval:
		if s.Action == ManualKind {
			return []Control{ControlMarkDone, ControlSkip}
		}
		return []Control{ControlApprove, ControlSkip}
	case Failed:
		return []Control{ControlRetry, ControlSkip}
	}
	return nil
}

// Summary is a run's closing report.
type Summary struct {
	RunID                 string
	Title                 string
	Done, Skipped, Failed int
	Pending               int
	TimeToRecover         time.Duration
	Steps                 []StepSummary
}

// StepSummary is one step's line in the report.
type StepSummary struct {
	ID, Title string
	State     State
	Actor     string
	Duration  time.Duration
	Summary   string
	Error     string
}

// Summarize builds the closing report of a run as of now.
func Summarize(run *Run, rb *Runbook, steps []StepState, now time.Time) Summary {
	s := Summary{RunID: run.ID, Title: rb.Title}
	end := run.EndedAt
	if end.IsZero() {
		end = now
	}
	s.TimeToRecover = end.Sub(run.StartedAt)
	for i, st := range steps {
		title := st.StepID
		if i < len(rb.Steps) {
			title = rb.Steps[i].Title
		}
		switch st.State {
		case Done:
			s.Done++
		case Skipped:
			s.Skipped++
		case Failed:
			s.Failed++
		default:
			s.Pending++
		}
		s.Steps = append(s.Steps, StepSummary{ID: st.StepID, Title: title, State: st.State, Actor: st.Actor, Duration: st.Duration(), Summary: st.Summary, Error: st.Error})
	}
	return s
}

// Line is the summary in one line, e.g. for the run.done event.
func (s Summary) Line() string {
	return fmt.Sprintf("run finished: %d done, %d skipped, %d failed; time to recover %s", s.Done, s.Skipped, s.Failed, HumanDuration(s.TimeToRecover))
}
