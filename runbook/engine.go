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
}

// Engine runs runbooks: it owns every state transition, writes each one to the
// Store before announcing it, and knows nothing of Slack or the adapters.
type Engine struct {
	opts Options
	log  *zap.Logger

	mu      sync.Mutex
	cancels map[string]context.CancelFunc // running steps in this process, by run/step
	parsed  map[string]*Runbook           // pinned runbooks by version
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
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
	return &Engine{opts: opts, log: opts.Logger, cancels: map[string]context.CancelFunc{}, parsed: map[string]*Runbook{}}
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
}

// Start validates the inputs, stores the run and advances it to its first
// step. Bad input returns a *Refusal and stores nothing.
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
	return BuildView(run, req.Runbook, steps, e.opts.Actions), nil
}

func activeRefusal(active *ActiveRunError) error {
	return &Refusal{Text: fmt.Sprintf("run %s is already active for %s/%s; finish or abort it first", active.RunID, active.Service, active.Env)}
}

// newRun builds a run from a request: inputs parsed, run vars rendered and
// every step rendered, so a missing config value stops the start rather than
// step 9 at 3 a.m.
func (e *Engine) newRun(req StartRequest) (*Run, []StepState, *Event, error) {
	now := e.opts.Clock.Now()
	inputs, err := ParseInputs(req.Runbook, req.Inputs, now)
	if err != nil {
		return nil, nil, nil, &Refusal{Text: err.Error()}
	}
	run := &Run{
		ID: e.opts.NewID(now), RunbookID: req.Runbook.ID, Runbook: req.Runbook.Raw, Version: 1,
		Service: req.Service, Env: req.Env, State: RunActive, StartedBy: req.Actor, StartedAt: now,
		Remembered: map[string]any{}, Meta: maps.Clone(req.Meta), Vars: maps.Clone(req.Config),
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
	if _, err := RenderPlan(req.Runbook, run, nil); err != nil {
		return nil, nil, nil, &Refusal{Text: err.Error()}
	}
	steps := make([]StepState, len(req.Runbook.Steps))
	for i, s := range req.Runbook.Steps {
		steps[i] = StepState{RunID: run.ID, StepID: s.ID, Index: i, State: Pending, Version: 1}
	}
	ev := &Event{RunID: run.ID, Kind: EventRunStarted, Actor: req.Actor, At: now,
		Text: fmt.Sprintf("started %s (%s) for %s/%s%s", req.Runbook.ID, req.Runbook.Title, req.Service, req.Env, describeInputs(req.Runbook, inputs))}
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

// Approve records actor's approval of a step awaiting it at version. When the
// step has all the approvals it needs, Approve claims it (one atomic
// check-and-set: a double click or a second replica finds it claimed) and runs
// it, then advances the run. It returns when the step has finished.
// A manual step is marked done by approving it.
func (e *Engine) Approve(ctx context.Context, runID, stepID string, version int, actor string) error {
	// A step awaits approval once, so any click on it while it still awaits
	// is current even if its version moved (another person approved first);
	// a lost check-and-set between two approvers is simply tried again.
	for try := 1; ; try++ {
		err := e.approve(ctx, runID, stepID, version, actor)
		if try < 3 && errors.Is(err, ErrConflict) {
			continue
		}
		return err
	}
}

func (e *Engine) approve(ctx context.Context, runID, stepID string, version int, actor string) error {
	cur, err := e.step(ctx, runID, stepID)
	if err == nil && cur.State == AwaitingApproval && cur.Version > version {
		version = cur.Version
	}
	run, rb, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "approve", AwaitingApproval)
	if err != nil {
		return err
	}
	if slices.Contains(st.Approvers, actor) {
		return e.refuse(ctx, run, stepID, actor, fmt.Sprintf("you already approved %q; it needs a second person", step.Title))
	}
	now := e.opts.Clock.Now()
	st.Approvers = append(st.Approvers, actor)
	st.Actor = actor
	st.Version++
	if len(st.Approvers) < step.Approvals {
		ev := &Event{RunID: runID, StepID: stepID, Kind: EventStepApproved, Actor: actor, At: now,
			Text: fmt.Sprintf("approved %q (%d of %d approvals; a second person must approve)", step.Title, len(st.Approvers), step.Approvals)}
		return e.swap(ctx, run, st, ev)
	}
	if err := e.claim(ctx, run, &st, step, actor); err != nil {
		return err
	}
	e.execute(ctx, run, rb, st, step)
	return e.advance(ctx, runID)
}

// Retry runs a failed step again.
func (e *Engine) Retry(ctx context.Context, runID, stepID string, version int, actor string) error {
	run, rb, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "retry", Failed)
	if err != nil {
		return err
	}
	st.Attempt++
	st.Checkpoint = nil
	st.Error = ""
	st.Version++
	if err := e.claim(ctx, run, &st, step, actor); err != nil {
		return err
	}
	e.execute(ctx, run, rb, st, step)
	return e.advance(ctx, runID)
}

