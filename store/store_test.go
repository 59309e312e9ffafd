package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/drbot-dev/drbot/runbook"
)

// t0 is in a non-UTC zone with nanoseconds, to check both survive storage.
var t0 = time.Date(2026, 11, 26, 9, 30, 0, 123456789, time.FixedZone("BST", 3600))

// openStore opens a store on path, closed when the test ends.
func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newRun returns an active run with n steps, the first awaiting approval,
// and its first event.
func newRun(id, service, env string, n int) (*runbook.Run, []runbook.StepState, *runbook.Event) {
	run := &runbook.Run{
		ID:        id,
		RunbookID: "scenario-2",
		Runbook:   []byte("id: scenario-2\nsteps: []\n"),
		Version:   1,
		Service:   service,
		Env:       env,
		State:     runbook.RunActive,
		StartedBy: "U_ANA",
		StartedAt: t0,
		Vars: map[string]any{
			"restore_time": "2026-11-26T08:30:00Z",
			"replicas":     float64(2),
			"env":          map[string]any{"namespace": "tra-staging", "deployments": []any{"web", "worker"}},
		},
		Remembered: map[string]any{},
		Meta:       map[string]string{"channel": "C123", "ts": "1764149400.000100"},
	}
	steps := make([]runbook.StepState, n)
	for i := range steps {
		steps[i] = runbook.StepState{
			RunID:     id,
			StepID:    fmt.Sprintf("step-%03d", i),
			Index:     i,
			State:     runbook.Pending,
			Version:   1,
			Approvers: []string{"U_ANA", "S_OPS"},
		}
	}
	if n > 0 {
		steps[0].State = runbook.AwaitingApproval
	}
	ev := &runbook.Event{Kind: runbook.EventRunStarted, Actor: "U_ANA", At: t0, Text: "started scenario-2"}
	return run, steps, ev
}

// create stores a new run with n steps and returns it.
func create(t testing.TB, s *Store, id, service, env string, n int) (*runbook.Run, []runbook.StepState) {
	t.Helper()
	run, steps, ev := newRun(id, service, env, n)
	if err := s.CreateRun(context.Background(), run, steps, ev); err != nil {
		t.Fatalf("create run %s: %v", id, err)
	}
	return run, steps
}

// claimed is st moved from awaiting_approval to running by actor.
func claimed(st runbook.StepState, actor string) (runbook.StepState, *runbook.Event) {
	st.State = runbook.Running
	st.Version++
	st.Actor = actor
	st.StartedAt = t0.Add(time.Minute)
	st.Checkpoint = map[string]string{"dispatched_at": "2026-11-26T09:31:00Z"}
	ev := &runbook.Event{RunID: st.RunID, StepID: st.StepID, Kind: runbook.EventStepRunning, Actor: actor, At: st.StartedAt}
	return st, ev
}

// utc is run as the store returns it: times in UTC.
func utc(run runbook.Run) *runbook.Run {
	run.StartedAt = run.StartedAt.UTC()
	run.EndedAt = run.EndedAt.UTC()
	return &run
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestDSN(t *testing.T) {
	tests := []struct {
		name, path, wantPath string
	}{
		{"relative", "drbot.db", "file:drbot.db?"},
		{"absolute", "/var/lib/drbot/drbot.db", "file:/var/lib/drbot/drbot.db?"},
		{"uri characters escaped", "/data/a?b#c%d.db", "file:/data/a%3fb%23c%25d.db?"},
		{"no authority", "//data/drbot.db", "file:/data/drbot.db?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := DSN(tt.path)
			if !strings.HasPrefix(dsn, tt.wantPath) {
				t.Errorf("DSN(%q) = %q, want prefix %q", tt.path, dsn, tt.wantPath)
			}
			for _, p := range []string{"_pragma=busy_timeout(5000)", "_pragma=journal_mode(WAL)", "_pragma=foreign_keys(1)", "_txlock=immediate"} {
				if !strings.Contains(dsn, p) {
					t.Errorf("DSN(%q) = %q lacks %s", tt.path, dsn, p)
				}
			}
		})
	}
}

