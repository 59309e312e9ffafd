package terminal

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

func TestNotifyShowsUTCAndLocalTimeWithLinks(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	tests := []struct {
		name string
		ev   runbook.Event
		want []string
	}{
		{"summer step with a link", runbook.Event{Kind: runbook.EventStepDone, Actor: "U0ANA", At: time.Date(2026, 6, 1, 8, 30, 0, 0, time.UTC),
			Text: `"Enable maintenance" done`, Links: []runbook.Link{{Label: "run #7", URL: "https://github.com/o/r/actions/runs/7"}}},
			[]string{"2026-06-01 08:30:00 UTC (09:30:00 BST)  ✅ \"Enable maintenance\" done  · U0ANA", "↳ run #7: https://github.com/o/r/actions/runs/7"}},
		{"drbot's own events name nobody", runbook.Event{Kind: runbook.EventStepWaiting, Actor: "drbot", At: time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC), Text: "waiting"},
			[]string{"2026-12-01 08:30:00 UTC (08:30:00 GMT)  ⏸ waiting\n"}},
		{"refusals stand out", runbook.Event{Kind: runbook.EventRefused, Actor: "U0EVE", At: time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC), Text: "refused: not an approver"},
			[]string{"🚫 refused: not an approver  · U0EVE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			New(&out, london).Notify(context.Background(), nil, tt.ev)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	New(&out, time.UTC).Summary(runbook.Summary{RunID: "dr-1", Title: "Loss of data", Done: 1, Failed: 1, TimeToRecover: 42 * time.Minute,
		Steps: []runbook.StepSummary{
			{Title: "Stop the web app", State: runbook.Done, Actor: "U0ANA", Duration: 3*time.Minute + 12*time.Second},
			{Title: "Back up", State: runbook.Failed, Actor: "U0ANA", Error: "workflow concluded failure"},
		}})
	for _, want := range []string{"Summary of dr-1: Loss of data", "✅ done", "3m12s  U0ANA", "❌ failed", "error: workflow concluded failure", "1 done, 0 skipped, 1 failed, 0 not reached; time to recover 42m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
