package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// stepClock moves a minute on every reading.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { c.now = c.now.Add(time.Minute); return c.now }

// recordDrill stores a DR test of scenario-2 on env, started at start and
// aborted, with its result recorded; it returns the run id.
func recordDrill(t *testing.T, st *store.Store, env string, start time.Time, passed bool) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	scope, err := cfg.Scope("itt-mentor-services", env)
	if err != nil {
		t.Fatal(err)
	}
	clock := &stepClock{now: start}
	eng := runbook.New(runbook.Options{Store: st, Actions: sim.New(sim.Options{}).Actions(), Clock: clock, Executor: runbook.SyncExecutor{}})
	run, err := eng.Start(ctx, runbook.StartRequest{Runbook: cat["scenario-2"], Service: "itt-mentor-services", Env: env, Config: scope,
		Inputs: map[string]string{"restore_time": start.Add(-time.Hour).Format(time.RFC3339)}, Actor: "U0INCLEAD1",
		Incident: runbook.Incident{Kind: runbook.KindTest, CommsLead: "U0COMMSLD1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Abort(ctx, run.ID, "U0INCLEAD1", "the test ends here"); err != nil {
		t.Fatal(err)
	}
	if err := eng.RecordDrill(ctx, run.ID, "U0COMMSLD1", passed, "recorded by the test"); err != nil {
		t.Fatal(err)
	}
	return run.ID
}

// TestReportAndDrillsCommands records two DR tests, one eight months old,
// and checks `drbot drills` lists both and flags the old one, and that
// `drbot report` prints the report in both formats.
func TestReportAndDrillsCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "drbot.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	old := recordDrill(t, st, "production", time.Now().UTC().AddDate(0, -8, 0), false)
	recent := recordDrill(t, st, "staging", time.Now().UTC().Add(-48*time.Hour), true)
	_ = st.Close()
	env := map[string]string{"DRBOT_DB": db}

	code, out, errOut := runCLI(t, env, "", "drills")
	if code != 0 {
		t.Fatalf("drills exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var prod, stg string
	for _, l := range lines {
		switch {
		case strings.Contains(l, old):
			prod = l
		case strings.Contains(l, recent):
			stg = l
		}
	}
	if !strings.Contains(prod, "production") || !strings.Contains(prod, "fail") || !strings.Contains(prod, "OVERDUE") {
		t.Errorf("old DR test line %q in:\n%s", prod, out)
	}
	if !strings.Contains(stg, "staging") || !strings.Contains(stg, "pass") || strings.Contains(stg, "OVERDUE") {
		t.Errorf("recent DR test line %q in:\n%s", stg, out)
	}
	if !strings.Contains(out, "1 of 2 overdue") {
		t.Errorf("no overdue count:\n%s", out)
	}
	if code, out, _ := runCLI(t, env, "", "drills", "--service", "other"); code != 0 || !strings.Contains(out, "No DR test recorded") {
		t.Errorf("drills --service other: %d %q", code, out)
	}

	code, out, errOut = runCLI(t, env, "", "report", recent)
	if code != 0 || !strings.Contains(out, "# Incident report: Loss of data") || !strings.Contains(out, "DR test result | **pass**") {
		t.Errorf("report exited %d (%s):\n%s", code, errOut, out)
	}
	code, out, _ = runCLI(t, env, "", "report", recent, "--format", "json")
	var rep struct {
		RunID    string `json:"run_id"`
		Kind     string `json:"kind"`
		Timeline []any  `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.RunID != recent || rep.Kind != "test" || len(rep.Timeline) == 0 {
		t.Errorf("report --format json: %d %v %+v", code, err, rep)
	}
	if code, _, errOut := runCLI(t, env, "", "report", "dr-nope"); code != 1 || !strings.Contains(errOut, "there is no run dr-nope") {
		t.Errorf("unknown run: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, env, "", "report", recent, "--format", "pdf"); code != 2 {
		t.Errorf("--format pdf exited %d", code)
	}
}
