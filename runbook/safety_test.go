package runbook_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/runbook"
)

// guarded gives the fixture the example config's live servers.
func guarded(f *fixture) func(*runbook.Options) {
	return func(o *runbook.Options) { o.Guard = f.cfg.Guard() }
}

func TestStartRefusesUnsafeTargets(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]string
		want   string
	}{
		{name: "PTR copy named as the live server", inputs: map[string]string{"ptr_server": "s189t01-ittms-stg-pg"},
			want: `input ptr_server: "s189t01-ittms-stg-pg" is the live server of itt-mentor-services/staging`},
		{name: "PTR copy named as another environment's live server", inputs: map[string]string{"ptr_server": "S189P01-ITTMS-PD-PG"},
			want: `is not a flexible server name`},
		{name: "PTR copy named as another live server in lowercase", inputs: map[string]string{"ptr_server": "s189p01-ittms-pd-pg"},
			want: `the live server of itt-mentor-services/production`},
		{name: "shell in a server name", inputs: map[string]string{"ptr_server": "bad name; rm -rf"},
			want: `input ptr_server: "bad name; rm -rf" is not a flexible server name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.eng = runbook.New(withOpts(f.opts, guarded(f)))
			in := map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"}
			for k, v := range tt.inputs {
				in[k] = v
			}
			_, err := f.eng.Start(context.Background(), f.request(t, "scenario-2", in))
			if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, tt.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, tt.want)
			}
			if runs, _ := f.store.Runs(context.Background(), false, 0); len(runs) != 0 {
				t.Errorf("%d runs stored after a refused start", len(runs))
			}
			if n := len(f.sim.Calls()); n != 0 {
				t.Errorf("%d adapter calls after a refused start", n)
			}
		})
	}
}

func withOpts(o runbook.Options, mutate ...func(*runbook.Options)) runbook.Options {
	for _, m := range mutate {
		m(&o)
	}
	return o
}

// A custom runbook that deletes a live server is refused at the start, and a
// delete whose target only becomes known later (a remembered value) is
// refused by the engine when it runs: the adapter is never called.
func TestGuardRefusesDeletingALiveServerFromACustomRunbook(t *testing.T) {
	const direct = `id: wipe
title: Wipe
steps:
  - id: delete
    title: Delete the server
    action: azure.postgres.delete
    destructive: true
    with: {resource_group: '{{ .env.postgres.resource_group }}', server: '{{ .env.postgres.server }}'}
`
	const remembered = `id: wipe-later
title: Wipe later
steps:
  - id: pick
    title: Pick the newest backup
    action: azure.backups.list
    auto: true
    with: {account: '{{ .env.backup.account }}', container: '{{ .env.backup.container }}'}
    remember: target
  - id: delete
    title: Delete the server
    action: azure.postgres.delete
    destructive: true
    with: {resource_group: '{{ .env.postgres.resource_group }}', server: '{{ .remember.target }}'}
`
	f := newFixture(t)
	f.eng = runbook.New(withOpts(f.opts, guarded(f)))
	ctx := context.Background()

	rb, err := runbook.Load("wipe.yaml", []byte(direct))
	if err != nil {
		t.Fatal(err)
	}
	req := f.request(t, "scenario-2", nil)
	req.Runbook = rb
	_, err = f.eng.Start(ctx, req)
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, "would delete Postgres server s189t01-ittms-stg-pg, the live postgres server of itt-mentor-services/staging") {
		t.Fatalf("direct delete: got %v", err)
	}

	// The backups list "remembers" the live server's name: only the engine
	// can see the target, when the step runs.
	rb, err = runbook.Load("wipe-later.yaml", []byte(remembered))
	if err != nil {
		t.Fatal(err)
	}
	f.opts.Actions[runbook.KindBackupsList] = rememberAction("s189t01-ittms-stg-pg")
	f.eng = runbook.New(withOpts(f.opts, guarded(f)))
	req.Runbook = rb
	run, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	st := f.step(t, run.ID, "delete")
	if err := f.eng.Approve(ctx, run.ID, "delete", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	st = f.step(t, run.ID, "delete")
	if st.State != runbook.Failed || !strings.Contains(st.Error, "the live postgres server of itt-mentor-services/staging") {
		t.Errorf("delete is %s (%s), want failed by the guard", st.State, st.Error)
	}
	if n := f.sim.Count(sim.Call{Kind: runbook.KindPostgresDelete}); n != 0 {
		t.Errorf("the delete adapter was called %d times", n)
	}
}

type rememberAction string

func (r rememberAction) Run(context.Context, runbook.Request) (runbook.Result, error) {
	return runbook.Result{Summary: "picked", Remember: string(r)}, nil
}

func TestSkippedScaleDownAsksForCountsAndScaleUpUsesThem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	run := f.start(t)
	st := f.step(t, run.ID, "scale-down")

	need, err := f.eng.SkipNeeds(ctx, run.ID, "scale-down")
	if err != nil {
		t.Fatal(err)
	}
	// The simulated cluster holds web 2, worker 1: that is what is offered.
	if need == nil || need.Current != "itt-mentor-services-staging=2 itt-mentor-services-staging-worker=1" {
		t.Fatalf("need = %+v, want the current counts offered", need)
	}
	if err := f.eng.SkipWithValue(ctx, run.ID, "scale-down", st.Version, "U1", "already down",
		"itt-mentor-services-staging=3, itt-mentor-services-staging-worker=2"); err != nil {
		t.Fatal(err)
	}
	f.driveAll(t, run.ID)
	if got := f.sim.Replicas("bat-staging", "itt-mentor-services-staging"); got != 3 {
		t.Errorf("web scaled back to %d, want the 3 given at the skip", got)
	}
	if got := f.sim.Replicas("bat-staging", "itt-mentor-services-staging-worker"); got != 2 {
		t.Errorf("worker scaled back to %d, want the 2 given at the skip", got)
	}
	if f.step(t, run.ID, "scale-up").State != runbook.Done {
		t.Error("scale-up did not finish")
	}
}

func TestSkippedFreezeNeedsTheCountToRestore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	run := f.start(t)
	f.approveUntil(t, run.ID, "freeze-merges")
	st := f.step(t, run.ID, "freeze-merges")
	err := f.eng.Skip(ctx, run.ID, "freeze-merges", st.Version, "U1", "")
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, `"Set required PR approvers back" needs it`) || !strings.Contains(text, "previous_approvals=1 now") {
		t.Fatalf("got %v", err)
	}
	if err := f.eng.SkipWithValue(ctx, run.ID, "freeze-merges", st.Version, "U1", "", "2"); err != nil {
		t.Fatal(err)
	}
	f.driveAll(t, run.ID)
	if got := f.sim.Approvals("DFE-Digital/itt-mentor-services", "main"); got != 2 {
		t.Errorf("approvals restored to %d, want the 2 given at the skip", got)
	}
}

// A production workflow that passes confirm-production: true needs a second
// person even when the runbook asks for one approval.
func TestProductionConfirmationNeedsTwoPeople(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	scope, err := f.cfg.Scope("itt-mentor-services", "production")
	if err != nil {
		t.Fatal(err)
	}
	req := f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"})
	req.Env, req.Config = "production", scope
	run, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f.approveUntil(t, run.ID, "ptr")
	st := f.step(t, run.ID, "ptr")
	if err := f.eng.Approve(ctx, run.ID, "ptr", st.Version, "U1"); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "ptr"); st.State != runbook.AwaitingApproval || len(st.Approvers) != 1 {
		t.Fatalf("ptr is %s with %v after one approval, want a second person", st.State, st.Approvers)
	}
	if err := f.eng.Approve(ctx, run.ID, "ptr", 0, "U1"); err == nil {
		t.Fatal("the same person approved twice")
	}
	if err := f.eng.Approve(ctx, run.ID, "ptr", 0, "U2"); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "ptr"); st.State != runbook.Done {
		t.Errorf("ptr is %s after two approvals", st.State)
	}
}

// A run started on real adapters is not taken over by an engine with
// simulated ones (and the other way round).
func TestRunKeepsItsSetup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	live := f.opts
	live.Actions = runbook.Registry{}
	for kind, act := range f.sim.Actions() {
		live.Actions[kind] = act
	}
	live.Actions[runbook.KindScale] = rememberAction("real") // stand for the real kube adapter
	live.Actions[runbook.KindImage] = rememberAction("real")
	eng := runbook.New(live)
	run, err := eng.Start(ctx, f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Setup.Simulated; strings.Join(got, ",") != "azure,github,http,slack" {
		t.Errorf("setup simulated = %v", got)
	}
	// f.eng simulates kubernetes too.
	err = f.eng.ResumeRun(ctx, run.ID)
	var se *runbook.SetupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "report a recovery that never happened") {
		t.Fatalf("resume on simulated adapters: %v", err)
	}
	st := f.step(t, run.ID, "scale-down")
	if err := f.eng.Approve(ctx, run.ID, "scale-down", st.Version, "U1"); !errors.As(err, &se) {
		t.Fatalf("approve on simulated adapters: %v", err)
	}
	if n := len(f.sim.Calls()); n != 0 {
		t.Errorf("%d simulated calls for a live run", n)
	}
}

func TestChooseTakesOnlyWhatIsOffered(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	run, err := f.eng.Start(ctx, f.request(t, "scenario-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	f.approveUntil(t, run.ID, "find-backup")
	v, err := f.eng.View(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := v.Current()
	if cur.Step.ID != "find-backup" || !slices.Contains(cur.Controls, runbook.ControlChoose) {
		t.Fatalf("current %s offers %v, want find-backup with choose", cur.Step.ID, cur.Controls)
	}
	list, err := f.eng.Choices(ctx, run.ID, "find-backup")
	if err != nil || len(list) < 2 {
		t.Fatalf("choices %v, %v", list, err)
	}
	err = f.eng.Choose(ctx, run.ID, "find-backup", cur.State.Version, "U1", "made-up.sql.gz")
	if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, "is not one of the choices") {
		t.Fatalf("made-up choice: %v", err)
	}
	if err := f.eng.Choose(ctx, run.ID, "find-backup", cur.State.Version, "U1", list[1].Value); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.store.Run(ctx, run.ID)
	if got := stored.Remembered["latest_backup"]; got != list[1].Value {
		t.Errorf("remembered %v, want %s", got, list[1].Value)
	}
	if n := f.sim.Count(sim.Call{StepID: "find-backup"}); n != 0 {
		t.Errorf("the list step ran %d times; choosing must not run it", n)
	}
}
