package runbook_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// manualClock stands still until the test moves it.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDeclaration(t *testing.T) {
	tests := []struct {
		name     string
		incident runbook.Incident
		inputs   map[string]string
		refusal  string
		want     runbook.Incident // priority, kind, leads
		drill    bool             // the dr_test input the run got
	}{
		{"defaults", runbook.Incident{}, nil, "", runbook.Incident{Priority: runbook.P2, Kind: runbook.KindIncident, IncidentLead: "U0LEAD"}, false},
		{"all fields", runbook.Incident{Priority: "p1", Kind: "incident", CommsLead: "U0COMMS", TechLead: "U0TECH", Description: "  orders   lost  "}, nil, "",
			runbook.Incident{Priority: runbook.P1, Kind: runbook.KindIncident, IncidentLead: "U0LEAD", CommsLead: "U0COMMS", TechLead: "U0TECH", Description: "orders lost"}, false},
		{"a DR test sets dr_test", runbook.Incident{Kind: "test"}, nil, "", runbook.Incident{Priority: runbook.P2, Kind: runbook.KindTest, IncidentLead: "U0LEAD"}, true},
		{"dr_test declares a DR test", runbook.Incident{}, map[string]string{"dr_test": "true"}, "", runbook.Incident{Priority: runbook.P2, Kind: runbook.KindTest, IncidentLead: "U0LEAD"}, true},
		{"contradiction", runbook.Incident{Kind: "incident"}, map[string]string{"dr_test": "true"}, "contradicts kind=incident", runbook.Incident{}, false},
		{"bad priority", runbook.Incident{Priority: "P7"}, nil, `priority "P7"`, runbook.Incident{}, false},
		{"bad kind", runbook.Incident{Kind: "rehearsal"}, nil, `kind "rehearsal"`, runbook.Incident{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			inputs := map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"}
			for k, v := range tt.inputs {
				inputs[k] = v
			}
			req := f.request(t, "scenario-2", inputs)
			req.Incident = tt.incident
			run, err := f.eng.Start(context.Background(), req)
			if tt.refusal != "" {
				if text, ok := runbook.IsRefusal(err); !ok || !strings.Contains(text, tt.refusal) {
					t.Fatalf("err = %v, want a refusal with %q", err, tt.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.store.Run(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			in := got.Incident
			if in.Priority != tt.want.Priority || in.Kind != tt.want.Kind || in.IncidentLead != tt.want.IncidentLead ||
				in.CommsLead != tt.want.CommsLead || in.TechLead != tt.want.TechLead || in.Description != tt.want.Description {
				t.Errorf("incident = %+v, want %+v", in, tt.want)
			}
			if in.Stage != runbook.StageInvestigating || len(in.Stages) != 1 {
				t.Errorf("stage %s, history %v", in.Stage, in.Stages)
			}
			wantEvery := 60 * time.Minute
			if in.Priority == runbook.P1 {
				wantEvery = 30 * time.Minute
			}
			if in.UpdateEvery != wantEvery || in.LastUpdate.IsZero() {
				t.Errorf("cadence %s from %s", in.UpdateEvery, in.LastUpdate)
			}
			drill := got.Vars["inputs"].(map[string]any)["dr_test"]
			if drill != tt.drill {
				t.Errorf("dr_test = %v, want %v", drill, tt.drill)
			}
		})
	}
}

// TestStagesFollowTheRun drives scenario-2 and checks each stage change
// happens where the recovery starts and ends, and that a stage set by hand
// is kept.
func TestStagesFollowTheRun(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req := f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"})
	req.Incident = runbook.Incident{Priority: runbook.P1}
	run, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f.driveAll(t, run.ID)
	events, err := f.store.Events(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The stage event comes right after the step event that moved it.
	var moves []string
	for i, ev := range events {
		if ev.Kind == runbook.EventStage && i > 0 {
			moves = append(moves, ev.Text+" after "+events[i-1].StepID+" "+string(events[i-1].Kind))
		}
	}
	want := []string{
		"stage: investigating → recovering (as the run went on) after scale-down step.running",
		"stage: recovering → monitoring (as the run went on) after unfreeze-merges step.done",
	}
	if strings.Join(moves, "\n") != strings.Join(want, "\n") {
		t.Errorf("stage changes:\n%s\nwant:\n%s", strings.Join(moves, "\n"), strings.Join(want, "\n"))
	}
	got, err := f.store.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stages []runbook.Stage
	for _, c := range got.Incident.Stages {
		stages = append(stages, c.Stage)
	}
	if got.Incident.Stage != runbook.StageResolved || len(stages) != 4 {
		t.Errorf("stages %v", stages)
	}
	if err := f.eng.SetStage(ctx, run.ID, "U0COMMS", runbook.StageMonitoring); err == nil {
		t.Error("an ended run's stage was changed")
	}

	// By hand: a later stage than the steps imply is kept, not moved back.
	req.Service, req.Env = "itt-mentor-services", "staging"
	run2, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.SetStage(ctx, run2.ID, "U0COMMS", runbook.StageMonitoring); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.SetStage(ctx, run2.ID, "U0COMMS", runbook.StageResolved); err == nil {
		t.Error("an active run was set resolved")
	}
	f.approveUntil(t, run2.ID, "freeze-merges")
	got, _ = f.store.Run(ctx, run2.ID)
	if got.Incident.Stage != runbook.StageMonitoring {
		t.Errorf("stage %s after scale-down, want the monitoring set by hand", got.Incident.Stage)
	}
}

// TestUpdateReminders moves the clock: a reminder is recorded once when an
// update is due, an update restarts the cadence, an engine built again on
// the same store (a restart) reminds of what is due, and an ended run is
// never reminded of.
func TestUpdateReminders(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(o *runbook.Options) { o.Clock = clock })
	ctx := context.Background()
	req := f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"})
	req.Incident = runbook.Incident{Priority: runbook.P1, CommsLead: "U0COMMS"}
	run, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	remind := func(eng *runbook.Engine, want int) {
		t.Helper()
		n, err := eng.RemindDue(ctx)
		if err != nil || n != want {
			t.Fatalf("RemindDue at %s = %d, %v; want %d", clock.Now().Format("15:04"), n, err, want)
		}
	}
	clock.Add(29 * time.Minute)
	remind(f.eng, 0)
	clock.Add(time.Minute)
	remind(f.eng, 1)
	remind(f.eng, 0) // once per due time
	clock.Add(5 * time.Minute)
	restarted := runbook.New(f.opts)
	remind(restarted, 0) // still once, after a restart

	d, err := restarted.DraftUpdate(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Stage != runbook.StageInvestigating || d.Next != "Stop the web app and workers" || !strings.Contains(d.Text, "Next: Stop the web app and workers.") {
		t.Errorf("draft %+v", d)
	}
	if err := restarted.RecordUpdate(ctx, run.ID, "U0COMMS", "restoring"); err != nil {
		t.Fatal(err)
	}
	clock.Add(29 * time.Minute)
	remind(restarted, 0)
	clock.Add(time.Minute)
	remind(restarted, 1)

	if err := restarted.Abort(ctx, run.ID, "U0APPROVER1", "test"); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Hour)
	remind(restarted, 0)
	events, _ := f.store.Events(ctx, run.ID)
	var due int
	for _, ev := range events {
		if ev.Kind == runbook.EventUpdateDue {
			due++
		}
	}
	if due != 2 {
		t.Errorf("%d update.due events, want 2", due)
	}
}

func TestDrillsAndFollowUps(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(o *runbook.Options) { o.Clock = clock; o.NewID = nil })
	ctx := context.Background()
	req := f.request(t, "scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"})
	req.Incident = runbook.Incident{Kind: runbook.KindTest}
	run, err := f.eng.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.RecordDrill(ctx, run.ID, "U0LEAD", true, "ok"); err == nil {
		t.Error("a result was recorded while the run was active")
	}
	clock.Add(40 * time.Minute)
	if err := f.eng.Abort(ctx, run.ID, "U0LEAD", "enough"); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.RecordDrill(ctx, run.ID, "U0LEAD", false, "restore took too long"); err != nil {
		t.Fatal(err)
	}
	link := runbook.Link{Label: "DFE-Digital/itt-mentor-services#7 Faster restore", URL: "https://github.com/DFE-Digital/itt-mentor-services/issues/7"}
	if err := f.eng.AddFollowUp(ctx, run.ID, "U0LEAD", link); err != nil {
		t.Fatal(err)
	}
	runs, err := f.store.Runs(ctx, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := runbook.Drills(runs, clock.Now(), 180*24*time.Hour)
	if len(got) != 1 || got[0].Result != "fail" || got[0].Note != "restore took too long" || got[0].TimeToRecover != 40*time.Minute || got[0].Overdue {
		t.Fatalf("drills %+v", got)
	}
	if got := runbook.Drills(runs, clock.Now().Add(181*24*time.Hour), 180*24*time.Hour); !got[0].Overdue {
		t.Error("a test 181 days old is not overdue")
	}
	r, _ := f.store.Run(ctx, run.ID)
	if len(r.Incident.FollowUps) != 1 || r.Incident.FollowUps[0] != link {
		t.Errorf("follow-ups %v", r.Incident.FollowUps)
	}
}