// Skip skips a step awaiting approval or one that failed.
func (e *Engine) Skip(ctx context.Context, runID, stepID string, version int, actor, reason string) error {
	run, _, st, step, err := e.actionable(ctx, runID, stepID, version, actor, "skip", AwaitingApproval, Failed)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("skipped %q", step.Title)
	if reason != "" {
		text += ": " + reason
	}
	if err := e.finish(ctx, run, st, Skipped, actor, text, nil); err != nil {
		return err
	}
	return e.advance(ctx, runID)
}

// Abort ends a run: nothing further runs, and a running step is cancelled.
func (e *Engine) Abort(ctx context.Context, runID, actor, reason string) error {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("abort %s: %w", runID, err)
	}
	if err := e.authorize(ctx, run, "", actor, "abort the run"); err != nil {
		return err
	}
	if run.State != RunActive {
		return Refusef("run %s is already %s", runID, run.State)
	}
	text := "aborted the run"
	if reason != "" {
		text += ": " + reason
	}
	now := e.opts.Clock.Now()
	if err := e.updateRun(ctx, runID, func(r *Run) error {
		if r.State != RunActive {
			return Refusef("run %s is already %s", runID, r.State)
		}
		r.State, r.EndedAt = RunAborted, now
		return nil
	}, &Event{RunID: runID, Kind: EventRunAborted, Actor: actor, At: now, Text: text}); err != nil {
		return err
	}
	e.mu.Lock()
	for key, cancel := range e.cancels {
		if strings.HasPrefix(key, runID+"/") {
			cancel()
		}
	}
	e.mu.Unlock()
	return nil
}

// Note adds a free-text event to the timeline (e.g. a stakeholder update).
func (e *Engine) Note(ctx context.Context, runID, actor, text string) error {
	run, err := e.opts.Store.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("note on %s: %w", runID, err)
	}
	ev := Event{RunID: runID, Kind: EventNote, Actor: actor, At: e.opts.Clock.Now(), Text: text}
	if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
		return fmt.Errorf("note on %s: %w", runID, err)
	}
	e.notify(ctx, run, ev)
	return nil
}

// SetMeta stores a value of the caller's (e.g. a Slack message ts) on the run.
func (e *Engine) SetMeta(ctx context.Context, runID string, kv map[string]string) error {
	return e.updateRun(ctx, runID, func(r *Run) error {
		maps.Copy(r.Meta, kv)
		return nil
	}, nil)
}

