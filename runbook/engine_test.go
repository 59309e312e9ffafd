package runbook_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// fixedClock is a clock tests move by hand.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second) // every reading is a second later: durations are visible
	return c.now
}

// recorder is a Notifier that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []runbook.Event
}

func (r *recorder) Notify(_ context.Context, _ *runbook.Run, ev runbook.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) kinds(stepID string) []runbook.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runbook.EventKind
	for _, ev := range r.events {
		if ev.StepID == stepID {
			out = append(out, ev.Kind)
		}
	}
	return out
}

type fixture struct {
	eng   *runbook.Engine
	store *store.Store
	sim   *sim.Sim
	rec   *recorder
	cfg   *config.Config
	cat   runbook.Catalog
	opts  runbook.Options
}

func newFixture(t *testing.T, mutate ...func(*runbook.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	// The engine and the simulated world share one time, so restore
	// windows hold whatever day the tests run.
	clock := &fixedClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	f := &fixture{store: st, sim: sim.New(sim.Options{Clock: clock}), rec: &recorder{}, cfg: cfg, cat: cat}
	f.opts = runbook.Options{
		Store: st, Actions: f.sim.Actions(), Notifier: f.rec, Logger: zaptest.NewLogger(t),
		Clock: clock, RetryBackoff: time.Millisecond,
		Executor: runbook.SyncExecutor{},
	}
	for _, m := range mutate {
		m(&f.opts)
	}
	f.eng = runbook.New(f.opts)
	return f
}

func (f *fixture) request(t *testing.T, scenario string, inputs map[string]string) runbook.StartRequest {
	t.Helper()
	scope, err := f.cfg.Scope("itt-mentor-services", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if inputs == nil {
		inputs = map[string]string{}
	}
	return runbook.StartRequest{Runbook: f.cat[scenario], Service: "itt-mentor-services", Env: "staging", Config: scope, Inputs: inputs, Actor: "U0LEAD"}
}

func (f *fixture) start(t *testing.T) *runbook.Run {
	t.Helper()
	run, err := f.eng.Start(context.Background(), f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London", "dr_test": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func (f *fixture) step(t *testing.T, runID, stepID string) runbook.StepState {
	t.Helper()
	steps, err := f.store.Steps(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.StepID == stepID {
			return s
		}
	}
	t.Fatalf("no step %s", stepID)
	return runbook.StepState{}
}

// approveUntil approves every step before stepID, as U1.
func (f *fixture) approveUntil(t *testing.T, runID, stepID string) {
	t.Helper()
	ctx := context.Background()
	for {
		v, err := f.eng.View(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := v.Current()
		if !ok || cur.Step.ID == stepID {
			return
		}
		if err := f.eng.Approve(ctx, runID, cur.Step.ID, cur.State.Version, "U1"); err != nil {
			t.Fatal(err)
		}
	}
}

// driveAll approves every step (two approvers where needed) to the end.
func (f *fixture) driveAll(t *testing.T, runID string) *runbook.RunView {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		v, err := f.eng.View(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := v.Current()
		if !ok || v.Run.State != runbook.RunActive {
			return v
		}
		actor := "U0APPROVER1"
		if len(cur.State.Approvers) > 0 {
			actor = "U0APPROVER2"
		}
		if cur.State.State != runbook.AwaitingApproval {
			t.Fatalf("step %s is %s: %s", cur.Step.ID, cur.State.State, cur.State.Error)
		}
		if err := f.eng.Approve(ctx, runID, cur.Step.ID, cur.State.Version, actor); err != nil {
			t.Fatalf("approve %s: %v", cur.Step.ID, err)
		}
	}
	t.Fatal("run did not finish in 100 clicks")
	return nil
}

func TestScenario2EndToEndOnSimulatedAdapters(t *testing.T) {
	f := newFixture(t)
	run := f.start(t)
	v := f.driveAll(t, run.ID)
	if v.Run.State != runbook.RunDone {
		t.Fatalf("run ended %s", v.Run.State)
	}
	for _, s := range v.Steps {
		if s.State.State != runbook.Done {
			t.Errorf("step %s ended %s", s.Step.ID, s.State.State)
		}
	}
	if got := f.sim.Replicas("bat-staging", "itt-mentor-services-staging"); got != 2 {
		t.Errorf("web replicas after the run = %d, want the remembered 2", got)
	}
	if got := f.sim.Replicas("bat-staging", "itt-mentor-services-staging-worker"); got != 1 {
		t.Errorf("worker replicas after the run = %d, want the remembered 1", got)
	}
	if got := f.sim.Approvals("DFE-Digital/itt-mentor-services", "main"); got != 1 {
		t.Errorf("required approvals after the run = %d, want the remembered 1", got)
	}
	var dispatched []string
	for _, c := range f.sim.Calls() {
		if c.Kind == "github.workflow" && c.What == "dispatch" {
			in, _ := c.Params.StringMap("inputs")
			dispatched = append(dispatched, fmt.Sprintf("%s %v", c.Params["workflow"], in))
		}
	}
	want := []string{
		"maintenance.yml map[environment:staging mode:enable]",
		"database-backup.yml map[backup-file:ittms_stg_dr_flawed_20261126T1000 db-server:s189t01-ittms-stg-pg environment:staging]",
		"postgres-ptr.yml map[confirm-production:false environment:staging new-db-server:s189t01-ittms-stg-pg-ptr restore-time:2026-11-26T09:00:00]",
		"database-backup.yml map[backup-file:ittms_stg_dr_ptr_20261126T1000 db-server:s189t01-ittms-stg-pg-ptr environment:staging]",
		"postgres-restore.yml map[backup-file:ittms_stg_dr_ptr_20261126T1000.sql.gz confirm-production:false environment:staging]",
		"maintenance.yml map[environment:staging mode:disable]",
	}
	if strings.Join(dispatched, "\n") != strings.Join(want, "\n") {
		t.Errorf("dispatches:\n%s\nwant:\n%s", strings.Join(dispatched, "\n"), strings.Join(want, "\n"))
	}
	events, err := f.store.Events(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	allDone := fmt.Sprintf("%d done, 0 skipped, 0 failed", len(f.cat["scenario-2"].Steps))
	if last := events[len(events)-1]; last.Kind != runbook.EventRunDone || !strings.Contains(last.Text, allDone) {
		t.Errorf("last event = %s %q", last.Kind, last.Text)
	}
}

func TestStateMachine(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// act does something to a run whose first step (scale-down) awaits approval.
		act       func(f *fixture, runID string, v int) error
		refusal   string // a refusal containing this; empty means success
		wantState runbook.State
	}{
		{name: "approve runs the step", wantState: runbook.Done,
			act: func(f *fixture, id string, v int) error { return f.eng.Approve(ctx, id, "scale-down", v, "U1") }},
		{name: "stale skip is refused", refusal: "changed since this message", wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error { return f.eng.Skip(ctx, id, "scale-down", v-1, "U1", "") }},
		{name: "an approval from an older message of a waiting step counts", wantState: runbook.Done,
			act: func(f *fixture, id string, v int) error { return f.eng.Approve(ctx, id, "scale-down", v-1, "U1") }},
		{name: "a later step is not ready", refusal: "not ready yet", wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error { return f.eng.Approve(ctx, id, "freeze-merges", 1, "U1") }},
		{name: "skip without the value a later step needs", wantState: runbook.AwaitingApproval,
			refusal: `leaves previous_replicas unknown, and "Start the web app and workers again" needs it`,
			act: func(f *fixture, id string, v int) error {
				return f.eng.Skip(ctx, id, "scale-down", v, "U1", "already down")
			}},
		{name: "skip with a bad value", wantState: runbook.AwaitingApproval,
			refusal: `"web" is not deployment=count`,
			act: func(f *fixture, id string, v int) error {
				return f.eng.SkipWithValue(ctx, id, "scale-down", v, "U1", "already down", "web")
			}},
		{name: "skip with the value", wantState: runbook.Skipped,
			act: func(f *fixture, id string, v int) error {
				return f.eng.SkipWithValue(ctx, id, "scale-down", v, "U1", "already down", "itt-mentor-services-staging=2 itt-mentor-services-staging-worker=1")
			}},
		{name: "retry needs a failure", refusal: "changed since this message", wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error { return f.eng.Retry(ctx, id, "scale-down", v, "U1") }},
		{name: "second click after approval", refusal: "already done (approved by U1", wantState: runbook.Done,
			act: func(f *fixture, id string, v int) error {
				if err := f.eng.Approve(ctx, id, "scale-down", v, "U1"); err != nil {
					return err
				}
				return f.eng.Approve(ctx, id, "scale-down", v, "U2")
			}},
		{name: "abort stops the run", refusal: "is aborted", wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error {
				if err := f.eng.Abort(ctx, id, "U1", "wrong scenario"); err != nil {
					return err
				}
				return f.eng.Approve(ctx, id, "scale-down", v, "U1")
			}},
		{name: "unknown step", refusal: `has no step "nope"`, wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error { return f.eng.Approve(ctx, id, "nope", v, "U1") }},
		{name: "unknown run", refusal: "there is no run", wantState: runbook.AwaitingApproval,
			act: func(f *fixture, id string, v int) error {
				return f.eng.Approve(ctx, "dr-missing", "scale-down", v, "U1")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			run := f.start(t)
			st := f.step(t, run.ID, "scale-down")
			if st.State != runbook.AwaitingApproval {
				t.Fatalf("first step is %s", st.State)
			}
			err := tt.act(f, run.ID, st.Version)
			text, refused := runbook.IsRefusal(err)
			switch {
			case tt.refusal == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.refusal != "" && (!refused || !strings.Contains(text, tt.refusal)):
				t.Fatalf("got %v, want a refusal containing %q", err, tt.refusal)
			}
			if got := f.step(t, run.ID, "scale-down").State; got != tt.wantState {
				t.Errorf("scale-down is %s, want %s", got, tt.wantState)
			}
		})
	}
}

func TestDoubleClickRunsOnce(t *testing.T) {
	f := newFixture(t)
	run := f.start(t)
	st := f.step(t, run.ID, "scale-down")
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.eng.Approve(context.Background(), run.ID, "scale-down", st.Version, fmt.Sprintf("U%d", i))
			if _, r := runbook.IsRefusal(err); r {
				refused.Add(1)
			} else if err == nil {
				ok.Add(1)
			} else {
				t.Errorf("approve: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 7 {
		t.Errorf("%d approvals ran, %d refused; want 1 and 7", ok.Load(), refused.Load())
	}
	if scales := f.sim.Count(sim.Call{Kind: "kubernetes.scale"}); scales != 1 {
		t.Errorf("scale ran %d times", scales)
	}
}

func TestTwoApproversForDestructiveSteps(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	run := f.start(t)
	f.approveUntil(t, run.ID, "restore-live")
	st := f.step(t, run.ID, "restore-live")
	if err := f.eng.Approve(ctx, run.ID, "restore-live", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	st = f.step(t, run.ID, "restore-live")
	if st.State != runbook.AwaitingApproval || len(st.Approvers) != 1 {
		t.Fatalf("after one approval: %s with %v", st.State, st.Approvers)
	}
	err := f.eng.Approve(ctx, run.ID, "restore-live", st.Version, "U1")
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, "second person") {
		t.Fatalf("same approver twice: %v", err)
	}
	if err := f.eng.Approve(ctx, run.ID, "restore-live", st.Version, "U2"); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "restore-live"); st.State != runbook.Done {
		t.Fatalf("after two approvals: %s", st.State)
	}
}

type onlyApprovers map[string]bool

func (o onlyApprovers) MayAct(_ context.Context, actor string) (bool, error) { return o[actor], nil }

func TestRefusalIsAudited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	f := newFixture(t, func(o *runbook.Options) {
		o.Authorizer = onlyApprovers{"U0BOSS": true}
		o.Logger = zap.New(core)
	})
	run := f.start(t)
	st := f.step(t, run.ID, "scale-down")
	err := f.eng.Approve(context.Background(), run.ID, "scale-down", st.Version, "U0INTERN")
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, "not a configured approver") {
		t.Fatalf("got %v", err)
	}
	events, _ := f.store.Events(context.Background(), run.ID)
	last := events[len(events)-1]
	if last.Kind != runbook.EventRefused || last.Actor != "U0INTERN" {
		t.Errorf("last event %s by %s, want a refusal by U0INTERN", last.Kind, last.Actor)
	}
	if f.step(t, run.ID, "scale-down").State != runbook.AwaitingApproval {
		t.Error("a refused click changed the step")
	}
	audit := logs.FilterMessage("refused").FilterField(zap.String("user_id", "U0INTERN")).FilterField(zap.String("step_id", "scale-down")).FilterField(zap.String("run_id", run.ID))
	if audit.Len() != 1 || audit.All()[0].LoggerName != "engine" {
		t.Errorf("audit log lines: %+v", logs.All())
	}
}

func TestOneActiveRunPerServiceEnv(t *testing.T) {
	f := newFixture(t)
	first := f.start(t)
	req := f.request(t, "scenario-1", nil)
	if err := f.eng.Check(context.Background(), req); err == nil || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("Check = %v, want a refusal naming %s", err, first.ID)
	}
	_, err := f.eng.Start(context.Background(), req)
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, first.ID) {
		t.Fatalf("second start = %v, want a refusal naming %s", err, first.ID)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	f := newFixture(t)
	_, err := f.eng.Start(context.Background(), f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:30"}))
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, "no time zone") {
		t.Fatalf("got %v", err)
	}
	runs, _ := f.store.Runs(context.Background(), false, 0)
	if len(runs) != 0 {
		t.Errorf("%d runs stored after bad input", len(runs))
	}
}

// flaky fails with a retryable error n times, then succeeds.
type flaky struct {
	n     atomic.Int32
	calls atomic.Int32
}

func (a *flaky) Run(context.Context, runbook.Request) (runbook.Result, error) {
	a.calls.Add(1)
	if a.n.Add(-1) >= 0 {
		return runbook.Result{}, runbook.Retryable(errors.New("HTTP 503"))
	}
	return runbook.Result{Summary: "ok", Remember: map[string]int{"itt-mentor-services-staging": 2}}, nil
}

func TestRetryableErrorsAreRetried(t *testing.T) {
	act := &flaky{}
	act.n.Store(2)
	f := newFixture(t, func(o *runbook.Options) { o.Actions["kubernetes.scale"] = act })
	run := f.start(t)
	st := f.step(t, run.ID, "scale-down")
	if err := f.eng.Approve(context.Background(), run.ID, "scale-down", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	if got := f.step(t, run.ID, "scale-down"); got.State != runbook.Done || act.calls.Load() != 3 {
		t.Fatalf("step %s after %d calls", got.State, act.calls.Load())
	}
}

func TestFailedStepRetriedByAPerson(t *testing.T) {
	f := newFixture(t)
	failing := &flaky{}
	failing.n.Store(100)
	f.opts.MaxAttempts = 2
	f.opts.Actions["kubernetes.scale"] = failing
	f.eng = runbook.New(f.opts)
	run := f.start(t)
	st := f.step(t, run.ID, "scale-down")
	if err := f.eng.Approve(context.Background(), run.ID, "scale-down", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	st = f.step(t, run.ID, "scale-down")
	if st.State != runbook.Failed || !strings.Contains(st.Error, "HTTP 503") {
		t.Fatalf("step %s, error %q", st.State, st.Error)
	}
	failing.n.Store(0)
	if err := f.eng.Retry(context.Background(), run.ID, "scale-down", st.Version, "U2"); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "scale-down"); st.State != runbook.Done || st.Attempt != 2 {
		t.Fatalf("after retry: %s attempt %d", st.State, st.Attempt)
	}
}

func TestWhenSkipsPostScenarioSteps(t *testing.T) {
	f := newFixture(t)
	run, err := f.eng.Start(context.Background(), f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 UTC"}))
	if err != nil {
		t.Fatal(err)
	}
	v := f.driveAll(t, run.ID)
	for _, s := range v.Steps {
		want := runbook.Done
		if s.Step.ID == "retro" || s.Step.ID == "incident-report" || s.Step.ID == "follow-up-cards" {
			want = runbook.Skipped // dr_test is false
		}
		if s.State.State != want {
			t.Errorf("%s is %s, want %s", s.Step.ID, s.State.State, want)
		}
	}
}

// blocking dispatches once, saves its checkpoint, then blocks until its
// context ends, like a workflow run the process was following when it died.
type blocking struct {
	mu         sync.Mutex
	dispatches int
	reattached []map[string]string
	started    chan struct{}
}

func (b *blocking) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	b.mu.Lock()
	if len(req.Checkpoint) > 0 {
		b.reattached = append(b.reattached, req.Checkpoint)
		b.mu.Unlock()
		return runbook.Result{Summary: "followed run " + req.Checkpoint["run_id"]}, nil
	}
	b.dispatches++
	b.mu.Unlock()
	if err := req.Save(ctx, map[string]string{"run_id": "77"}); err != nil {
		return runbook.Result{}, err
	}
	close(b.started)
	<-ctx.Done()
	return runbook.Result{}, ctx.Err()
}

func TestResumeReattachesInsteadOfRunningTwice(t *testing.T) {
	act := &blocking{started: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) { o.Actions["github.workflow"] = act })
	run := f.start(t)
	ctx := context.Background()
	for _, id := range []string{"scale-down", "freeze-merges"} {
		if err := f.eng.Approve(ctx, run.ID, id, f.step(t, run.ID, id).Version, "U1"); err != nil {
			t.Fatal(err)
		}
	}
	// The process "dies" while following the maintenance workflow.
	dying, die := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- f.eng.Approve(dying, run.ID, "enable-maintenance", f.step(t, run.ID, "enable-maintenance").Version, "U1")
	}()
	<-act.started
	die()
	<-done
	if st := f.step(t, run.ID, "enable-maintenance"); st.State != runbook.Running || st.Checkpoint["run_id"] != "77" {
		t.Fatalf("after the crash the step is %s with checkpoint %v", st.State, st.Checkpoint)
	}
	// A new process on the same store.
	again := runbook.New(f.opts)
	if err := again.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.step(t, run.ID, "enable-maintenance")
	if st.State != runbook.Done || act.dispatches != 1 || len(act.reattached) != 1 {
		t.Fatalf("after resume: %s, %d dispatches, %d re-attaches", st.State, act.dispatches, len(act.reattached))
	}
	if next := f.step(t, run.ID, "maintenance-message"); next.State != runbook.AwaitingApproval {
		t.Errorf("the run did not go on: next step is %s", next.State)
	}
}

