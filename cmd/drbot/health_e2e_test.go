package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/handlers"
)

// freeAddr is a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitStatus polls url until it answers want, and returns the body.
func (s *served) waitStatus(url string, want int) string {
	s.t.Helper()
	for {
		code, body := get(s.t, url)
		if code == want {
			return body
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("GET %s: %d %q, never %d", url, code, body, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestServeHealthAndMetrics is --listen over HTTP: /healthz answers,
// /readyz is ready once the socket is up, unready while Slack refuses to
// reconnect after a drop and ready again after, and /metrics has every
// family of issue 12 once a command and a step have gone through.
func TestServeHealthAndMetrics(t *testing.T) {
	addr := freeAddr(t)
	s := newServed(t, newFakeSlack(), examples.Config, 60*time.Second, map[string]string{"DRBOT_LISTEN": addr})
	s.launch()
	base := "http://" + addr

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	ready := s.waitStatus(base+"/readyz", http.StatusOK)
	for _, want := range []string{"config: ok", "store: ok", "slack: ok"} {
		if !strings.Contains(ready, want) {
			t.Errorf("/readyz lacks %q:\n%s", want, ready)
		}
	}

	// The socket drops and Slack refuses the next reconnects: unready.
	s.slack.Fail("apps.connections.open", "internal_error", "internal_error", "internal_error")
	before := s.slack.Connections()
	s.slack.Drop()
	unready := s.waitStatus(base+"/readyz", http.StatusServiceUnavailable)
	if !strings.Contains(unready, "slack: socket mode not connected") {
		t.Errorf("unready /readyz does not say why:\n%s", unready)
	}
	// It reconnects by itself: ready again.
	s.waitStatus(base+"/readyz", http.StatusOK)
	if s.slack.Connections() == before {
		t.Error("ready again without a new connection")
	}

	// A command and a step, so the series have values.
	steps := scenarioSteps(t, "scenario-2")
	s.command(lead, general, `start scenario-2 service=itt-mentor-services env=staging restore_time="`+restoreTime()+`"`)
	ch, err := s.slack.WaitChannel(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	scaleDown := s.stepMessage(ch.ID, steps["scale-down"], "awaiting approval", "")
	s.click(outsider, scaleDown, handlers.ActApprove)
	s.ephemeral(outsider, "you are not a configured approver")
	s.click(lead, scaleDown, handlers.ActApprove)
	s.stepMessage(ch.ID, steps["scale-down"], "done", "")

	metrics := s.waitMetric(base+"/metrics", `drbot_steps_total{kind="kubernetes.scale",outcome="done"} 1`)
	for _, want := range []string{
		`drbot_slack_envelopes_total{type="slash_commands"} 1`,
		`drbot_slack_envelopes_total{type="interactive"}`,
		`drbot_slack_ack_seconds_bucket{type="slash_commands",le="3"} 1`,
		`drbot_clicks_refused_total{reason="refused"} 1`,
		`drbot_slack_connected 1`,
		`drbot_step_duration_seconds_count{kind="kubernetes.scale"} 1`,
		`drbot_adapter_call_seconds_count{adapter="kubernetes"} 1`,
		`drbot_adapter_errors_total`,
		`drbot_outbox_pending_messages `,
		`drbot_outbox_oldest_pending_age_seconds `,
		`drbot_runs_open 1`,
		`drbot_store_up 1`,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
}

// waitMetric scrapes url until its text contains line.
func (s *served) waitMetric(url, line string) string {
	s.t.Helper()
	for {
		_, body := get(s.t, url)
		if strings.Contains(body, line) {
			return body
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("%s never showed %q:\n%s", url, line, body)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