// Resume picks up every active run after a restart: running steps are
// re-attached (the action gets its checkpoint and finds what it started
// instead of acting again), others are advanced. It returns when the steps it
// re-attached have finished.
func (e *Engine) Resume(ctx context.Context) error {
	runs, err := e.opts.Store.Runs(ctx, true, 0)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var errs []error
	for _, run := range runs {
		if err := e.ResumeRun(ctx, run.ID); err != nil {
			errs = append(errs, fmt.Errorf("resume %s: %w", run.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ResumeRun resumes one run (see Resume).
func (e *Engine) ResumeRun(ctx context.Context, runID string) error {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return err
	}
	if run.State != RunActive {
		return Refusef("run %s is %s", runID, run.State)
	}
	steps, err := e.opts.Store.Steps(ctx, runID)
	if err != nil {
		return fmt.Errorf("steps of %s: %w", runID, err)
	}
	for _, st := range steps {
		if st.State != Running || e.isRunningHere(runID, st.StepID) {
			continue
		}
		step, _ := rb.Step(st.StepID)
		ev := Event{RunID: runID, StepID: st.StepID, Kind: EventNote, Actor: "drbot", At: e.opts.Clock.Now(),
			Text: fmt.Sprintf("re-attaching to %q after a restart (attempt %d)", step.Title, st.Attempt)}
		if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
			return fmt.Errorf("resume %s: %w", runID, err)
		}
		e.notify(ctx, run, ev)
		e.execute(ctx, run, rb, st, step)
	}
	return e.advance(ctx, runID)
}

func (e *Engine) isRunningHere(runID, stepID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.cancels[runID+"/"+stepID]
	return ok
}

// actionable loads a step for a person's click and refuses a click that is
// not allowed, stale (the step moved on) or on a finished run.
func (e *Engine) actionable(ctx context.Context, runID, stepID string, version int, actor, verb string, want ...State) (*Run, *Runbook, StepState, Step, error) {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return nil, nil, StepState{}, Step{}, err
	}
	step, ok := rb.Step(stepID)
	if !ok {
		return nil, nil, StepState{}, Step{}, Refusef("run %s has no step %q", runID, stepID)
	}
	if err := e.authorize(ctx, run, stepID, actor, verb+" "+fmt.Sprintf("%q", step.Title)); err != nil {
		return nil, nil, StepState{}, Step{}, err
	}
	if run.State != RunActive {
		return nil, nil, StepState{}, Step{}, Refusef("run %s is %s; nothing more runs", runID, run.State)
	}
	st, err := e.step(ctx, runID, stepID)
	if err != nil {
		return nil, nil, StepState{}, Step{}, err
	}
	if !slices.Contains(want, st.State) || (version != 0 && st.Version != version) {
		return nil, nil, StepState{}, Step{}, &Refusal{Text: staleText(step, st)}
	}
	return run, rb, st, step, nil
}

// staleText tells a late or second click what already happened.
func staleText(step Step, st StepState) string {
	who := st.Actor
	if who == "" {
		who = "drbot"
	}
	at := st.StartedAt
	if !st.EndedAt.IsZero() {
		at = st.EndedAt
	}
	switch st.State {
	case Running:
		return fmt.Sprintf("%q is already running (approved by %s at %s)", step.Title, who, at.Format("15:04:05 UTC"))
	case Done:
		return fmt.Sprintf("%q is already done (approved by %s, finished %s)", step.Title, who, at.Format("15:04:05 UTC"))
	case Skipped:
		return fmt.Sprintf("%q was already skipped by %s at %s", step.Title, who, at.Format("15:04:05 UTC"))
	case Pending:
		return fmt.Sprintf("%q is not ready yet: earlier steps come first", step.Title)
	}
	return fmt.Sprintf("%q changed since this message (now %s); use the latest message", step.Title, st.State)
}

func (e *Engine) authorize(ctx context.Context, run *Run, stepID, actor, what string) error {
	if e.opts.Authorizer == nil {
		return nil
	}
	ok, err := e.opts.Authorizer.MayAct(ctx, actor)
	if err != nil {
		return fmt.Errorf("check approver %s: %w", actor, err)
	}
	if ok {
		return nil
	}
	return e.refuse(ctx, run, stepID, actor, "you are not a configured approver, so you may not "+what+"; ask an approver")
}

// refuse audits a refusal on the timeline and returns it.
func (e *Engine) refuse(ctx context.Context, run *Run, stepID, actor, text string) error {
	ev := Event{RunID: run.ID, StepID: stepID, Kind: EventRefused, Actor: actor, At: e.opts.Clock.Now(), Text: "refused: " + text}
	if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
		return fmt.Errorf("audit refusal: %w", err)
	}
	e.log.Warn("refused", zap.String("run_id", run.ID), zap.String("step_id", stepID), zap.String("user_id", actor), zap.String("reason", text))
	e.notify(ctx, run, ev)
	return &Refusal{Text: text}
}

// claim moves a step to running in one check-and-set.
func (e *Engine) claim(ctx context.Context, run *Run, st *StepState, step Step, actor string) error {
	now := e.opts.Clock.Now()
	st.State, st.Actor, st.StartedAt, st.EndedAt = Running, actor, now, time.Time{}
	if st.Attempt == 0 {
		st.Attempt = 1
	}
	who := actor
	if step.Auto && actor == "drbot" {
		who = "automatically"
	} else {
		who = "approved by " + who
	}
	ev := &Event{RunID: run.ID, StepID: st.StepID, Kind: EventStepRunning, Actor: actor, At: now,
		Text: fmt.Sprintf("running %q (%s, attempt %d)", step.Title, who, st.Attempt)}
	return e.swap(ctx, run, *st, ev)
}

// swap writes a step transition and announces its event. A lost
// check-and-set becomes a refusal that says what happened instead.
func (e *Engine) swap(ctx context.Context, run *Run, st StepState, ev *Event) error {
	if err := e.opts.Store.SwapStep(ctx, st, ev); err != nil {
		if errors.Is(err, ErrConflict) {
			cur, cerr := e.step(ctx, run.ID, st.StepID)
			if cerr == nil {
				rb, _ := e.pinned(run)
				step, _ := rb.Step(st.StepID)
				return &Refusal{Text: staleText(step, cur), Err: ErrConflict}
			}
		}
		return fmt.Errorf("save step %s/%s: %w", run.ID, st.StepID, err)
	}
	if ev != nil {
		e.log.Info(string(ev.Kind), zap.String("run_id", run.ID), zap.String("step_id", st.StepID), zap.String("user_id", ev.Actor), zap.Int("version", st.Version))
		e.notify(ctx, run, *ev)
	}
	return nil
}

func (e *Engine) step(ctx context.Context, runID, stepID string) (StepState, error) {
	steps, err := e.opts.Store.Steps(ctx, runID)
	if err != nil {
		return StepState{}, fmt.Errorf("steps of %s: %w", runID, err)
	}
	for _, st := range steps {
		if st.StepID == stepID {
			return st, nil
		}
	}
	return StepState{}, fmt.Errorf("step %s/%s: %w", runID, stepID, ErrNotFound)
}

// execute runs a claimed step's action to its end and records the outcome.
// Failures are recorded on the step, not returned: a person decides (Retry/Skip).
func (e *Engine) execute(ctx context.Context, run *Run, rb *Runbook, st StepState, step Step) {
	log := e.log.With(zap.String("run_id", run.ID), zap.String("step_id", step.ID), zap.Int("attempt", st.Attempt))
	timeout := step.Timeout
	if timeout == 0 {
		timeout = e.opts.StepTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	key := run.ID + "/" + step.ID
	e.mu.Lock()
	e.cancels[key] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.cancels, key)
		e.mu.Unlock()
		cancel()
	}()

	res, err := e.invoke(sctx, run, rb, &st, step, log)
	if ctx.Err() != nil {
		// Shutting down: leave the step running; Resume re-attaches.
		log.Info("step left running for resume", zap.Error(ctx.Err()))
		return
	}
	// Remember before recording the outcome: a failed attempt may already
	// have changed things (scaled to 0, then the rollout timed out), and its
	// Retry must restore the counts from before the first attempt.
	if rerr := e.remember(ctx, run.ID, step, res); rerr != nil {
		log.Error("remember", zap.Error(rerr))
		if err == nil {
			err = fmt.Errorf("could not store %s: %w", step.Remember, rerr)
		}
	}
	if err != nil {
		if cur, rerr := e.opts.Store.Run(ctx, run.ID); rerr == nil && cur.State == RunAborted {
			err = fmt.Errorf("cancelled: the run was aborted")
		}
		log.Warn("step failed", zap.Error(err))
		if ferr := e.finish(ctx, run, st, Failed, st.Actor, fmt.Sprintf("%q failed: %v", step.Title, err), &res); ferr != nil {
			log.Error("record failure", zap.Error(ferr))
		}
		return
	}
	text := fmt.Sprintf("%q done", step.Title)
	if res.Summary != "" {
		text += ": " + res.Summary
	}
	if err := e.finish(ctx, run, st, Done, st.Actor, text, &res); err != nil {
		log.Error("record success", zap.Error(err))
	}
}