func TestRunPinsItsRunbook(t *testing.T) {
	f := newFixture(t)
	run := f.start(t)
	// The catalog changes after the run started: the run keeps its version.
	edited := *f.cat["scenario-2"]
	pinned := len(edited.Steps)
	edited.Steps = edited.Steps[:1]
	f.cat["scenario-2"] = &edited
	v, err := f.eng.View(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Steps) != pinned {
		t.Errorf("the run sees %d steps, want its pinned %d", len(v.Steps), pinned)
	}
}

func TestEveryTransitionIsOnTheTimeline(t *testing.T) {
	f := newFixture(t)
	run := f.start(t)
	f.driveAll(t, run.ID)
	got := f.rec.kinds("scale-down")
	want := []runbook.EventKind{runbook.EventStepWaiting, runbook.EventStepRunning, runbook.EventStepProgress, runbook.EventStepDone}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scale-down events %v, want %v", got, want)
	}
	stored, _ := f.store.Events(context.Background(), run.ID)
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if len(stored) != len(f.rec.events) {
		t.Errorf("%d events stored, %d announced", len(stored), len(f.rec.events))
	}
}

// partial scales to 0 and then fails (the rollout timed out) on its first
// attempt; a retry sees the zeroed counts.
type partial struct{ calls atomic.Int32 }

