package runbook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Resume picks up every active run after a restart: running steps are
// re-attached (the action gets its checkpoint and finds what it started
// instead of acting again) on the executor, others are advanced. With
// SyncExecutor it returns when the steps it re-attached have finished; with
// the default one as soon as they are handed over (Engine.Wait waits).
func (e *Engine) Resume(ctx context.Context) error {
	runs, err := e.opts.Store.Runs(ctx, true, 0)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	// Each run goes on by itself: one run's long step must not hold up another.
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Go(func() {
			if err := e.ResumeRun(ctx, run.ID); err != nil {
				errs[i] = fmt.Errorf("resume %s: %w", run.ID, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ResumeRun resumes one run (see Resume).
func (e *Engine) ResumeRun(ctx context.Context, runID string) error {
	return e.resumeRun(ctx, runID, true)
}

// resumeRun re-attaches a run's running steps that no process runs (with
// leases: whose lease this engine could take) and, if there were none and
// advanceIdle is set, advances the run.
func (e *Engine) resumeRun(ctx context.Context, runID string, advanceIdle bool) error {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return err
	}
	if run.State != RunActive {
		return Refusef("run %s is %s", runID, run.State)
	}
	if err := e.sameSetup(run); err != nil {
		return err
	}
	steps, err := e.opts.Store.Steps(ctx, runID)
	if err != nil {
		return fmt.Errorf("steps of %s: %w", runID, err)
	}
	var reattach []StepState
	var keys []string // held (queued) by this call until its task ends
	release := func() {
		for _, k := range keys {
			e.unqueue(k)
		}
	}
	for _, st := range steps {
		key := runID + "/" + st.StepID
		if st.State != Running || !e.holdIfIdle(key) {
			continue
		}
		// Another live replica may run it: only the lease's taker re-attaches.
		took, err := e.leases.take(ctx, runID, st.StepID, e.opts.Clock.Now())
		if err != nil || !took {
			e.unqueue(key)
			if err != nil {
				release()
				return fmt.Errorf("resume %s: %w", runID, err)
			}
			continue
		}
		keys = append(keys, key)
		step, _ := rb.Step(st.StepID)
		why := "after a restart"
		if e.leases != nil {
			why = "after a restart or the loss of the replica that ran it"
		}
		ev := Event{RunID: runID, StepID: st.StepID, Kind: EventNote, Actor: "drbot", At: e.opts.Clock.Now(),
			Text: fmt.Sprintf("re-attaching to %q %s (attempt %d)", step.Title, why, st.Attempt)}
		if err := e.opts.Store.AppendEvent(ctx, &ev); err != nil {
			release()
			return fmt.Errorf("resume %s: %w", runID, err)
		}
		e.notify(ctx, run, ev)
		reattach = append(reattach, st)
	}
	if len(reattach) == 0 {
		if !advanceIdle {
			return nil
		}
		return e.advance(ctx, runID)
	}
	// The re-attached steps and the advance after them run as one task, in
	// order, as a run's steps always do.
	e.spawn(ctx, runID, func(ctx context.Context) {
		defer release()
		for _, st := range reattach {
			step, _ := rb.Step(st.StepID)
			e.execute(ctx, run, st, step)
		}
		e.advanceLogged(ctx, runID)
	})
	return nil
}

// holdIfIdle holds the step for this process (as claim does) unless it
// runs it or has handed it to its executor already; the caller unqueues
// it. Check and hold are one step, so that two resumes in one process
// (the start's and KeepLeases') never both re-attach it.
func (e *Engine) holdIfIdle(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, running := e.cancels[key]; running || e.queued[key] > 0 {
		return false
	}
	e.queued[key]++
	return true
}

// claim moves a step to running in one check-and-set, held by this process
// until the caller unqueues it (runClaimed does).
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
	// The step is this process's before the store says Running: Resume,
	// reading Running a moment later, must not take it for a step an
	// earlier process left and run it a second time. The claimer releases
	// it (unqueue) when it is done with the step.
	key := run.ID + "/" + st.StepID
	e.mu.Lock()
	e.queued[key]++
	e.mu.Unlock()
	// With replicas, the step's lease is this one's before the store says
	// Running, or another replica would take a Running step without a
	// lease for one whose replica died, and re-attach it.
	took, err := e.leases.take(ctx, run.ID, st.StepID, now)
	if err != nil || !took {
		e.unqueue(key)
		if err != nil {
			return fmt.Errorf("lease step %s/%s: %w", run.ID, st.StepID, err)
		}
		return &Refusal{Text: fmt.Sprintf("%q is being started by another drbot replica; its message shows who in a moment", step.Title), Err: ErrConflict}
	}
	if err := e.swap(ctx, run, *st, ev); err != nil {
		e.unqueue(key)
		return err
	}
	return nil
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

// recordTimeout bounds recording an outcome after the step's context has
// ended: the store's writer is shared, so this is a few commits' wait.
const recordTimeout = 10 * time.Second

// execute runs a claimed step's action to its end and records the outcome.
// Failures are recorded on the step, not returned: a person decides (Retry/Skip).
func (e *Engine) execute(ctx context.Context, run *Run, st StepState, step Step) {
	log := e.log.With(zap.String("run_id", run.ID), zap.String("step_id", step.ID), zap.Int("attempt", st.Attempt))
	timeout := step.Timeout
	if timeout == 0 {
		timeout = e.opts.StepTimeout
	}
	// A lost lease (another replica took the step over) ends the step here
	// as a shutdown does: it stays Running, for its new holder.
	ctx, unguard := e.leases.guard(ctx, run.ID, step.ID)
	defer unguard()
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

	res, err := e.invoke(sctx, run, &st, step, log)
	if ctx.Err() != nil {
		// Shutting down: leave the step running; Resume re-attaches.
		log.Info("step left running for resume", zap.Error(ctx.Err()))
		return
	}
	// The action has returned: its outcome is recorded even if shutdown
	// begins now (Engine.Wait holds the store open for it), so a step that
	// finished is not re-attached and run again by the next process.
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer stop()
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
		} else if errors.Is(sctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s (the step's timeout; Retry to try again): %w", HumanDuration(timeout), err)
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
func (e *Engine) invoke(ctx context.Context, run *Run, st *StepState, step Step, log *zap.Logger) (Result, error) {
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
	if fresh.State != RunActive {
		// Aborted while the step waited for an executor slot: Abort could
		// not cancel what had not started, so nothing is called.
		return Result{}, fmt.Errorf("the run is %s", fresh.State)
	}
	steps, err := e.opts.Store.Steps(ctx, run.ID)
	if err != nil {
		return Result{}, fmt.Errorf("reload steps: %w", err)
	}
	params, err := e.render(fresh, step, steps)
	if err != nil {
		return Result{}, fmt.Errorf("render parameters: %w", err)
	}
	// The same contract and guard as at the start, now with the values
	// earlier steps remembered: nothing is called with a bad or live target.
	if err := e.checkStep(step, params); err != nil {
		return Result{}, err
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
		Claim: func(ctx context.Context, resource string) error {
			return e.opts.Store.Claim(ctx, Claim{Resource: resource, RunID: run.ID, StepID: step.ID, At: e.opts.Clock.Now()})
		},
		ClaimOf: e.opts.Store.ClaimOf,
	}
	backoff := e.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		began := time.Now()
		res, err := action.Run(ctx, req)
		e.opts.Observer.ActionCalled(step.Action, time.Since(began), err)
		if simulated {
			res.Summary = "SIMULATED: " + res.Summary
		}
		if err == nil || !IsRetryable(err) || attempt >= e.opts.MaxAttempts {
			return res, err
		}
		// Jitter in [backoff/2, backoff): replicas or runs that failed together
		// do not come back together.
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Info("retryable error", zap.Error(err), zap.Duration("backoff", wait))
		req.Progress(ctx, fmt.Sprintf("transient error, trying again in %s: %v", wait.Round(time.Millisecond), err))
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		backoff *= 2
		req.Checkpoint = maps.Clone(st.Checkpoint)
	}
}

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
	if err := e.swap(ctx, run, st, &Event{RunID: run.ID, StepID: st.StepID, Kind: kind, Actor: actor, At: now, Text: text, Links: links}); err != nil {
		return err
	}
	e.observeEnd(run, st)
	return nil
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
			// The executor runs it and advances the run after it.
			e.runClaimed(ctx, run, st, step)
			return nil
		}
		st.State = AwaitingApproval
		st.Version++
		who := "an approver"
		if need, err := e.approvals(ctx, run, step); err == nil && need > 1 {
			who = fmt.Sprintf("%d different approvers", need)
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
		r.Incident.resolve(now, "drbot")
		return nil
	}, &Event{RunID: run.ID, Kind: EventRunDone, Actor: "drbot", At: now, Text: sum.Line()})
	if _, refused := IsRefusal(err); refused {
		return nil
	}
	return err
}
