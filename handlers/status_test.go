package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

func TestMention(t *testing.T) {
	tests := map[string]string{"U0INCLEAD1": "<@U0INCLEAD1>", "W0ENTERPR1": "<@W0ENTERPR1>", "drbot": "drbot", "ana": "ana", "": "drbot"}
	for in, want := range tests {
		if got := Mention(in); got != want {
			t.Errorf("Mention(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusText(t *testing.T) {
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	rb := cat["scenario-2"]
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	run := &runbook.Run{ID: "dr-1", RunbookID: rb.ID, Service: "svc", Env: "stg", State: runbook.RunActive,
		StartedBy: "U0INCLEAD1", StartedAt: start, Meta: map[string]string{"channel": "C1"}, Vars: map[string]any{}}
	steps := make([]runbook.StepState, len(rb.Steps))
	for i, s := range rb.Steps {
		steps[i] = runbook.StepState{StepID: s.ID, State: runbook.Pending}
	}
	steps[0] = runbook.StepState{StepID: rb.Steps[0].ID, State: runbook.Done, Actor: "U0INCLEAD1", StartedAt: start, EndedAt: start.Add(192 * time.Second)}
	steps[1] = runbook.StepState{StepID: rb.Steps[1].ID, State: runbook.Skipped, Actor: "U0PLATF001"}
	steps[16] = runbook.StepState{StepID: "restore-live", State: runbook.AwaitingApproval, Approvers: []string{"U0INCLEAD1"}}
	london, _ := time.LoadLocation("Europe/London")
	got := StatusText(runbook.BuildView(run, rb, steps, nil), london, start.Add(10*time.Minute))
	for _, want := range []string{
		"*dr-1* · scenario-2 (Loss of data (point-in-time restore)) · svc/stg — *active*",
		"Started 2026-06-01 09:00:00 UTC (10:00:00 BST) by <@U0INCLEAD1> in <#C1> · running for 10m0s",
		"✅ 1. Stop the web app and workers — done by <@U0INCLEAD1> · 3m12s",
		"⏭️ 2. Create the incident channel — skipped by <@U0PLATF001>",
		"👉 17. Restore the live server from the PTR backup — waiting for approval (1 of 2)",
		"▫️ 27. Raise cards for process improvements",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
}
