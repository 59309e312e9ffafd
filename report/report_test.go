package report_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/report"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// minuteClock moves a minute on every reading: every duration is visible
// and the same on every run of the test.
type minuteClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *minuteClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Minute)
	return c.now
}

// failOnce fails its first call, as a check that is not ready yet.
type failOnce struct {
	runbook.Action
	mu    sync.Mutex
	tried bool
}

func (f *failOnce) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	f.mu.Lock()
	first := !f.tried
	f.tried = true
	f.mu.Unlock()
	if first {
		return runbook.Result{}, errors.New("HTTP 503 from the temporary URL")
	}
	return f.Action.Run(ctx, req)
}

func (f *failOnce) Simulated() bool { return true }

// windowOK stands in for the simulated PTR check, which reads the wall
// clock: the golden files must not change with the day they are run.
type windowOK struct{}

func (windowOK) Run(context.Context, runbook.Request) (runbook.Result, error) {
	return runbook.Result{Summary: "the restore time is inside the restore window; PTR server name s189t01-ittms-stg-pg-ptr is free", Remember: "s189t01-ittms-stg-pg-ptr"}, nil
}

func (windowOK) Simulated() bool { return true }

// drill runs a P1 DR test of scenario-2 to its end on simulated adapters:
// the maintenance message skipped with a reason, the app check retried once,
// the result and a follow-up recorded.
func drill(t *testing.T) (*runbook.RunView, []runbook.Event, time.Time) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	actions := sim.New(sim.Options{}).Actions()
	actions["http.check"] = &failOnce{Action: actions["http.check"]}
	actions[runbook.KindPostgresPreparePTR] = windowOK{}
	clock := &minuteClock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	eng := runbook.New(runbook.Options{Store: st, Actions: actions, Clock: clock, Executor: runbook.SyncExecutor{},
		NewID: func(time.Time) string { return "dr-20261126-0901-d71e" }})
	scope, err := cfg.Scope("itt-mentor-services", "staging")
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(ctx, runbook.StartRequest{Runbook: cat["scenario-2"], Service: "itt-mentor-services", Env: "staging",
		Config: scope, Inputs: map[string]string{"restore_time": "2026-11-26 08:30 Europe/London"}, Actor: "U0INCLEAD1",
		Incident: runbook.Incident{Priority: runbook.P1, Kind: runbook.KindTest, Description: "Yearly DR test: restore yesterday's data",
			CommsLead: "U0COMMSLD1", TechLead: "U0PLATF001"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		v, err := eng.View(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := v.Current()
		if !ok || v.Run.State != runbook.RunActive {
			break
		}
		switch {
		case cur.Step.ID == "maintenance-message":
			err = eng.Skip(ctx, run.ID, cur.Step.ID, cur.State.Version, "U0INCLEAD1", "the maintenance page already says it")
		case cur.State.State == runbook.Failed:
			err = eng.Retry(ctx, run.ID, cur.Step.ID, cur.State.Version, "U0PLATF001")
		case len(cur.State.Approvers) > 0:
			err = eng.Approve(ctx, run.ID, cur.Step.ID, cur.State.Version, "U0PLATF001")
		default:
			err = eng.Approve(ctx, run.ID, cur.Step.ID, cur.State.Version, "U0INCLEAD1")
		}
		if err != nil {
			t.Fatalf("%s: %v", cur.Step.ID, err)
		}
	}
	if err := eng.RecordUpdate(ctx, run.ID, "U0COMMSLD1", "restore done, checking the data"); err != nil {
		t.Fatal(err)
	}
	if err := eng.RecordDrill(ctx, run.ID, "U0COMMSLD1", true, "restored in time; the PTR wait was the longest part"); err != nil {
		t.Fatal(err)
	}
	if err := eng.AddFollowUp(ctx, run.ID, "U0COMMSLD1", runbook.Link{Label: "DFE-Digital/itt-mentor-services#42: Script the data check", URL: "https://github.com/DFE-Digital/itt-mentor-services/issues/42"}); err != nil {
		t.Fatal(err)
	}
	v, err := eng.View(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	events, err := eng.Events(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v, events, clock.Now()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test ./report -update rewrites it):\n%s", name, got)
	}
}

// TestReportGolden checks the Markdown and JSON reports of a whole DR test
// against golden files, and that they hold every timeline event, every
// step and the durations the run had.
func TestReportGolden(t *testing.T) {
	v, events, now := drill(t)
	london, _ := time.LoadLocation("Europe/London")
	r := report.Build(v, events, now, london)

	md := r.Markdown()
	golden(t, "drill.golden.md", md)
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "drill.golden.json", js)

	if len(r.Timeline) != len(events) {
		t.Errorf("%d timeline entries for %d events", len(r.Timeline), len(events))
	}
	for _, ev := range events {
		if !strings.Contains(string(md), report.Plain(ev.Text)) {
			t.Errorf("the Markdown lacks event %d %s %q", ev.Seq, ev.Kind, ev.Text)
		}
	}
	if got, want := r.TimeToRecover.Seconds, v.Run.EndedAt.Sub(v.Run.StartedAt).Seconds(); got != want || want <= 0 {
		t.Errorf("time to recover %vs, want %vs", got, want)
	}
	for _, s := range v.Steps {
		step := r.Steps[s.State.Index]
		if d := s.State.Duration(); s.State.State == runbook.Done && (step.Duration == nil || step.Duration.Seconds != d.Seconds()) {
			t.Errorf("step %s duration %+v, want %s", s.Step.ID, step.Duration, d)
		}
	}
	var stageTotal float64
	for _, s := range r.Stages {
		if s.Duration != nil {
			stageTotal += s.Duration.Seconds
		}
	}
	if stageTotal != r.TimeToRecover.Seconds || len(r.Stages) != 4 {
		t.Errorf("stages %+v add up to %vs, time to recover %vs", r.Stages, stageTotal, r.TimeToRecover.Seconds)
	}
	if len(r.Skipped) != 1 || r.Skipped[0].Reason != "the maintenance page already says it" {
		t.Errorf("skipped %+v", r.Skipped)
	}
	if check := r.Steps[indexOf(v, "check-app")]; check.Retries != 1 {
		t.Errorf("check-app retries %d, want 1", check.Retries)
	}
}

func indexOf(v *runbook.RunView, id string) int {
	for i, s := range v.Steps {
		if s.Step.ID == id {
			return i
		}
	}
	return -1
}

func TestPlain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"approved by <@U0LEAD1>", "approved by @U0LEAD1"},
		{"channel <#C0ABC|dr-1> (#dr-1)", "channel #dr-1 (#dr-1)"},
		{"see <https://x.example/run/1|run 1>", "see run 1 (https://x.example/run/1)"},
		{"P1 contacts <!subteam^S0P1ONCALL>", "P1 contacts @S0P1ONCALL"},
		{"a < b", "a < b"},
	}
	for _, tt := range tests {
		if got := report.Plain(tt.in); got != tt.want {
			t.Errorf("Plain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