// remember keeps the value a step reports under its `remember` name. The
// first attempt that reports one wins: a retry reads the state the failed
// attempt left (replicas already 0), not the state before the incident.
func (e *Engine) remember(ctx context.Context, runID string, step Step, res Result) error {
	if step.Remember == "" || res.Remember == nil {
		return nil
	}
	return e.updateRun(ctx, runID, func(r *Run) error {
		if _, kept := r.Remembered[step.Remember]; !kept {
			r.Remembered[step.Remember] = res.Remember
		}
		return nil
	}, nil)
}

// invoke calls the action, retrying errors marked Retryable with backoff.
func (e *Engine) invoke(ctx context.Context, run *Run, rb *Runbook, st *StepState, step Step, log *zap.Logger) (Result, error) {
	action, ok := e.opts.Actions[step.Action]
	if step.Action == ManualKind {
		action, ok = manual{}, true
	}
	if !ok {
		return Result{}, fmt.Errorf("no adapter is configured for %s", step.Action)
	}
	fresh, err := e.opts.Store.Run(ctx, run.ID)
	if err != nil {
		return Result{}, fmt.Errorf("reload run: %w", err)
	}
	steps, err := e.opts.Store.Steps(ctx, run.ID)
	if err != nil {
		return Result{}, fmt.Errorf("reload steps: %w", err)
	}
	params, err := e.render(fresh, step, steps)
	if err != nil {
		return Result{}, fmt.Errorf("render parameters: %w", err)
	}
	simulated := isSimulated(action)
	req := Request{
		RunID: run.ID, StepID: step.ID, Attempt: st.Attempt, Actor: st.Actor, Params: params,
		Checkpoint: maps.Clone(st.Checkpoint),
		Save: func(ctx context.Context, cp map[string]string) error {
			st.Checkpoint = maps.Clone(cp)
			st.Version++
			if err := e.opts.Store.SwapStep(ctx, *st, nil); err != nil {
				return fmt.Errorf("save checkpoint: %w", err)
			}
			return nil
		},
		Progress: func(ctx context.Context, text string, links ...Link) {
			if simulated {
				text = "SIMULATED: " + text
			}
			st.Progress = text
			st.Links = mergeLinks(st.Links, links)
			st.Version++
			ev := &Event{RunID: run.ID, StepID: step.ID, Kind: EventStepProgress, Actor: "drbot", At: e.opts.Clock.Now(), Text: text, Links: links}
			if err := e.swap(ctx, run, *st, ev); err != nil {
				log.Warn("record progress", zap.Error(err))
			}
		},
	}
	backoff := e.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		res, err := action.Run(ctx, req)
		if simulated {
			res.Summary = "SIMULATED: " + res.Summary
		}
		if err == nil || !IsRetryable(err) || attempt >= e.opts.MaxAttempts {
			return res, err
		}
		log.Info("retryable error", zap.Error(err), zap.Duration("backoff", backoff))
		req.Progress(ctx, fmt.Sprintf("transient error, trying again in %s: %v", backoff, err))
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff *= 2
		req.Checkpoint = maps.Clone(st.Checkpoint)
	}
}

