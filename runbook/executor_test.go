package runbook_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
)

func TestPoolExecutorBounds(t *testing.T) {
	tests := []struct {
		name          string
		max, perRun   int
		runs, perEach int
		wantMax       int64 // most tasks at once overall
		wantMaxPerRun int64
	}{
		{name: "per run bound", max: 100, perRun: 1, runs: 3, perEach: 5, wantMax: 3, wantMaxPerRun: 1},
		{name: "overall bound", max: 2, perRun: 2, runs: 4, perEach: 3, wantMax: 2, wantMaxPerRun: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := runbook.NewPoolExecutor(tt.max, tt.perRun)
			var all, most atomic.Int64
			per := make([]atomic.Int64, tt.runs)
			mostPer := make([]atomic.Int64, tt.runs)
			release := make(chan struct{})
			var wg sync.WaitGroup
			for r := range tt.runs {
				for range tt.perEach {
					wg.Add(1)
					x.Go(fmt.Sprintf("run-%d", r), func() {
						defer wg.Done()
						raise(&most, all.Add(1))
						raise(&mostPer[r], per[r].Add(1))
						<-release
						per[r].Add(-1)
						all.Add(-1)
					})
				}
			}
			close(release) // Go returned for every task: none ran on the caller
			wg.Wait()
			if most.Load() > tt.wantMax {
				t.Errorf("%d tasks at once, bound %d", most.Load(), tt.wantMax)
			}
			for r := range mostPer {
				if got := mostPer[r].Load(); got > tt.wantMaxPerRun {
					t.Errorf("run %d: %d tasks at once, bound %d", r, got, tt.wantMaxPerRun)
				}
			}
		})
	}
}

func raise(most *atomic.Int64, v int64) {
	for {
		cur := most.Load()
		if v <= cur || most.CompareAndSwap(cur, v) {
			return
		}
	}
}

// With the default executor a click returns once the step is claimed; the
// step runs on its own, and what ends it decides what is recorded.
func TestApproveReturnsBeforeTheStepEnds(t *testing.T) {
	tests := []struct {
		name      string
		end       func(t *testing.T, f *fixture, runID string, shutdown context.CancelFunc)
		wantState runbook.State
		wantError string
	}{
		{name: "shutdown leaves it for resume", end: func(_ *testing.T, _ *fixture, _ string, shutdown context.CancelFunc) { shutdown() },
			wantState: runbook.Running},
		{name: "abort cancels it", end: func(t *testing.T, f *fixture, runID string, _ context.CancelFunc) {
			if err := f.eng.Abort(context.Background(), runID, "U1", "wrong service"); err != nil {
				t.Fatal(err)
			}
		}, wantState: runbook.Failed, wantError: "the run was aborted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act := hang{started: make(chan struct{})}
			f := newFixture(t, func(o *runbook.Options) {
				o.Actions["kubernetes.scale"] = act
				o.Executor = nil // the default pool
			})
			run := f.start(t)
			ctx, shutdown := context.WithCancel(context.Background())
			defer shutdown()
			if err := f.eng.Approve(ctx, run.ID, "scale-down", f.step(t, run.ID, "scale-down").Version, "U1"); err != nil {
				t.Fatal(err)
			}
			<-act.started // Approve returned while the step runs
			if st := f.step(t, run.ID, "scale-down"); st.State != runbook.Running {
				t.Fatalf("while running: %s", st.State)
			}
			tt.end(t, f, run.ID, shutdown)
			f.eng.Wait()
			st := f.step(t, run.ID, "scale-down")
			if st.State != tt.wantState || !strings.Contains(st.Error, tt.wantError) {
				t.Errorf("step %s (%q), want %s (%q)", st.State, st.Error, tt.wantState, tt.wantError)
			}
		})
	}
}
