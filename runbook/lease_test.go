package runbook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// TestStepLeaseKeepsAStepWithItsReplica is failover at engine level: two
// replicas on one store. While replica A follows a workflow and holds the
// step's lease, B's Resume leaves the step alone; once A's lease has ended
// (A is dead to the world, its clock far behind), B re-attaches it (no
// second dispatch) and finishes it, and A, when it finally returns, does
// not record an outcome over B's.
func TestStepLeaseKeepsAStepWithItsReplica(t *testing.T) {
	act := &blocking{started: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) {
		o.Actions["github.workflow"] = act
		o.Owner, o.Lease = "replica-a", time.Hour
	})
	run := f.start(t)
	ctx := context.Background()
	f.approveUntil(t, run.ID, "enable-maintenance")
	aCtx, stopA := context.WithCancel(ctx)
	aDone := make(chan error)
	go func() {
		aDone <- f.eng.Approve(aCtx, run.ID, "enable-maintenance", f.step(t, run.ID, "enable-maintenance").Version, "U1")
	}()
	<-act.started

	optsB := f.opts
	optsB.Owner = "replica-b"
	clockB := &fixedClock{now: time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)}
	optsB.Clock = clockB
	b := runbook.New(optsB)
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.step(t, run.ID, "enable-maintenance"); st.State != runbook.Running || len(act.reattached) != 0 {
		t.Fatalf("B took a step A holds: %s, %d re-attaches", st.State, len(act.reattached))
	}

	// Two hours later by B's clock, A has not renewed: its lease ended.
	clockB.mu.Lock()
	clockB.now = clockB.now.Add(2 * time.Hour)
	clockB.mu.Unlock()
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.step(t, run.ID, "enable-maintenance")
	if st.State != runbook.Done || act.dispatches != 1 || len(act.reattached) != 1 {
		t.Fatalf("after B's take-over: %s, %d dispatches, %d re-attaches", st.State, act.dispatches, len(act.reattached))
	}
	events, err := f.store.Events(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range events {
		found = found || (ev.StepID == "enable-maintenance" && strings.Contains(ev.Text, "loss of the replica that ran it"))
	}
	if !found {
		t.Error("no timeline note of the re-attach")
	}

	// A's action returns at last (its process is shutting down): the step
	// stays as B recorded it.
	stopA()
	<-aDone
	if after := f.step(t, run.ID, "enable-maintenance"); after.State != runbook.Done || after.Version != st.Version {
		t.Errorf("A changed the step after B finished it: %s v%d, was v%d", after.State, after.Version, st.Version)
	}
}

// TestStepLeaseRefusesAClaimAnotherReplicaStarts: a step whose lease
// another replica holds (it is claiming it right now) is refused, not
// claimed a second time.
func TestStepLeaseRefusesAClaimAnotherReplicaStarts(t *testing.T) {
	f := newFixture(t, func(o *runbook.Options) { o.Owner, o.Lease = "replica-a", time.Hour })
	run := f.start(t)
	ctx := context.Background()
	st := f.step(t, run.ID, "scale-down")
	if ok, err := f.store.LeaseStep(ctx, run.ID, "scale-down", "replica-b", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)); err != nil || !ok {
		t.Fatalf("lease for B: %v %v", ok, err)
	}
	err := f.eng.Approve(ctx, run.ID, "scale-down", st.Version, "U1")
	if text, refused := runbook.IsRefusal(err); !refused || !strings.Contains(text, "another drbot replica") {
		t.Fatalf("approve while B holds the lease: %v", err)
	}
	if got := f.step(t, run.ID, "scale-down"); got.State != runbook.AwaitingApproval || got.Version != st.Version {
		t.Errorf("refused claim changed the step: %s v%d", got.State, got.Version)
	}
}

// TestAbortOnAnotherReplicaStopsTheStep: Abort cancels only its own
// process's steps; the replica that runs the step sees the abort while it
// keeps its leases, and stops the step.
func TestAbortOnAnotherReplicaStopsTheStep(t *testing.T) {
	act := hang{started: make(chan struct{})}
	f := newFixture(t, func(o *runbook.Options) {
		o.Actions["kubernetes.scale"] = act
		o.Owner, o.Lease, o.Clock = "replica-a", 300*time.Millisecond, runbook.SystemClock{}
	})
	run := f.start(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go f.eng.KeepLeases(ctx)
	done := make(chan error)
	go func() {
		done <- f.eng.Approve(ctx, run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1")
	}()
	<-act.started
	optsB := f.opts
	optsB.Owner = "replica-b"
	if err := runbook.New(optsB).Abort(ctx, run.ID, "U1", "wrong service"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the step still runs on replica A 5 s after B aborted its run")
	}
	if st := f.step(t, run.ID, "scale-down"); st.State != runbook.Failed || !strings.Contains(st.Error, "the run was aborted") {
		t.Errorf("step %s: %q", st.State, st.Error)
	}
}