func (a *partial) Run(context.Context, runbook.Request) (runbook.Result, error) {
	if a.calls.Add(1) == 1 {
		return runbook.Result{Remember: map[string]int{"itt-mentor-services-staging": 2}}, errors.New("rollout timed out")
	}
	return runbook.Result{Summary: "scaled", Remember: map[string]int{"itt-mentor-services-staging": 0}}, nil
}

func TestRetryKeepsWhatTheFirstAttemptRemembered(t *testing.T) {
	act := &partial{}
	f := newFixture(t, func(o *runbook.Options) { o.Actions["kubernetes.scale"] = act })
	run := f.start(t)
	ctx := context.Background()
	if err := f.eng.Approve(ctx, run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1"); err != nil {
		t.Fatal(err)
	}
	st := f.step(t, run.ID, "scale-down")
	if st.State != runbook.Failed {
		t.Fatalf("first attempt: %s", st.State)
	}
	if err := f.eng.Retry(ctx, run.ID, "scale-down", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Run(ctx, run.ID)
	if n := fmt.Sprint(got.Remembered["previous_replicas"]); n != "map[itt-mentor-services-staging:2]" {
		t.Errorf("remembered %s, want the counts from before the first attempt", n)
	}
}

func TestTwoApproversClickingTogether(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	run := f.start(t)
	f.approveUntil(t, run.ID, "restore-live")
	// Both saw the same message (same version) and click at once.
	shown := f.step(t, run.ID, "restore-live").Version
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, who := range []string{"U0ANA", "U0BEN"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.eng.Approve(ctx, run.ID, "restore-live", shown, who)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("approve: %v", err)
		}
	}
	if st := f.step(t, run.ID, "restore-live"); st.State != runbook.Done || len(st.Approvers) != 2 {
		t.Fatalf("restore-live is %s with approvers %v", st.State, st.Approvers)
	}
	if restores := f.sim.Count(sim.Call{StepID: "restore-live", What: "dispatch"}); restores != 1 {
		t.Errorf("restore dispatched %d times", restores)
	}
}

