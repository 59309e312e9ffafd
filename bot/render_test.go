package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/drbot-dev/drbot/adapters/github"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// t0 is the fixtures' start: 10:00 UTC on a winter day (GMT = UTC) would
// hide the zone, so it is a summer day (BST = UTC+1).
var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// fixtureView plans scenario-2 for itt-mentor-services/staging and gives its
// steps the states set by edit.
func fixtureView(t *testing.T, simulated bool, edit func(steps []runbook.StepState)) *runbook.RunView {
	t.Helper()
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	scope, err := cfg.Scope("itt-mentor-services", "staging")
	if err != nil {
		t.Fatal(err)
	}
	// The real GitHub adapter, on GitHub Enterprise: its links, not
	// github.com ones, must reach the blocks.
	ghe, err := github.New(github.Options{BaseURL: "https://ghe.example.com/api/v3/", Token: "ghp_render"})
	if err != nil {
		t.Fatal(err)
	}
	reg := ghe.Actions()
	if simulated {
		reg = sim.New(sim.Options{}).Only("github.", "kubernetes.", "azure.", "http.")
	}
	eng := runbook.New(runbook.Options{Actions: reg, Clock: fixedClock{t0}, NewID: func(time.Time) string { return "dr-20260601-0900-ab12" }})
	rb := cat["scenario-2"]
	plan, err := eng.Plan(runbook.StartRequest{Runbook: rb, Service: "itt-mentor-services", Env: "staging", Config: scope,
		Inputs: map[string]string{"restore_time": "2026-06-01 09:30 Europe/London", "dr_test": "true"}, Actor: "U0INCLEAD1",
		Meta: map[string]string{"channel": "C0INCIDENT"}})
	if err != nil {
		t.Fatal(err)
	}
	steps := make([]runbook.StepState, len(plan.Steps))
	for i, s := range plan.Steps {
		steps[i] = s.State
	}
	if edit != nil {
		edit(steps)
	}
	return runbook.BuildView(plan.Run, rb, steps, reg)
}

// at is t0 plus minutes.
func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

func setStep(steps []runbook.StepState, id string, f func(*runbook.StepState)) {
	for i := range steps {
		if steps[i].StepID == id {
			f(&steps[i])
			return
		}
	}
	panic("no step " + id)
}

func done(by string, from, to float64, summary string) func(*runbook.StepState) {
	return func(s *runbook.StepState) {
		s.State, s.Actor, s.Approvers, s.StartedAt, s.EndedAt, s.Summary, s.Attempt, s.Version =
			runbook.Done, by, []string{by}, at(from), at(to), summary, 1, 4
	}
}

// midRun: four steps done, enable-maintenance running.
func midRun(steps []runbook.StepState) {
	setStep(steps, "scale-down", done("U0INCLEAD1", 1, 1.2, "SIMULATED: scaled 2 deployments to 0"))
	setStep(steps, "incident-channel", done("drbot", 1.2, 1.3, "incident channel <#C0INCIDENT> (#dr-20260601-itt-mentor-services-staging) is open"))
	setStep(steps, "notify-stakeholders", done("drbot", 1.3, 1.4, "stakeholder notice posted to <#C0DRSTAKE1>"))
	setStep(steps, "alert-no-merge", done("drbot", 1.4, 1.5, "developer notice posted to <#C0DEVELOP1>"))
	setStep(steps, "freeze-merges", done("U0PLATF01", 2, 2.5, "SIMULATED: required approvals on DFE-Digital/itt-mentor-services@main changed 1 → 6"))
	setStep(steps, "enable-maintenance", func(s *runbook.StepState) {
		s.State, s.Actor, s.Approvers, s.StartedAt, s.Attempt, s.Version = runbook.Running, "U0INCLEAD1", []string{"U0INCLEAD1"}, at(3), 1, 5
		s.Progress = "SIMULATED: maintenance.yml run #4101: in progress"
		s.Links = []runbook.Link{{Label: "maintenance.yml run #4101", URL: "https://github.com/DFE-Digital/itt-mentor-services/actions/runs/4101"}}
	})
}

func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (rerun with -update if the change is intended):\n%s", name, path, got)
	}
}

var london, _ = time.LoadLocation("Europe/London")

