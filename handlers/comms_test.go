package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// The comms side of fakeEngine: it records calls.

func (e *fakeEngine) SetStage(_ context.Context, runID, actor string, to runbook.Stage) error {
	e.record(fmt.Sprintf("stage %s %s %s", runID, actor, to))
	return e.clickErr
}

func (e *fakeEngine) SetRoles(_ context.Context, runID, actor string, roles runbook.Incident) error {
	e.record(fmt.Sprintf("roles %s %s comms=%s tech=%s lead=%s", runID, actor, roles.CommsLead, roles.TechLead, roles.IncidentLead))
	return nil
}

func (e *fakeEngine) DraftUpdate(_ context.Context, runID string) (runbook.UpdateDraft, error) {
	return runbook.UpdateDraft{RunID: runID, Stage: runbook.StageRecovering, Text: "Stage: recovering.\nNext: Restore."}, nil
}

func (e *fakeEngine) RecordUpdate(_ context.Context, runID, actor, text string) error {
	e.record(fmt.Sprintf("update %s %s %s", runID, actor, text))
	return nil
}

func (e *fakeEngine) RecordDrill(_ context.Context, runID, actor string, passed bool, note string) error {
	e.record(fmt.Sprintf("drill %s %s %v %s", runID, actor, passed, note))
	return nil
}

func (e *fakeEngine) AddFollowUp(_ context.Context, runID, actor string, link runbook.Link) error {
	e.record(fmt.Sprintf("follow-up %s %s %s", runID, actor, link.URL))
	return nil
}

func (f *fakeIncidents) UploadReport(_ context.Context, runID string) error {
	f.announced = append(f.announced, "report "+runID)
	return nil
}

func (f *fakeIncidents) InviteLeads(_ context.Context, channel string, users ...string) string {
	f.announced = append(f.announced, "invite "+channel+" "+strings.Join(users, ","))
	return ""
}

func (f *fakeIncidents) TimelineLink(_ context.Context, runID string) string {
	return "https://slack.example/archives/CA/p1"
}

type fakeFollowUps struct{ created []string }

func (f *fakeFollowUps) CreateIssue(_ context.Context, repo, title, body string) (runbook.Link, error) {
	f.created = append(f.created, repo+": "+title+": "+body)
	return runbook.Link{Label: repo + "#7: " + title, URL: "https://github.com/" + repo + "/issues/7"}, nil
}

func TestStartDeclaration(t *testing.T) {
	f := newFixture(t)
	reply, task := f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "C0GENERAL1",
		Text: `start scenario-2 service=itt-mentor-services env=staging priority=p1 kind=test comms=<@U0COMMSLD1> tech=<@U0PLATF001> description="orders lost" ` + restore})
	if task == nil {
		t.Fatalf("no task: %q", reply.Text)
	}
	task(context.Background())
	got := f.engine.started.Incident
	want := runbook.Incident{Priority: runbook.P1, Kind: runbook.KindTest, Description: "orders lost", IncidentLead: "U0INCLEAD1", CommsLead: "U0COMMSLD1", TechLead: "U0PLATF001"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("declared %+v, want %+v", got, want)
	}
	if len(f.incidents.opened) != 1 || f.incidents.opened[0].Incident.Priority != runbook.P1 || f.incidents.opened[0].Comms != "U0COMMSLD1" {
		t.Errorf("channel request %+v", f.incidents.opened)
	}
	for args, want := range map[string]string{
		"priority=P9":                `priority "P9"`,
		"kind=incident dr_test=true": "dr_test=true contradicts kind=incident",
	} {
		reply, task = f.h.Command(Request{UserID: "U0INCLEAD1", Text: "start scenario-2 service=itt-mentor-services env=staging " + args + " " + restore})
		if task != nil || !strings.Contains(reply.Text, want) {
			t.Errorf("%s answered %q, want %q in the ack", args, reply.Text, want)
		}
	}
}