// barrier re-attaches only when both runs are re-attaching at once.
type barrier struct {
	arrived chan struct{}
	release chan struct{}
}

func (b *barrier) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	if len(req.Checkpoint) == 0 {
		if err := req.Save(ctx, map[string]string{"run_id": "1"}); err != nil {
			return runbook.Result{}, err
		}
		<-ctx.Done() // the process dies while following
		return runbook.Result{}, ctx.Err()
	}
	b.arrived <- struct{}{}
	select {
	case <-b.release:
		return runbook.Result{Summary: "followed"}, nil
	case <-time.After(5 * time.Second):
		return runbook.Result{}, errors.New("the other run was never re-attached: runs resume one after another")
	}
}

func TestResumeRunsIndependently(t *testing.T) {
	act := &barrier{arrived: make(chan struct{}, 2), release: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) { o.Actions["kubernetes.scale"] = act })
	ctx := context.Background()
	var runs []string
	for _, env := range []string{"staging", "production"} {
		req := f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 UTC"})
		req.Env = env
		req.Config, _ = f.cfg.Scope("itt-mentor-services", env)
		run, err := f.eng.Start(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run.ID)
		dying, die := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = f.eng.Approve(dying, run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1")
		}()
		for f.step(t, run.ID, "scale-down").Checkpoint["run_id"] == "" {
			time.Sleep(time.Millisecond)
		}
		die()
		<-done
	}
	go func() {
		<-act.arrived
		<-act.arrived
		close(act.release)
	}()
	if err := runbook.New(f.opts).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range runs {
		if st := f.step(t, id, "scale-down"); st.State != runbook.Done {
			t.Errorf("run %s: scale-down is %s (%s)", id, st.State, st.Error)
		}
	}
}