// ManualKind is the action kind of a checklist item a person marks done.
const ManualKind = "manual"

// manual is the built-in action of manual steps: approving one means a
// person did it, so there is nothing left to run.
type manual struct{}

func (manual) Run(_ context.Context, req Request) (Result, error) {
	return Result{Summary: "marked done by " + req.Actor}, nil
}

func isSimulated(a Action) bool {
	s, ok := a.(Simulator)
	return ok && s.Simulated()
}

func mergeLinks(have, add []Link) []Link {
	for _, l := range add {
		if !slices.Contains(have, l) {
			have = append(have, l)
		}
	}
	return have
}

// finish records a step's end state.
func (e *Engine) finish(ctx context.Context, run *Run, st StepState, to State, actor, text string, res *Result) error {
	now := e.opts.Clock.Now()
	kind := map[State]EventKind{Done: EventStepDone, Failed: EventStepFailed, Skipped: EventStepSkipped}[to]
	st.State, st.Actor, st.EndedAt = to, actor, now
	st.Version++
	var links []Link
	if res != nil {
		st.Summary = res.Summary
		st.Links = mergeLinks(st.Links, res.Links)
		links = st.Links
	}
	if to == Failed {
		st.Error = text
	}
	if to == Skipped && st.StartedAt.IsZero() {
		st.StartedAt = now
	}
	if d := st.Duration(); d > 0 && to != Skipped {
		text += " (" + HumanDuration(d) + ")"
	}
	return e.swap(ctx, run, st, &Event{RunID: run.ID, StepID: st.StepID, Kind: kind, Actor: actor, At: now, Text: text, Links: links})
}