// TestStoreConnectionSettings checks the settings on the store's own
// connections, not only in the DSN text.
func TestStoreConnectionSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "we?ird #name.db")
	s := openStore(t, path)
	if s.dsn != DSN(path) {
		t.Errorf("store dsn = %q, want DSN(path) %q", s.dsn, DSN(path))
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at its path: %v", err)
	}
	pragmas := []struct{ pragma, want string }{
		{"busy_timeout", "5000"},
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
	}
	for _, p := range pragmas {
		var got string
		if err := s.db.QueryRow("PRAGMA " + p.pragma).Scan(&got); err != nil {
			t.Fatalf("pragma %s: %v", p.pragma, err)
		}
		if got != p.want {
			t.Errorf("pragma %s = %s, want %s", p.pragma, got, p.want)
		}
	}

	// _txlock=immediate: a transaction the store begins holds the write
	// lock before it runs a statement, so another connection that will not
	// wait (busy_timeout 0) cannot write.
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", "file:"+uriEscaper.Replace(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.Exec(`INSERT INTO outbox (dedup_key, run_id, kind, attempts, last_error, result) VALUES ('k', '', '', 0, '', '')`)
	if !isBusy(err) {
		t.Errorf("write beside the store's open transaction: err = %v, want SQLITE_BUSY", err)
	}
}

func TestRunRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		run, steps, ev := newRun("r1", "itt-mentor-services", "staging", 3)
		steps[2].Links = []runbook.Link{{Label: "workflow", URL: "https://github.com/o/r/actions/runs/1"}}
		steps[2].EndedAt = t0.Add(time.Hour)
		if err := s.CreateRun(ctx, run, steps, ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != 1 || ev.RunID != "r1" {
			t.Errorf("first event: seq %d run %q, want 1 r1", ev.Seq, ev.RunID)
		}

		got, err := s.Run(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "run", got, utc(*run))
		if got.StartedAt.Location() != time.UTC || got.StartedAt.Nanosecond() != 123456789 {
			t.Errorf("started_at = %v, want UTC with nanoseconds", got.StartedAt)
		}
		if !got.EndedAt.IsZero() {
			t.Errorf("ended_at = %v, want zero", got.EndedAt)
		}

		gotSteps, err := s.Steps(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		wantSteps := append([]runbook.StepState(nil), steps...)
		wantSteps[2].EndedAt = wantSteps[2].EndedAt.UTC()
		equal(t, "steps", gotSteps, wantSteps)

		events, err := s.Events(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		want := *ev
		want.At = want.At.UTC()
		equal(t, "events", events, []runbook.Event{want})
	})
}

func TestNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		create(t, s, "r1", "svc", "staging", 1)
		missingStep, ev := claimed(runbook.StepState{RunID: "r1", StepID: "nope", Version: 1}, "U")
		tests := []struct {
			name string
			call func() error
		}{
			{"run", func() error { _, err := s.Run(ctx, "zz"); return err }},
			{"steps", func() error { _, err := s.Steps(ctx, "zz"); return err }},
			{"events", func() error { _, err := s.Events(ctx, "zz"); return err }},
			{"save run", func() error {
				run, _, _ := newRun("zz", "svc", "prod", 0)
				run.Version = 2
				return s.SaveRun(ctx, run, nil)
			}},
			{"swap step of unknown run", func() error {
				st := missingStep
				st.RunID = "zz"
				return s.SwapStep(ctx, st, nil)
			}},
			{"swap unknown step", func() error { return s.SwapStep(ctx, missingStep, ev) }},
			{"append event", func() error { return s.AppendEvent(ctx, &runbook.Event{RunID: "zz", Kind: runbook.EventNote}) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, runbook.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
		if events, _ := s.Events(ctx, "r1"); len(events) != 1 {
			t.Errorf("r1 has %d events after failed writes, want 1", len(events))
		}
	})
}

func TestSwapStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		_, steps := create(t, s, "r1", "svc", "staging", 2)

		step, ev := claimed(steps[0], "U_ANA")
		if err := s.SwapStep(ctx, step, ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != 2 {
			t.Errorf("claim event seq = %d, want 2", ev.Seq)
		}

		// A second click carries the version it saw before the claim.
		stale, staleEv := claimed(steps[0], "U_BOB")
		err := s.SwapStep(ctx, stale, staleEv)
		if !errors.Is(err, runbook.ErrConflict) {
			t.Fatalf("stale swap: err = %v, want ErrConflict", err)
		}
		if !strings.Contains(err.Error(), "swap step r1/step-000") {
			t.Errorf("stale swap error %q lacks context", err)
		}
		if staleEv.Seq != 0 {
			t.Errorf("stale swap set event seq %d", staleEv.Seq)
		}

		got, err := s.Steps(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		step.StartedAt = step.StartedAt.UTC()
		equal(t, "claimed step", got[0], step)
		if events, _ := s.Events(ctx, "r1"); len(events) != 2 {
			t.Errorf("events = %d, want 2 (stale swap appended nothing)", len(events))
		}
	})
}

func TestSwapStepRefusesEventOfAnotherRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.newStore(t)
		_, steps := create(t, s, "r1", "svc", "staging", 1)
		step, ev := claimed(steps[0], "U_ANA")
		ev.RunID = "r2"
		if err := s.SwapStep(context.Background(), step, ev); err == nil {
			t.Fatal("swap with an event of another run succeeded")
		}
		got, _ := s.Steps(context.Background(), "r1")
		if got[0].Version != 1 {
			t.Errorf("step version = %d after refused swap, want 1", got[0].Version)
		}
	})
}

func TestSaveRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		run, _ := create(t, s, "r1", "svc", "staging", 1)

		saved := *run
		saved.Version = 2
		saved.Remembered = map[string]any{"previous_replicas": map[string]any{"web": float64(2)}}
		saved.Meta = map[string]string{"channel": "C123", "panel_ts": "1.2"}
		ev := &runbook.Event{Kind: runbook.EventNote, Text: "remembered replicas"}
		if err := s.SaveRun(ctx, &saved, ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != 2 || ev.RunID != "r1" {
			t.Errorf("event seq %d run %q, want 2 r1", ev.Seq, ev.RunID)
		}
		got, err := s.Run(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "saved run", got, utc(saved))

		stale := *run
		stale.Version = 2
		stale.State = runbook.RunAborted
		if err := s.SaveRun(ctx, &stale, nil); !errors.Is(err, runbook.ErrConflict) {
			t.Errorf("stale save: err = %v, want ErrConflict", err)
		}
	})
}

// TestClaimRace is the exactly-once rule: claimants race to claim one step
// with the same expected version, as replicas with their own handles on the
// file, or as goroutines of one process sharing a handle.
func TestClaimRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const claimants, rounds = 8, 5
		tests := []struct {
			name    string
			handles int
		}{
			{"replicas", claimants},
			{"one process", 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				path := b.path(t)
				stores := make([]*Store, tt.handles)
				for i := range stores {
					stores[i] = openStore(t, path)
				}
				_, steps := create(t, stores[0], "r1", "svc", "staging", rounds)

				for round := range rounds {
					start := make(chan struct{})
					errs := make([]error, claimants)
					var wg sync.WaitGroup
					for i := range claimants {
						s := stores[i%len(stores)]
						step, ev := claimed(steps[round], fmt.Sprintf("U%d", i))
						wg.Go(func() {
							<-start
							errs[i] = s.SwapStep(ctx, step, ev)
						})
					}
					close(start)
					wg.Wait()

					winner := -1
					for i, err := range errs {
						switch {
						case err == nil && winner >= 0:
							t.Errorf("round %d: claimants %d and %d both claimed the step", round, winner, i)
						case err == nil:
							winner = i
						case isBusy(err):
							t.Errorf("round %d: claimant %d: SQLITE_BUSY leaked: %v", round, i, err)
						case !errors.Is(err, runbook.ErrConflict):
							t.Errorf("round %d: claimant %d: err = %v, want ErrConflict", round, i, err)
						}
					}
					if winner < 0 {
						t.Fatalf("round %d: nobody claimed the step: %v", round, errs)
					}
					got, err := stores[len(stores)-1].Steps(ctx, "r1")
					if err != nil {
						t.Fatal(err)
					}
					if got[round].Actor != fmt.Sprintf("U%d", winner) || got[round].Version != 2 {
						t.Errorf("round %d: stored step %+v, want claimed by U%d at version 2", round, got[round], winner)
					}
				}
				events, err := stores[0].Events(ctx, "r1")
				if err != nil {
					t.Fatal(err)
				}
				if len(events) != 1+rounds {
					t.Errorf("events = %d, want %d: one per claim", len(events), 1+rounds)
				}
			})
		}
	})
}

// TestConcurrentOpen starts replicas on a new file at once: each must see
// the migrations applied exactly once.
func TestConcurrentOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const replicas = 4
		path := b.path(t)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				s, err := Open(context.Background(), path)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		checkVersions(t, openStore(t, path), len(migrations))
	})
}

func TestActiveRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			name string
			end  runbook.RunState
		}{
			{"after done", runbook.RunDone},
			{"after aborted", runbook.RunAborted},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				s := b.newStore(t)
				first, _ := create(t, s, "r1", "svc", "staging", 1)
				create(t, s, "r-prod", "svc", "prod", 1)

				second, steps, ev := newRun("r2", "svc", "staging", 1)
				err := s.CreateRun(ctx, second, steps, ev)
				var active *runbook.ActiveRunError
				if !errors.As(err, &active) {
					t.Fatalf("second active run: err = %v, want ActiveRunError", err)
				}
				equal(t, "active run error", *active, runbook.ActiveRunError{RunID: "r1", Service: "svc", Env: "staging"})
				if _, err := s.Run(ctx, "r2"); !errors.Is(err, runbook.ErrNotFound) {
					t.Errorf("refused run was stored: %v", err)
				}

				ended := *first
				ended.Version++
				ended.State = tt.end
				ended.EndedAt = t0.Add(time.Hour)
				if err := s.SaveRun(ctx, &ended, nil); err != nil {
					t.Fatal(err)
				}
				if err := s.CreateRun(ctx, second, steps, ev); err != nil {
					t.Fatalf("new run once the first is %s: %v", tt.end, err)
				}

				// Reopening the ended run would make two active runs.
				reopened := ended
				reopened.Version++
				reopened.State = runbook.RunActive
				err = s.SaveRun(ctx, &reopened, nil)
				if !errors.As(err, &active) || active.RunID != "r2" {
					t.Errorf("reactivating r1: err = %v, want ActiveRunError for r2", err)
				}
			})
		}
	})
}

// TestActiveIndexBackstop checks that the unique index, were the check in
// CreateRun ever skipped, still refuses with an ActiveRunError.
func TestActiveIndexBackstop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		first, _, _ := newRun("r1", "svc", "staging", 0)
		second, _, _ := newRun("r2", "svc", "staging", 0)
		err := s.write(ctx, func(tx *sql.Tx) error {
			for _, run := range []*runbook.Run{first, second} {
				if err := s.insertRun(ctx, tx, run); err != nil {
					return err
				}
			}
			return nil
		})
		var active *runbook.ActiveRunError
		if !errors.As(err, &active) || active.RunID != "r1" {
			t.Errorf("err = %v, want ActiveRunError for r1", err)
		}
		// The primary key is not mistaken for it.
		err = s.write(ctx, func(tx *sql.Tx) error {
			done := *first
			done.State = runbook.RunDone
			for range 2 {
				if err := s.insertRun(ctx, tx, &done); err != nil {
					return err
				}
			}
			return nil
		})
		primaryKey := hasCode(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) || pgCode(err, "23505", "runs_pkey")
		if errors.As(err, &active) || !primaryKey {
			t.Errorf("duplicate id: err = %v, want a primary key error", err)
		}
	})
}

func TestEventSeq(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		create(t, s, "r1", "svc", "staging", 1)
		create(t, s, "r2", "svc", "prod", 1)
		for i := range 5 {
			for _, run := range []string{"r1", "r2"} {
				ev := &runbook.Event{RunID: run, Kind: runbook.EventNote, Text: fmt.Sprint(i), At: t0.Add(time.Duration(i) * time.Second)}
				if err := s.AppendEvent(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if ev.Seq != int64(i+2) {
					t.Errorf("%s event %d: seq %d, want %d", run, i, ev.Seq, i+2)
				}
			}
		}
		events, err := s.Events(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range events {
			if ev.Seq != int64(i+1) || ev.RunID != "r1" {
				t.Errorf("events[%d] = seq %d run %s, want seq %d run r1", i, ev.Seq, ev.RunID, i+1)
			}
		}
	})
}

func TestRuns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		for i, id := range []string{"r1", "r2", "r3"} {
			run, steps, ev := newRun(id, "svc", id, 1)
			run.StartedAt = t0.Add(time.Duration(i) * time.Hour)
			if id == "r2" {
				run.State = runbook.RunDone
			}
			if err := s.CreateRun(ctx, run, steps, ev); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name       string
			activeOnly bool
			limit      int
			want       []string
		}{
			{"all", false, 0, []string{"r3", "r2", "r1"}},
			{"limit", false, 2, []string{"r3", "r2"}},
			{"active", true, 10, []string{"r3", "r1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				runs, err := s.Runs(ctx, tt.activeOnly, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range runs {
					ids = append(ids, r.ID)
				}
				equal(t, "runs", ids, tt.want)
			})
		}
	})
}