// hang runs until its context ends.
type hang struct{ started chan struct{} }

func (h hang) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	close(h.started)
	<-ctx.Done()
	return runbook.Result{}, ctx.Err()
}

func TestAbortCancelsTheRunningStep(t *testing.T) {
	act := hang{started: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) { o.Actions["kubernetes.scale"] = act })
	run := f.start(t)
	ctx := context.Background()
	done := make(chan error)
	go func() {
		done <- f.eng.Approve(ctx, run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1")
	}()
	<-act.started
	if err := f.eng.Abort(ctx, run.ID, "U1", "wrong service"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := f.step(t, run.ID, "scale-down")
	if st.State != runbook.Failed || !strings.Contains(st.Error, "the run was aborted") {
		t.Errorf("step %s: %q", st.State, st.Error)
	}
	if r, _ := f.store.Run(ctx, run.ID); r.State != runbook.RunAborted {
		t.Errorf("run is %s", r.State)
	}
}

func TestStepTimeoutSaysSo(t *testing.T) {
	act := hang{started: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) {
		o.Actions["kubernetes.scale"] = act
		o.StepTimeout = 20 * time.Millisecond
	})
	run := f.start(t)
	if err := f.eng.Approve(context.Background(), run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1"); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "scale-down"); st.State != runbook.Failed || !strings.Contains(st.Error, "timed out after 20ms") {
		t.Errorf("step %s: %q", st.State, st.Error)
	}
}

// A run's view is built once per change: asked again with nothing written
// in between, View returns the same view; after a step or the run's meta
// changes, a new one that shows it.
func TestViewIsRebuiltOnlyWhenTheRunChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	run := f.start(t)
	first, err := f.eng.View(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := f.eng.View(ctx, run.ID)
	if again != first {
		t.Error("View rebuilt a view with nothing changed")
	}
	cur, ok := first.Current()
	if !ok {
		t.Fatal("no current step")
	}
	f.approveUntil(t, run.ID, cur.Step.ID)
	if err := f.eng.Approve(ctx, run.ID, cur.Step.ID, 0, "U0LEAD"); err != nil {
		t.Fatal(err)
	}
	after, _ := f.eng.View(ctx, run.ID)
	if after == first || after.Steps[0].State.State == first.Steps[0].State.State {
		t.Errorf("after an approval: step 1 %s, the view before showed %s", after.Steps[0].State.State, first.Steps[0].State.State)
	}
	if err := f.eng.SetMeta(ctx, run.ID, map[string]string{"channel": "C0TEST"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.eng.View(ctx, run.ID); v.Run.Meta["channel"] != "C0TEST" {
		t.Errorf("after SetMeta: meta %v", v.Run.Meta)
	}
}
