package runbook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// StepLeaser is implemented by a store that replicas share (PostgreSQL):
// a running step is followed by the replica that holds its lease, which
// renews it while it works; when a replica dies its leases end, and another
// replica re-attaches the step (as Resume does after a restart) instead of
// running it again. Leases are outside the step's check-and-set: renewing
// one does not change the step's version.
type StepLeaser interface {
	// LeaseStep gives owner the step's lease until until if it is free
	// (never taken, released, or ended by now) or owner's already, and
	// reports whether owner holds it.
	LeaseStep(ctx context.Context, runID, stepID, owner string, now, until time.Time) (bool, error)
	// ReleaseStep ends owner's lease of the step at once.
	ReleaseStep(ctx context.Context, runID, stepID, owner string) error
}

// leases are the step leases this engine holds (Options.Owner), renewed by
// KeepLeases. A lease that could not be renewed is lost: the step's
// context is cancelled, and the step is left Running for the replica that
// took it over.
type leases struct {
	store StepLeaser
	owner string
	ttl   time.Duration

	mu   sync.Mutex
	held map[string]*heldLease // by run/step
}

type heldLease struct {
	runID, stepID string
	lost          chan struct{} // closed when the lease is lost
}

// leasing returns the engine's leases, or nil when it holds none: no
// Owner, or a store without leases (SQLite, one replica).
func newLeases(opts Options) *leases {
	sl, ok := opts.Store.(StepLeaser)
	if !ok || opts.Owner == "" {
		return nil
	}
	ttl := opts.Lease
	if ttl <= 0 {
		ttl = DefaultLease
	}
	return &leases{store: sl, owner: opts.Owner, ttl: ttl, held: map[string]*heldLease{}}
}

// DefaultLease is how long a step's lease lasts without renewal: the time
// another replica waits before it re-attaches a step whose replica died.
// KeepLeases renews every third of it.
const DefaultLease = 15 * time.Second

// take leases a step to this engine; false means another replica holds it.
func (l *leases) take(ctx context.Context, runID, stepID string, now time.Time) (bool, error) {
	if l == nil {
		return true, nil
	}
	ok, err := l.store.LeaseStep(ctx, runID, stepID, l.owner, now, now.Add(l.ttl))
	if err != nil || !ok {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := runID + "/" + stepID
	if _, have := l.held[key]; !have {
		l.held[key] = &heldLease{runID: runID, stepID: stepID, lost: make(chan struct{})}
	}
	return true, nil
}

// release ends a lease this engine holds, if it still does.
func (l *leases) release(ctx context.Context, runID, stepID string, log *zap.Logger) {
	if l == nil {
		return
	}
	key := runID + "/" + stepID
	l.mu.Lock()
	h, ok := l.held[key]
	delete(l.held, key)
	l.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-h.lost:
		return // another replica's now
	default:
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := l.store.ReleaseStep(ctx, runID, stepID, l.owner); err != nil {
		log.Warn("release step lease", zap.String("run_id", runID), zap.String("step_id", stepID), zap.Error(err))
	}
}

// guard returns ctx, cancelled too when the step's lease is lost.
func (l *leases) guard(ctx context.Context, runID, stepID string) (context.Context, context.CancelFunc) {
	if l == nil {
		return ctx, func() {}
	}
	l.mu.Lock()
	h, ok := l.held[runID+"/"+stepID]
	l.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	if !ok {
		cancel() // not ours (lost before it started): leave it to its holder
		return ctx, cancel
	}
	go func() {
		select {
		case <-h.lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// renew renews every lease held; one that cannot be renewed is lost.
func (l *leases) renew(ctx context.Context, now time.Time, log *zap.Logger) {
	l.mu.Lock()
	all := make([]*heldLease, 0, len(l.held))
	for _, h := range l.held {
		all = append(all, h)
	}
	l.mu.Unlock()
	for _, h := range all {
		ok, err := l.store.LeaseStep(ctx, h.runID, h.stepID, l.owner, now, now.Add(l.ttl))
		if err != nil {
			// The store is unreachable: keep trying until the lease ends;
			// past that another replica may have it, so stop the step.
			log.Warn("renew step lease", zap.String("run_id", h.runID), zap.String("step_id", h.stepID), zap.Error(err))
			continue
		}
		if !ok {
			log.Warn("step lease lost to another replica; leaving the step to it", zap.String("run_id", h.runID), zap.String("step_id", h.stepID))
			l.mu.Lock()
			delete(l.held, h.runID+"/"+h.stepID)
			l.mu.Unlock()
			close(h.lost)
		}
	}
}

// KeepLeases, for an engine with an Owner on a store with leases, renews
// the leases of the steps this replica runs and re-attaches, every third
// of the lease, the running steps of other replicas whose leases ended.
// It returns when ctx ends. Without leases it returns at once.
func (e *Engine) KeepLeases(ctx context.Context) {
	if e.leases == nil {
		return
	}
	t := time.NewTicker(e.leases.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.leases.renew(ctx, e.opts.Clock.Now(), e.log)
		e.cancelAborted(ctx)
		if err := e.takeOver(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("take over steps", zap.Error(err))
		}
	}
}

// cancelAborted stops the steps this replica runs whose run another
// replica aborted: Abort cancels only the steps of its own process.
func (e *Engine) cancelAborted(ctx context.Context) {
	e.mu.Lock()
	runs := map[string]bool{}
	for key := range e.cancels {
		runID, _, _ := strings.Cut(key, "/")
		runs[runID] = true
	}
	e.mu.Unlock()
	for runID := range runs {
		run, err := e.opts.Store.Run(ctx, runID)
		if err != nil || run.State != RunAborted {
			continue
		}
		e.mu.Lock()
		for key, cancel := range e.cancels {
			if strings.HasPrefix(key, runID+"/") {
				cancel()
			}
		}
		e.mu.Unlock()
		e.log.Info("run aborted on another replica; its steps here are stopped", zap.String("run_id", runID))
	}
}

// ReleaseLeases ends every lease this engine holds, so that another
// replica re-attaches the steps a shutdown left Running at once instead of
// after the lease. Call it after Wait.
func (e *Engine) ReleaseLeases(ctx context.Context) {
	if e.leases == nil {
		return
	}
	e.leases.mu.Lock()
	var all []*heldLease
	for _, h := range e.leases.held {
		all = append(all, h)
	}
	e.leases.mu.Unlock()
	for _, h := range all {
		e.leases.release(ctx, h.runID, h.stepID, e.log)
	}
}

// takeOver re-attaches the running steps of active runs that no live
// replica holds, through the path Resume takes after a restart.
func (e *Engine) takeOver(ctx context.Context) error {
	runs, err := e.opts.Store.Runs(ctx, true, 0)
	if err != nil {
		return fmt.Errorf("take over: %w", err)
	}
	for _, run := range runs {
		if err := e.resumeRun(ctx, run.ID, false); err != nil && ctx.Err() == nil {
			if _, refused := IsRefusal(err); !refused {
				e.log.Warn("take over run", zap.String("run_id", run.ID), zap.Error(err))
			}
		}
	}
	return nil
}