func TestCommsClicksAndForms(t *testing.T) {
	run := &runbook.Run{ID: "dr-a", State: runbook.RunActive, Meta: map[string]string{"channel": "CA"}}
	f := newFixture(t, run)
	follow := &fakeFollowUps{}
	f.h.opts.FollowUps, f.h.opts.FollowUpRepo = follow, "DFE-Digital/itt-mentor-services"
	ctx := context.Background()

	if r := f.h.Click(ctx, Click{Action: ActStage, RunID: "dr-a", Value: "monitoring", UserID: "U0INCLEAD1"}); r.Text != "" {
		t.Errorf("stage click: %q", r.Text)
	}
	if r := f.h.Click(ctx, Click{Action: ActStage, RunID: "dr-a", Value: "done", UserID: "U0INCLEAD1"}); !strings.Contains(r.Text, `stage "done"`) {
		t.Errorf("bad stage: %q", r.Text)
	}
	if r := f.h.Click(ctx, Click{Action: ActStage, RunID: "dr-a", Value: "monitoring", UserID: "U0SOMEONE1"}); !strings.Contains(r.Text, "not allowed") {
		t.Errorf("outsider: %q", r.Text)
	}

	r := f.h.Click(ctx, Click{Action: ActPostUpdate, RunID: "dr-a", UserID: "U0INCLEAD1"})
	if r.Compose == nil || r.Compose.Purpose != PurposeUpdate || r.Compose.Body != "Stage: recovering.\nNext: Restore." {
		t.Fatalf("post update opens %+v", r.Compose)
	}
	if p := ComposeProblems(*r.Compose, "", " "); p["body"] == "" {
		t.Error("an empty update is accepted")
	}
	if got := f.h.Compose(ctx, "U0INCLEAD1", *r.Compose, "", "Stage: recovering. Restore running.").Text; !strings.Contains(got, "Posted your update") {
		t.Errorf("compose update: %q", got)
	}

	r = f.h.Click(ctx, Click{Action: ActDrillFail, RunID: "dr-a", UserID: "U0INCLEAD1"})
	if r.Compose == nil || r.Compose.Passed {
		t.Fatalf("drill fail opens %+v", r.Compose)
	}
	f.h.Compose(ctx, "U0INCLEAD1", *r.Compose, "", "too slow")

	r = f.h.Click(ctx, Click{Action: ActFollowUp, RunID: "dr-a", UserID: "U0INCLEAD1"})
	if r.Compose == nil || r.Compose.Purpose != PurposeFollowUp {
		t.Fatalf("follow-up opens %+v", r.Compose)
	}
	if p := ComposeProblems(*r.Compose, "", "body"); p["title"] == "" {
		t.Error("a follow-up without a title is accepted")
	}
	if got := f.h.Compose(ctx, "U0INCLEAD1", *r.Compose, "Script the data check", "so it is quicker").Text; !strings.Contains(got, "issues/7") {
		t.Errorf("follow-up reply %q", got)
	}
	want := "stage dr-a U0INCLEAD1 monitoring|update dr-a U0INCLEAD1 Stage: recovering. Restore running.|drill dr-a U0INCLEAD1 false too slow|" +
		"follow-up dr-a U0INCLEAD1 https://github.com/DFE-Digital/itt-mentor-services/issues/7"
	if got := strings.Join(f.engine.calls, "|"); got != want {
		t.Errorf("engine calls\n%s\nwant\n%s", got, want)
	}
	if len(follow.created) != 1 || follow.created[0] != "DFE-Digital/itt-mentor-services: Script the data check: so it is quicker\n\n---\n"+
		"Raised from DR run dr-a with drbot; its timeline: https://slack.example/archives/CA/p1." {
		t.Errorf("issues %v", follow.created)
	}

	_, task := f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "CA", Text: "roles comms=<@U0COMMSLD1>"})
	task(ctx)
	_, task = f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "CA", Text: "report"})
	if got := task(ctx).Text; !strings.Contains(got, "being uploaded to <#CA>") {
		t.Errorf("report reply %q", got)
	}
	if last := f.engine.calls[len(f.engine.calls)-1]; last != "roles dr-a U0INCLEAD1 comms=U0COMMSLD1 tech= lead=" {
		t.Errorf("roles call %q", last)
	}
}

func TestDrillsText(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	runs := []*runbook.Run{
		{ID: "dr-old", Service: "svc", Env: "production", RunbookID: "scenario-1", State: runbook.RunDone, StartedAt: now.AddDate(0, -8, 0), EndedAt: now.AddDate(0, -8, 0).Add(time.Hour),
			Incident: runbook.Incident{Priority: runbook.P2, Kind: runbook.KindTest, Drill: &runbook.DrillResult{Passed: true}}},
		{ID: "dr-new", Service: "svc", Env: "staging", RunbookID: "scenario-2", State: runbook.RunDone, StartedAt: now.AddDate(0, 0, -3), EndedAt: now.AddDate(0, 0, -3).Add(40 * time.Minute),
			Incident: runbook.Incident{Priority: runbook.P2, Kind: runbook.KindTest, Drill: &runbook.DrillResult{Passed: false, Note: "slow"}}},
		{ID: "dr-real", Service: "svc", Env: "staging", RunbookID: "scenario-2", State: runbook.RunDone, StartedAt: now, Incident: runbook.Incident{Priority: runbook.P1, Kind: runbook.KindIncident}},
	}
	text := DrillsText(runbook.Drills(runs, now, 4380*time.Hour), time.UTC, 4380*time.Hour)
	for _, want := range []string{"⚠️ overdue *svc* / *production* · scenario-1", "pass", "✅ *svc* / *staging* · scenario-2", "fail", "40m0s", "— slow"} {
		if !strings.Contains(text, want) {
			t.Errorf("drills text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "dr-real") {
		t.Errorf("a real incident is listed as a DR test:\n%s", text)
	}
}
