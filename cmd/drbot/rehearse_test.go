package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// runCLI runs drbot in-process and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(t.Context(), append([]string{"drbot"}, args...), getenv, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// assertNoRuns fails if the store at db (if it exists) holds any run.
func assertNoRuns(t *testing.T, db string) {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if runs, _ := st.Runs(context.Background(), false, 0); len(runs) != 0 {
		t.Errorf("%d runs stored", len(runs))
	}
}

func TestRehearseBothScenarios(t *testing.T) {
	for _, scenario := range []string{"scenario-1", "scenario-2"} {
		t.Run(scenario, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "r.db")
			code, out, errOut := runCLI(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, "", "rehearse", scenario, "--yes", "--db", db)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			cat, _ := runbook.Defaults()
			rb := cat[scenario]
			last := -1
			for _, s := range rb.Steps {
				pos := strings.Index(out, `"`+onMain(s.Title)+`" done`)
				if pos < 0 {
					t.Errorf("step %s (%q) not done in the output", s.ID, s.Title)
					continue
				}
				if pos < last {
					t.Errorf("step %s finished out of order", s.ID)
				}
				last = pos
			}
			for _, want := range []string{"SIMULATED", "══ Summary of", "0 failed", "time to recover", "UTC ("} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestRehearseInteractiveSkipAndAbort(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	// Skip the scale-down, approve the freeze, then abort.
	// Enter at the counts prompt keeps the counts the cluster holds now.
	code, out, _ := runCLI(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, "s\nalready stopped\n\na\nq\n", "rehearse", "scenario-2", "--db", db)
	if code != 1 {
		t.Fatalf("exit %d, want 1 for an aborted run\n%s", code, out)
	}
	for _, want := range []string{`skipped "Stop the web app and workers": already stopped; previous_replicas=itt-mentor-services-staging=2 itt-mentor-services-staging-worker=1 given by ana`, `"Set required PR approvers to 6" done`, "aborted the run", "⛔"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
}

func TestSecondRehearsalPointsAtTheFirst(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	env := map[string]string{"DRBOT_SIM_DELAY": "0s"}
	// The first rehearsal stops at its first question (no input left).
	if code, out, _ := runCLI(t, env, "", "rehearse", "scenario-2", "--db", db); code != 1 || !strings.Contains(out, "run id dr-") {
		t.Fatalf("first rehearsal: exit %d\n%s", code, out)
	}
	code, _, errOut := runCLI(t, env, "", "rehearse", "scenario-1", "--yes", "--db", db)
	if code != 1 || !strings.Contains(errOut, "is already active for itt-mentor-services/staging") || !strings.Contains(errOut, "drbot rehearse --resume dr-") {
		t.Fatalf("second rehearsal: exit %d, %s", code, errOut)
	}
}

func TestPlanPrintsExactCalls(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "", "plan", "scenario-2", "--config", "../../examples/drbot.yaml",
		"--service", "itt-mentor-services", "--env", "staging", "--var", `restore_time=`+time.Now().Add(-2*time.Hour).UTC().Format("2006-01-02 15:04")+" UTC")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"kubectl -n bat-staging --context test scale deployment itt-mentor-services-staging --replicas 0",
		// The PTR copy's name is the one prepare-ptr finds free at run time.
		"of Azure Postgres flexible server s189t01-ittms-stg-pg (resource group s189t01-ittms-stg-rg: earliest restore point to 5 minutes ago) and that the PTR server name s189t01-ittms-stg-pg-ptr is free",
		"Dispatch workflow postgres-ptr.yml on DFE-Digital/itt-mentor-services@main with inputs {confirm-production: false, environment: staging, new-db-server: <ptr_server, remembered by step prepare-ptr>, restore-time: ",
		"Delete Azure Postgres flexible server <ptr_server, remembered by step prepare-ptr> (resource group s189t01-ittms-stg-rg)",
		"bin/konduit.sh -x -n bat-staging -s <ptr_server, remembered by step prepare-ptr> itt-mentor-services-staging -- psql",
		"Set required PR approvals on DFE-Digital/itt-mentor-services@main to 6",
		"<previous_replicas, remembered by step scale-down>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
}

func TestBadInputExecutesNothing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"rehearse", "scenario-9", "--yes"}, `unknown scenario "scenario-9"; known: scenario-1, scenario-2`},
		{"unknown service", []string{"rehearse", "scenario-2", "--service", "nope", "--env", "staging", "--yes"}, `unknown service "nope"`},
		{"time without zone", []string{"rehearse", "scenario-2", "--yes", "--var", "restore_time=2026-11-26 09:30"}, "no time zone"},
		{"time out of the window", []string{"rehearse", "scenario-2", "--yes", "--var", "restore_time=2020-01-01 09:30 UTC"}, "only reaches back 7d"},
		{"unknown input", []string{"rehearse", "scenario-2", "--yes", "--var", "colour=red"}, `unknown input "colour"`},
		{"bad simulate", []string{"rehearse", "scenario-2", "--live", "--simulate", "dns"}, `unknown adapter "dns"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "r.db")
			code, out, errOut := runCLI(t, map[string]string{"DRBOT_SIM_DELAY": "0s"}, "", append(tt.args, "--db", db)...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want failure containing %q", code, errOut, tt.want)
			}
			if strings.Contains(out, "running") {
				t.Errorf("something ran:\n%s", out)
			}
			assertNoRuns(t, db)
		})
	}
}

func TestValidateNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`id: bad
title: Bad
steps:
  - id: one
    title: One
    action: github.freeze
  - id: two
    title: Two
    action: manual
    with: {instructions: '{{ .inputs.nope }}'}
  - id: one
    title: Again
    action: manual
    with: {instructions: x}
`), 0o644)
	code, _, errOut := runCLI(t, nil, "", "validate", bad)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{bad + `:6: step "one".action: unknown action "github.freeze"`, bad + `:10: step "two".with.instructions: unknown variable .inputs.nope`, bad + `:11: step "one".id: duplicate step id`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	if code, out, errOut := runCLI(t, nil, "", "validate", "--config", "../../examples/drbot.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("the example config does not validate: %d %s", code, errOut)
	}
}

// TestRehearsalSurvivesSIGKILL kills a rehearsal with SIGKILL while a workflow
// step runs, resumes it, and checks in the store that no step ran twice.
func TestRehearsalSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "drbot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "r.db")
	cmd := exec.Command(bin, "rehearse", "scenario-2", "--yes", "--db", db)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DRBOT_SIM_DELAY=400ms")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runID := ""
	idLine := regexp.MustCompile(`run id (dr-\S+)`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if m := idLine.FindStringSubmatch(line); m != nil {
			runID = m[1]
		}
		if strings.Contains(line, "database-backup.yml run #") && strings.Contains(line, "in progress") {
			break // the flawed-database backup is being followed: kill now
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, no goodbye
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if runID == "" {
		t.Fatal("no run id printed")
	}
	resume := exec.Command(bin, "rehearse", "--resume", runID, "--yes", "--db", db)
	resume.Dir = dir
	resume.Env = append(os.Environ(), "DRBOT_SIM_DELAY=0s")
	out, err := resume.CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `re-attaching to "Back up the flawed database" after a restart`) {
		t.Errorf("resume did not re-attach:\n%s", out)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.Events(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	running, dispatched := map[string]int{}, map[string]int{}
	for _, ev := range events {
		if ev.Kind == runbook.EventStepRunning {
			running[ev.StepID]++
		}
		if ev.Kind == runbook.EventStepProgress && strings.Contains(ev.Text, "dispatched") {
			dispatched[ev.StepID]++
		}
	}
	for step, n := range running {
		if n != 1 {
			t.Errorf("step %s started %d times", step, n)
		}
	}
	for step, n := range dispatched {
		if n != 1 {
			t.Errorf("step %s dispatched its workflow %d times", step, n)
		}
	}
	if dispatched["backup-flawed"] != 1 {
		t.Errorf("backup-flawed dispatched %d times, want 1", dispatched["backup-flawed"])
	}
	run, _ := st.Run(context.Background(), runID)
	if run.State != runbook.RunDone {
		t.Errorf("run is %s after resume", run.State)
	}
}

// onMain is a step title as a run on the branch main shows it (titles may
// name the configured branch).
func onMain(title string) string {
	return strings.ReplaceAll(title, "{{ .env.branch }}", "main")
}