// advance moves the run forward: steps whose `when` is false are skipped,
// automatic steps run, and the next step waits for approval. When every step
// is done or skipped the run is done.
func (e *Engine) advance(ctx context.Context, runID string) error {
	for {
		run, rb, err := e.load(ctx, runID)
		if err != nil {
			return err
		}
		if run.State != RunActive {
			return nil
		}
		steps, err := e.opts.Store.Steps(ctx, runID)
		if err != nil {
			return fmt.Errorf("steps of %s: %w", runID, err)
		}
		next := -1
		for i, st := range steps {
			if !st.State.Terminal() {
				next = i
				break
			}
		}
		if next < 0 {
			return e.complete(ctx, run, rb, steps)
		}
		st := steps[next]
		if st.State != Pending {
			return nil // awaiting a person, running, or failed
		}
		step, _ := rb.Step(st.StepID)
		if step.When != "" {
			ok, err := e.when(run, step, steps)
			if err != nil {
				return e.finish(ctx, run, st, Failed, "drbot", fmt.Sprintf("%q: condition: %v", step.Title, err), nil)
			}
			if !ok {
				if err := e.finish(ctx, run, st, Skipped, "drbot", fmt.Sprintf("skipped %q: its condition does not hold (%s)", step.Title, step.When), nil); err != nil {
					return err
				}
				continue
			}
		}
		if step.Auto {
			st.Version++
			if err := e.claim(ctx, run, &st, step, "drbot"); err != nil {
				if _, refused := IsRefusal(err); refused {
					return nil // another process took it
				}
				return err
			}
			e.execute(ctx, run, rb, st, step)
			continue
		}
		st.State = AwaitingApproval
		st.Version++
		who := "an approver"
		if step.Approvals > 1 {
			who = fmt.Sprintf("%d different approvers", step.Approvals)
		}
		ev := &Event{RunID: runID, StepID: st.StepID, Kind: EventStepWaiting, Actor: "drbot", At: e.opts.Clock.Now(),
			Text: fmt.Sprintf("step %d/%d %q is waiting for %s", next+1, len(steps), step.Title, who)}
		if err := e.swap(ctx, run, st, ev); err != nil {
			if _, refused := IsRefusal(err); refused {
				return nil
			}
			return err
		}
		return nil
	}
}

// complete closes a run whose steps are all done or skipped.
func (e *Engine) complete(ctx context.Context, run *Run, rb *Runbook, steps []StepState) error {
	now := e.opts.Clock.Now()
	sum := Summarize(run, rb, steps, now)
	err := e.updateRun(ctx, run.ID, func(r *Run) error {
		if r.State != RunActive {
			return Refusef("run %s is already %s", r.ID, r.State)
		}
		r.State, r.EndedAt = RunDone, now
		return nil
	}, &Event{RunID: run.ID, Kind: EventRunDone, Actor: "drbot", At: now, Text: sum.Line()})
	if _, refused := IsRefusal(err); refused {
		return nil
	}
	return err
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

// pinned parses the runbook a run started with (cached by content).
func (e *Engine) pinned(run *Run) (*Runbook, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := string(run.Runbook)
	if rb, ok := e.parsed[key]; ok {
		return rb, nil
	}
	rb, err := Load(run.RunbookID+" (pinned by run "+run.ID+")", run.Runbook)
	if err != nil {
		return nil, fmt.Errorf("pinned runbook of %s: %w", run.ID, err)
	}
	e.parsed[key] = rb
	return rb, nil
}