func TestRenderGolden(t *testing.T) {
	r := Renderer{Location: london}
	step := func(v *runbook.RunView, id string) Message {
		m, ok := r.Step(v, id)
		if !ok {
			t.Fatalf("no step %s", id)
		}
		return m
	}
	tests := []struct {
		name   string
		render func() any
	}{
		{"panel_mid_run", func() any { return r.Panel(fixtureView(t, true, midRun)) }},
		{"panel_real", func() any { return r.Panel(fixtureView(t, false, midRun)) }},
		{"step_awaiting", func() any {
			return step(fixtureView(t, true, func(s []runbook.StepState) {
				setStep(s, "scale-down", func(st *runbook.StepState) { st.State, st.Version = runbook.AwaitingApproval, 2 })
			}), "scale-down")
		}},
		{"step_workflow_running", func() any { return step(fixtureView(t, true, midRun), "enable-maintenance") }},
		// On the real adapter the workflow link is the adapter's: GitHub Enterprise here.
		{"step_workflow_ghe", func() any { return step(fixtureView(t, false, midRun), "enable-maintenance") }},
		{"step_done", func() any { return step(fixtureView(t, true, midRun), "freeze-merges") }},
		{"step_destructive_one_of_two", func() any {
			return step(fixtureView(t, true, func(s []runbook.StepState) {
				setStep(s, "restore-live", func(st *runbook.StepState) {
					st.State, st.Approvers, st.Actor, st.Version = runbook.AwaitingApproval, []string{"U0INCLEAD1"}, "U0INCLEAD1", 3
				})
			}), "restore-live")
		}},
		{"step_manual_command", func() any {
			return step(fixtureView(t, true, func(s []runbook.StepState) {
				setStep(s, "inspect-ptr", func(st *runbook.StepState) { st.State, st.Version = runbook.AwaitingApproval, 2 })
			}), "inspect-ptr")
		}},
		{"step_auto_failed", func() any {
			return step(fixtureView(t, false, func(s []runbook.StepState) {
				setStep(s, "notify-stakeholders", func(st *runbook.StepState) {
					st.State, st.Actor, st.StartedAt, st.EndedAt, st.Attempt, st.Version = runbook.Failed, "drbot", at(1), at(1.1), 1, 3
					st.Error = `"Inform the stakeholders" failed: the stakeholder notice could not be posted to <#C0DRSTAKE1>: not_in_channel`
				})
			}), "notify-stakeholders")
		}},
		{"timeline_event", func() any {
			v := fixtureView(t, true, midRun)
			return r.TimelineEvent(v, runbook.Event{RunID: v.Run.ID, Seq: 12, StepID: "enable-maintenance", Kind: runbook.EventStepProgress,
				Actor: "drbot", At: at(3.5), Text: "SIMULATED: maintenance.yml run #4101: in progress",
				Links: []runbook.Link{{Label: "maintenance.yml run #4101", URL: "https://github.com/DFE-Digital/itt-mentor-services/actions/runs/4101"}}})
		}},
		{"timeline_refusal", func() any {
			v := fixtureView(t, false, midRun)
			return r.TimelineEvent(v, runbook.Event{Kind: runbook.EventRefused, Actor: "U0SOMEONE", At: at(2.2), StepID: "freeze-merges",
				Text: `refused: you are not a configured approver, so you may not approve "Set required PR approvers to 6"; ask an approver`})
		}},
		{"timeline_root", func() any { return r.TimelineRoot(fixtureView(t, true, nil)) }},
		{"closing", func() any {
			v := fixtureView(t, true, func(s []runbook.StepState) {
				for i := range s {
					done("U0INCLEAD1", float64(i), float64(i)+0.5, "")(&s[i])
				}
				setStep(s, "inspect-ptr", func(st *runbook.StepState) { st.State, st.Actor = runbook.Skipped, "U0PLATF01" })
			})
			v.Run.State, v.Run.EndedAt = runbook.RunDone, at(47)
			return r.Closing(v, at(50))
		}},
		{"notice", func() any {
			return r.Notice(fixtureView(t, true, midRun), "Data loss incident on itt-mentor-services (staging): the service is stopped.")
		}},
		{"update", func() any {
			return r.Update(fixtureView(t, false, midRun), "U0COMMSLD1", "Restore is running; next update at 10:30.", at(10))
		}},
		{"modal_scenario_2", func() any {
			return r.Modal(handlers.StartForm{
				Scenarios: []handlers.Choice{{Value: "scenario-1", Label: "scenario-1: Loss of database server"}, {Value: "scenario-2", Label: "scenario-2: Loss of data (point-in-time restore)"}},
				Scenario:  "scenario-2",
				Targets:   []handlers.Target{{Service: "itt-mentor-services", Envs: []string{"production", "staging"}}},
				Service:   "itt-mentor-services", Env: "staging",
				Inputs: []handlers.FormInput{
					{Input: runbook.Input{Name: "restore_time", Type: runbook.InputTime, Required: true, Help: "a time before the data was lost"}},
					{Input: runbook.Input{Name: "ptr_server", Help: "override the PTR server name"}},
					{Input: runbook.Input{Name: "dr_test", Type: runbook.InputBool, Default: "false"}},
				},
				ChannelID: "C0GENERAL", Note: "Still needed: restore_time.",
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.render()) })
	}
}

func TestRenderStaysWithinSlackLimits(t *testing.T) {
	long := strings.Repeat("x", 5000)
	v := fixtureView(t, true, func(s []runbook.StepState) {
		setStep(s, "scale-down", func(st *runbook.StepState) {
			st.State, st.Error, st.EndedAt = runbook.Failed, long, at(1)
		})
	})
	v.Steps[0].Step.Explain = long
	r := Renderer{Location: london}
	m, _ := r.Step(v, "scale-down")
	raw, _ := json.Marshal(m.Blocks)
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if text, ok := b["text"].(map[string]any); ok {
			if n := len([]rune(text["text"].(string))); n > maxSectionText {
				t.Errorf("block %d has %d characters", i, n)
			}
		}
	}
	if n := len([]rune(m.Text)); n > maxSectionText {
		t.Errorf("text has %d characters", n)
	}
}

func TestSimulationMarker(t *testing.T) {
	tests := []struct {
		name      string
		simulated bool
		want      string
	}{
		{"real", false, ""},
		{"simulated", true, "🧪 *SIMULATED* — drill, no infrastructure touched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := simulation(fixtureView(t, tt.simulated, nil)); got != tt.want {
				t.Errorf("simulation = %q, want %q", got, tt.want)
			}
		})
	}
	v := fixtureView(t, false, nil)
	for i := range v.Steps {
		v.Steps[i].Simulated = strings.HasPrefix(v.Steps[i].Step.Action, "azure.")
	}
	if got := simulation(v); !strings.Contains(got, "PARTLY SIMULATED") || !strings.Contains(got, "azure.postgres.delete, azure.postgres.prepare_ptr, azure.postgres.wait") {
		t.Errorf("partial simulation = %q", got)
	}
}
