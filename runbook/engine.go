package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Authorizer decides who may act on runs (approve, skip, retry, abort).
type Authorizer interface {
	MayAct(ctx context.Context, actor string) (bool, error)
}

// Options configure an Engine. Store and Actions are required.
type Options struct {
	Store      Store
	Actions    Registry
	Notifier   Notifier   // nil: nobody is told
	Authorizer Authorizer // nil: everyone may act (the terminal)
	Clock      Clock      // nil: the system clock
	Logger     *zap.Logger
	// StepTimeout bounds a step without its own timeout (default 2h).
	StepTimeout time.Duration
	// RetryBackoff is the first wait after a retryable error; it doubles up to
	// MaxAttempts tries (defaults 2s and 5).
	RetryBackoff time.Duration
	MaxAttempts  int
	NewID        func(now time.Time) string
	// Guard lists the live resources of every configured environment; no
	// destructive step may target one, whatever its runbook says.
	Guard Guard
	// Setup is how this engine runs steps: the config file and store it was
	// given (the adapter families and which are simulated come from Actions).
	// New runs record it; runs started with another setup are refused.
	Setup Setup
	// Executor runs claimed steps off the caller's goroutine (nil: a pool
	// of goroutines bounded by MaxSteps overall and MaxStepsPerRun per run,
	// defaults 256 and 2). Tests and the terminal use SyncExecutor.
	Executor       Executor
	MaxSteps       int
	MaxStepsPerRun int
	// Observer is told how steps end and how long actions take, for
	// metrics (nil: nobody).
	Observer StepObserver
	// Owner names this replica when replicas share the store: with a
	// store that implements StepLeaser, the steps it runs carry its lease
	// (Lease long, default DefaultLease; KeepLeases renews them) and it
	// re-attaches steps whose lease ended. Empty: one process, no leases.
	Owner string
	Lease time.Duration
	// Cadence is how often the comms lead is reminded to update the
	// stakeholders (defaults 60 minutes, 30 for P1).
	Cadence Cadence
}

// Engine runs runbooks: it owns every state transition, writes each one to the
// Store before announcing it, and knows nothing of Slack or the adapters.
type Engine struct {
	opts Options
	log  *zap.Logger

	mu      sync.Mutex
	cancels map[string]context.CancelFunc // running steps in this process, by run/step
	parsed  map[string]*Runbook           // pinned runbooks by version
	queued  map[string]int                // steps handed to the executor, by run/step
	views   map[string]cachedView         // the last view built, by run (View)

	tasks sync.WaitGroup // executor tasks in flight (Wait)

	leases *leases // nil without Options.Owner or a StepLeaser store
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.StepTimeout == 0 {
		opts.StepTimeout = 2 * time.Hour
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 2 * time.Second
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 5
	}
	if opts.NewID == nil {
		opts.NewID = newRunID
	}
	if opts.Executor == nil {
		opts.Executor = NewPoolExecutor(opts.MaxSteps, opts.MaxStepsPerRun)
	}
	opts.Setup.Families, opts.Setup.Simulated = families(opts.Actions)
	return &Engine{opts: opts, log: opts.Logger.Named("engine"), cancels: map[string]context.CancelFunc{},
		parsed: map[string]*Runbook{}, queued: map[string]int{}, views: map[string]cachedView{}, leases: newLeases(opts)}
}

func newRunID(now time.Time) string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "dr-" + now.UTC().Format("20060102-1504") + "-" + hex.EncodeToString(b)
}

// StartRequest asks for a new run.
type StartRequest struct {
	Runbook *Runbook
	Service string
	Env     string
	// Config holds the template roots that come from drbot.yaml: service,
	// env and workflows.
	Config map[string]any
	Inputs map[string]string // as typed
	Actor  string
	Meta   map[string]string
	// Incident is what the playbook declares: priority, kind, leads and a
	// description. Its stage and cadence are set by the engine.
	Incident Incident
}