func TestActiveRunInChannel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		for _, r := range []struct {
			id, channel string
			state       runbook.RunState
		}{{"r1", "C1", runbook.RunDone}, {"r2", "C1", runbook.RunActive}, {"r3", "C2", runbook.RunActive}, {"r4", "", runbook.RunActive}} {
			run, steps, ev := newRun(r.id, "svc", r.id, 1)
			run.State = r.state
			if r.channel != "" {
				run.Meta = map[string]string{"channel": r.channel}
			}
			if err := s.CreateRun(ctx, run, steps, ev); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			channel, want string
		}{{"C1", "r2"}, {"C2", "r3"}, {"C9", ""}}
		for _, tt := range tests {
			t.Run(tt.channel, func(t *testing.T) {
				run, err := s.ActiveRunInChannel(ctx, tt.channel)
				if tt.want == "" {
					if !errors.Is(err, runbook.ErrNotFound) {
						t.Fatalf("got %v, want ErrNotFound", err)
					}
					return
				}
				if err != nil || run.ID != tt.want {
					t.Fatalf("got %v (%v), want %s", run, err, tt.want)
				}
			})
		}
		plan := queryPlan(t, s, runsTable.selectAll+
			` WHERE state = 'active' AND `+s.d.channel+` = ? ORDER BY started_at DESC LIMIT 1`, "C1")
		if !strings.Contains(plan, "runs_active_channel") {
			t.Errorf("the lookup does not use the channel index:\n%s", plan)
		}
	})
}

// TestReopen is "after a crash the run resumes" at store level: a new
// process on the same file sees exactly what the old one wrote.
func TestReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.path(t)
		s := openStore(t, path)
		_, steps := create(t, s, "r1", "svc", "staging", 3)
		step, ev := claimed(steps[0], "U_ANA")
		if err := s.SwapStep(ctx, step, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Enqueue(ctx, OutboxMessage{Key: "event:r1:2", RunID: "r1", Kind: "timeline", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		after := snapshot(t, openStore(t, path))
		equal(t, "state after reopen", after, before)
		if after.steps[0].State != runbook.Running || after.steps[0].Checkpoint["dispatched_at"] == "" {
			t.Errorf("running step lost its state or checkpoint: %+v", after.steps[0])
		}
	})
}

type state struct {
	runs   []*runbook.Run
	steps  []runbook.StepState
	events []runbook.Event
	due    []OutboxMessage
}

func snapshot(t *testing.T, s *Store) state {
	t.Helper()
	ctx := context.Background()
	var st state
	var err error
	if st.runs, err = s.Runs(ctx, false, 0); err != nil {
		t.Fatal(err)
	}
	if st.steps, err = s.Steps(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if st.events, err = s.Events(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if st.due, err = s.Due(ctx, t0, 0); err != nil {
		t.Fatal(err)
	}
	return st
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// awaitingSteps opens a store with a run of b.N steps awaiting approval,
// for the claim benchmarks.
func awaitingSteps(b *testing.B) (*Store, []runbook.StepState) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "drbot.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	run, steps, ev := newRun("r1", "svc", "staging", b.N)
	for i := range steps {
		steps[i].State = runbook.AwaitingApproval
	}
	if err := s.CreateRun(ctx, run, steps, ev); err != nil {
		b.Fatal(err)
	}
	return s, steps
}

// BenchmarkClaimStep measures the exactly-once claim: SwapStep
// awaiting_approval -> running with its timeline event, on fresh steps.
func BenchmarkClaimStep(b *testing.B) {
	ctx := context.Background()
	s, steps := awaitingSteps(b)
	b.ResetTimer()
	for i := range b.N {
		step, ev := claimed(steps[i], "U_ANA")
		if err := s.SwapStep(ctx, step, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

// Many writers at once in one process never fail with "database is
// locked": the store queues them itself, even with SQLite's own wait off.
func TestConcurrentWritersNeverLock(t *testing.T) {
	ctx := context.Background()
	dsn := strings.Replace(DSN(filepath.Join(t.TempDir(), "drbot.db")), "busy_timeout(5000)", "busy_timeout(0)", 1)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	s := withWriter(db, dsn, sqliteDialect)
	t.Cleanup(func() { s.Close() })
	if err := s.migrate(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	const writers, each = 64, 10
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- s.write(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO envelopes (id, handled_at) VALUES (?, ?)`, fmt.Sprintf("w%d-%d", w, i), "2026-12-02T00:00:00Z")
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}
}

// queryPlan is the database's plan for query. On PostgreSQL, which rightly
// prefers a sequential scan or the other partial index on a table of four
// rows, the plan is made with sequential scans off and runs_one_active
// hidden (dropped in a transaction that is rolled back): the question is
// whether the channel index can serve the query.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	var plan strings.Builder
	if s.d.name == "postgres" {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for _, q := range []string{"SET LOCAL enable_seqscan = off", "DROP INDEX runs_one_active"} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := tx.QueryContext(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		return plan.String()
	}
	rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	return plan.String()
}
