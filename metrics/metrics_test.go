package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/runbook"
)

func TestObserversFeedTheSeries(t *testing.T) {
	stats := Stats{OutboxPending: 3, OldestPending: time.Now().Add(-90 * time.Second), OpenRuns: 2}
	m := New(func(context.Context) (Stats, error) { return stats, nil })
	m.Envelope("slash_commands")
	m.Acked("slash_commands", 4*time.Millisecond)
	m.ClickRefused(bot.RefusedByEngine)
	m.Connected(true)
	m.StepEnded("github.workflow", runbook.Done, 3*time.Minute)
	m.StepEnded("manual", runbook.Skipped, 0)
	m.ActionCalled("github.workflow", 2*time.Second, nil)
	m.ActionCalled("github.workflow", time.Second, runbook.Retryable(errors.New("502")))

	tests := []struct{ name, want string }{
		{"envelopes", `drbot_slack_envelopes_total{type="slash_commands"} 1`},
		{"ack", `drbot_slack_ack_seconds_bucket{type="slash_commands",le="0.005"} 1`},
		{"refused", `drbot_clicks_refused_total{reason="refused"} 1`},
		{"refused at zero", `drbot_clicks_refused_total{reason="queue_full"} 0`},
		{"connected", `drbot_slack_connected 1`},
		{"steps", `drbot_steps_total{kind="github.workflow",outcome="done"} 1`},
		{"skipped", `drbot_steps_total{kind="manual",outcome="skipped"} 1`},
		{"duration", `drbot_step_duration_seconds_sum{kind="github.workflow"} 180`},
		{"adapter calls", `drbot_adapter_call_seconds_count{adapter="github"} 2`},
		{"adapter errors", `drbot_adapter_errors_total{adapter="github",retryable="true"} 1`},
		{"adapter errors at zero", `drbot_adapter_errors_total{adapter="azure",retryable="false"} 0`},
		{"outbox", `drbot_outbox_pending_messages 3`},
		{"runs", `drbot_runs_open 2`},
		{"store", `drbot_store_up 1`},
	}
	text := scrape(t, m)
	for _, tt := range tests {
		if !strings.Contains(text, tt.want) {
			t.Errorf("%s: no %q in the scrape", tt.name, tt.want)
		}
	}
	if !strings.Contains(text, "drbot_outbox_oldest_pending_age_seconds 9") {
		t.Errorf("oldest pending age is not ~90 s:\n%s", grep(text, "oldest"))
	}
	if strings.Contains(text, `drbot_step_duration_seconds_count{kind="manual"}`) {
		t.Error("a skipped step has a duration")
	}
}

func TestStoreUnreadable(t *testing.T) {
	m := New(func(context.Context) (Stats, error) { return Stats{}, errors.New("connection refused") })
	if text := scrape(t, m); !strings.Contains(text, "drbot_store_up 0") {
		t.Errorf("no drbot_store_up 0:\n%s", grep(text, "drbot_store"))
	}
}

// scrape reads /metrics as Prometheus does.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// grep keeps the lines of text that contain s.
func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