// Start validates the inputs, stores the run and advances it to its first
// step (an automatic first step runs on the executor). Bad input returns a
// *Refusal and stores nothing.
func (e *Engine) Start(ctx context.Context, req StartRequest) (*Run, error) {
	run, steps, ev, err := e.newRun(req)
	if err != nil {
		return nil, err
	}
	if err := e.opts.Store.CreateRun(ctx, run, steps, ev); err != nil {
		var active *ActiveRunError
		if errors.As(err, &active) {
			return nil, activeRefusal(active)
		}
		return nil, fmt.Errorf("create run: %w", err)
	}
	e.log.Info("run started", zap.String("run_id", run.ID), zap.String("runbook", run.RunbookID), zap.String("user_id", req.Actor))
	e.notify(ctx, run, *ev)
	return run, e.advance(ctx, run.ID)
}

// Check does everything Start does except storing the run: callers that must
// create something first (the incident channel) check before they create.
func (e *Engine) Check(ctx context.Context, req StartRequest) error {
	if _, _, _, err := e.newRun(req); err != nil {
		return err
	}
	runs, err := e.opts.Store.Runs(ctx, true, 0)
	if err != nil {
		return fmt.Errorf("list active runs: %w", err)
	}
	for _, r := range runs {
		if r.Service == req.Service && r.Env == req.Env {
			return activeRefusal(&ActiveRunError{RunID: r.ID, Service: r.Service, Env: r.Env})
		}
	}
	return nil
}

// Plan resolves a run without storing or running anything: every step with
// its exact call, for `drbot plan`.
func (e *Engine) Plan(req StartRequest) (*RunView, error) {
	run, steps, _, err := e.newRun(req)
	if err != nil {
		return nil, err
	}
	return BuildView(run, req.Runbook.forRun(run), steps, e.opts.Actions), nil
}

func activeRefusal(active *ActiveRunError) error {
	return &Refusal{Text: fmt.Sprintf("run %s is already active for %s/%s; finish or abort it first", active.RunID, active.Service, active.Env), Err: active}
}

// newRun builds a run from a request: inputs parsed, run vars rendered and
// every step rendered, so a missing config value stops the start rather than
// step 9 at 3 a.m.
func (e *Engine) newRun(req StartRequest) (*Run, []StepState, *Event, error) {
	now := e.opts.Clock.Now()
	incident, rawInputs, err := e.declare(req, now)
	if err != nil {
		return nil, nil, nil, err
	}
	inputs, err := ParseInputs(req.Runbook, rawInputs, now)
	if err != nil {
		return nil, nil, nil, &Refusal{Text: err.Error()}
	}
	if err := e.opts.Guard.CheckInputs(req.Runbook, inputs); err != nil {
		return nil, nil, nil, &Refusal{Text: err.Error()}
	}
	run := &Run{
		ID: e.opts.NewID(now), RunbookID: req.Runbook.ID, Runbook: req.Runbook.Raw, Version: 1,
		Service: req.Service, Env: req.Env, State: RunActive, StartedBy: req.Actor, StartedAt: now,
		Remembered: map[string]any{}, Meta: maps.Clone(req.Meta), Vars: maps.Clone(req.Config),
		Setup: e.opts.Setup, Incident: incident,
	}
	if run.Meta == nil {
		run.Meta = map[string]string{}
	}
	if run.Vars == nil {
		run.Vars = map[string]any{}
	}
	run.Vars["inputs"] = inputs
	run.Vars["run"] = map[string]any{"id": run.ID, "started": now.Format(time.RFC3339), "by": req.Actor, "service": req.Service, "env": req.Env}
	vars := map[string]any{}
	r := renderer{data: run.Vars}
	for _, v := range req.Runbook.Vars {
		got, err := r.value(v.Value, 0)
		if err != nil {
			return nil, nil, nil, &Refusal{Text: fmt.Sprintf("runbook %s var %s: %v (check drbot.yaml for %s/%s)", req.Runbook.ID, v.Name, err, req.Service, req.Env)}
		}
		vars[v.Name] = got
	}
	run.Vars["vars"] = vars
	params, err := RenderPlan(req.Runbook, run, nil)
	if err != nil {
		// Steps that did render are checked too: every problem at once.
		return nil, nil, nil, &Refusal{Text: errors.Join(err, e.checkSteps(req.Runbook, params)).Error()}
	}
	// Every step whose parameters are known now is checked now, with the
	// same contract its adapter uses: a bad value stops the start, not step 9.
	if err := e.checkSteps(req.Runbook, params); err != nil {
		return nil, nil, nil, &Refusal{Text: fmt.Sprintf("%s/%s cannot run %s: %v", req.Service, req.Env, req.Runbook.ID, err)}
	}
	steps := make([]StepState, len(req.Runbook.Steps))
	for i, s := range req.Runbook.Steps {
		steps[i] = StepState{RunID: run.ID, StepID: s.ID, Index: i, State: Pending, Version: 1}
	}
	ev := &Event{RunID: run.ID, Kind: EventRunStarted, Actor: req.Actor, At: now,
		Text: fmt.Sprintf("started %s (%s) for %s/%s%s%s", req.Runbook.ID, req.Runbook.Title, req.Service, req.Env, describeInputs(req.Runbook, inputs), describeIncident(incident))}
	return run, steps, ev, nil
}

