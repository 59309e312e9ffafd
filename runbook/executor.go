package runbook

import (
	"context"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Executor runs a claimed step (and the run's advance after it) away from
// the caller: a click's worker returns as soon as the step is claimed in the
// store, so a two-hour workflow holds no Slack worker. Go must not block the
// caller for long; it may queue task, since a claimed step is durable (it
// is Running in the store, and Resume re-attaches it after a restart).
type Executor interface {
	Go(runID string, task func())
}

// SyncExecutor runs each task on the caller's goroutine: Approve, Retry and
// ResumeRun return when the step has finished, as tests and the terminal
// driver expect.
type SyncExecutor struct{}

// Go runs task now.
func (SyncExecutor) Go(_ string, task func()) { task() }

// Default executor bounds (Options.MaxSteps, Options.MaxStepsPerRun). A run
// has one step open at a time, plus a re-attach after a restart; 256 steps
// at once is far above the runs one team has open in an incident.
const (
	defaultMaxSteps       = 256
	defaultMaxStepsPerRun = 2
)

// poolExecutor runs each task on its own goroutine, at most max at once in
// all and perRun at once per run; a task over a bound waits on its
// goroutine (never in the caller) for a slot.
type poolExecutor struct {
	all    chan struct{}
	perRun int

	mu   sync.Mutex
	runs map[string]*runSlots
}

type runSlots struct {
	slots chan struct{}
	users int
}

// NewPoolExecutor returns the default Executor: a goroutine per task,
// bounded overall and per run.
func NewPoolExecutor(max, perRun int) Executor {
	if max <= 0 {
		max = defaultMaxSteps
	}
	if perRun <= 0 {
		perRun = defaultMaxStepsPerRun
	}
	return &poolExecutor{all: make(chan struct{}, max), perRun: perRun, runs: map[string]*runSlots{}}
}

// Go starts task once a slot of its run and an overall slot are free.
func (x *poolExecutor) Go(runID string, task func()) {
	rs := x.join(runID)
	go func() {
		defer x.leave(runID, rs)
		rs.slots <- struct{}{}
		defer func() { <-rs.slots }()
		x.all <- struct{}{}
		defer func() { <-x.all }()
		task()
	}()
}

func (x *poolExecutor) join(runID string) *runSlots {
	x.mu.Lock()
	defer x.mu.Unlock()
	rs, ok := x.runs[runID]
	if !ok {
		rs = &runSlots{slots: make(chan struct{}, x.perRun)}
		x.runs[runID] = rs
	}
	rs.users++
	return rs
}

func (x *poolExecutor) leave(runID string, rs *runSlots) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if rs.users--; rs.users == 0 {
		delete(x.runs, runID)
	}
}

// spawn hands task to the executor, counted for Wait. A task whose context
// has ended before it starts does nothing: its step stays Running in the
// store for Resume, exactly like a step cut short by shutdown.
func (e *Engine) spawn(ctx context.Context, runID string, task func(ctx context.Context)) {
	e.tasks.Add(1)
	e.opts.Executor.Go(runID, func() {
		defer e.tasks.Done()
		if ctx.Err() != nil {
			e.log.Info("step left for resume", zap.String("run_id", runID), zap.Error(ctx.Err()))
			return
		}
		task(ctx)
	})
}

// runClaimed runs a step this process has just claimed, then advances its
// run, on the executor. Errors are logged here: the click that claimed the
// step has been answered already, and a failed step is recorded on the step.
func (e *Engine) runClaimed(ctx context.Context, run *Run, st StepState, step Step) {
	key := run.ID + "/" + step.ID // held since the claim
	e.spawn(ctx, run.ID, func(ctx context.Context) {
		defer e.unqueue(key)
		e.execute(ctx, run, st, step)
		e.advanceLogged(ctx, run.ID)
	})
}

func (e *Engine) unqueue(key string) {
	e.mu.Lock()
	e.queued[key]--
	last := e.queued[key] <= 0
	if last {
		delete(e.queued, key)
	}
	e.mu.Unlock()
	if last {
		// This process is done with the step: its lease, if any, ends now
		// (a step left Running by a shutdown is re-attached by another
		// replica at once, not after the lease).
		runID, stepID, _ := strings.Cut(key, "/")
		e.leases.release(context.Background(), runID, stepID, e.log)
	}
}

// advanceLogged advances a run from an executor task, where nobody waits
// for the error.
func (e *Engine) advanceLogged(ctx context.Context, runID string) {
	if err := e.advance(ctx, runID); err != nil && ctx.Err() == nil {
		if _, refused := IsRefusal(err); !refused {
			e.log.Error("advance run", zap.String("run_id", runID), zap.Error(err))
		}
	}
}

// Wait returns when every step handed to the executor has returned. After
// the context those steps were started with ends (shutdown), they return
// promptly and leave themselves Running for Resume; callers close the store
// only after Wait, so nothing they still write is lost.
func (e *Engine) Wait() { e.tasks.Wait() }