func describeInputs(rb *Runbook, inputs map[string]any) string {
	var parts []string
	for _, in := range rb.Inputs {
		v := inputs[in.Name]
		if v == "" || v == nil {
			continue
		}
		if in.Type == InputTime {
			t, _ := time.Parse(time.RFC3339, v.(string))
			v = FormatUTC(t)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", in.Name, v))
	}
	if len(parts) == 0 {
		return ""
	}
	return " with " + strings.Join(parts, ", ")
}

// updateRun applies change to a fresh copy of the run and saves it, retrying
// when another writer got there first.
func (e *Engine) updateRun(ctx context.Context, runID string, change func(*Run) error, ev *Event) error {
	for range 5 {
		run, err := e.opts.Store.Run(ctx, runID)
		if err != nil {
			return fmt.Errorf("load run %s: %w", runID, err)
		}
		if err := change(run); err != nil {
			return err
		}
		run.Version++
		err = e.opts.Store.SaveRun(ctx, run, ev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("save run %s: %w", runID, err)
		}
		if ev != nil {
			e.log.Info(string(ev.Kind), zap.String("run_id", runID), zap.String("user_id", ev.Actor))
			e.notify(ctx, run, *ev)
		}
		return nil
	}
	return fmt.Errorf("save run %s: %w", runID, ErrConflict)
}

func (e *Engine) notify(ctx context.Context, run *Run, ev Event) {
	if e.opts.Notifier != nil {
		e.opts.Notifier.Notify(ctx, run, ev)
	}
	e.followStage(ctx, run.ID, ev.Kind)
}

// load returns a run and its pinned runbook.
func (e *Engine) load(ctx context.Context, runID string) (*Run, *Runbook, error) {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, Refusef("there is no run %s", runID)
		}
		return nil, nil, fmt.Errorf("load run %s: %w", runID, err)
	}
	rb, err := e.pinned(run)
	if err != nil {
		return nil, nil, err
	}
	return run, rb, nil
}

// pinned parses the runbook a run started with, its step titles rendered
// for the run (cached by run and content).
func (e *Engine) pinned(run *Run) (*Runbook, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := run.ID + "\x00" + string(run.Runbook)
	if rb, ok := e.parsed[key]; ok {
		return rb, nil
	}
	rb, err := Load(run.RunbookID+" (pinned by run "+run.ID+")", run.Runbook)
	if err != nil {
		return nil, fmt.Errorf("pinned runbook of %s: %w", run.ID, err)
	}
	rb = rb.forRun(run)
	e.parsed[key] = rb
	return rb, nil
}

// forRun returns rb with its step titles rendered against the run's values,
// so a title says the configured branch, not "main". A title that cannot
// render stays as written.
func (rb *Runbook) forRun(run *Run) *Runbook {
	out := *rb
	out.Steps = slices.Clone(rb.Steps)
	r := renderer{data: run.Vars}
	for i, s := range out.Steps {
		if !strings.Contains(s.Title, "{{") {
			continue
		}
		if t, err := r.text(s.Title); err == nil {
			out.Steps[i].Title = t
		}
	}
	return &out
}
