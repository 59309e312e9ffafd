package httpcheck_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/httpcheck"
	"github.com/drbot-dev/drbot/runbook"
)

// script answers each request with the next status of statuses (the last
// one repeats) and a body; a status of 0 hangs until the client gives up.
func script(t *testing.T, body string, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		status := statuses[min(n, len(statuses))-1]
		if status == 0 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		statuses  []int
		params    runbook.Params
		wantErr   string // "" means success
		retryable bool
		calls     int32
		progress  int
	}{
		{name: "200 as expected", body: "ok", statuses: []int{200}, calls: 1},
		{name: "other expected status", statuses: []int{204}, params: runbook.Params{"expect_status": 204}, calls: 1},
		{name: "body substring found", body: `{"sha":"abc123"}`, statuses: []int{200},
			params: runbook.Params{"path": "/sha", "expect_body": "abc123"}, calls: 1},
		{name: "retries then success", statuses: []int{502, 503, 200}, calls: 3, progress: 2},
		{name: "5xx until retries are spent", statuses: []int{500}, params: runbook.Params{"retries": "2"},
			wantErr: "HTTP 500, want 200 (3 attempts)", retryable: true, calls: 3, progress: 2},
		{name: "unexpected status is not retryable by the engine", statuses: []int{404}, params: runbook.Params{"retries": 1},
			wantErr: "HTTP 404, want 200", calls: 2, progress: 1},
		{name: "body lacks the substring", body: "maintenance", statuses: []int{200},
			params: runbook.Params{"expect_body": "Claim", "retries": 0}, wantErr: `body lacks "Claim"`, calls: 1},
		{name: "timeout", statuses: []int{0}, params: runbook.Params{"timeout": "50ms", "retries": 0},
			wantErr: "no answer within 50ms", retryable: true, calls: 1},
		{name: "bad timeout", statuses: []int{200}, params: runbook.Params{"timeout": "soon"}, wantErr: `parameter "timeout"`},
		{name: "bad retries", statuses: []int{200}, params: runbook.Params{"retries": "many"}, wantErr: `parameter "retries"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := script(t, tt.body, tt.statuses...)
			p := runbook.Params{"url": srv.URL}
			for k, v := range tt.params {
				p[k] = v
			}
			var progress []string
			req := runbook.Request{RunID: "run-1", StepID: "check", Params: p,
				Progress: func(_ context.Context, text string, _ ...runbook.Link) { progress = append(progress, text) }}
			c := &httpcheck.Check{Client: srv.Client(), Backoff: time.Millisecond}

			res, err := c.Run(context.Background(), req)

			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ok, _ := regexp.MatchString(`^HTTP \d{3} in \d+(\.\d+)?[µm]?s from http://`, res.Summary); !ok {
					t.Errorf("Summary = %q, want status and latency", res.Summary)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if runbook.IsRetryable(err) != tt.retryable {
					t.Errorf("retryable = %v, want %v", runbook.IsRetryable(err), tt.retryable)
				}
			}
			if got := calls.Load(); got != tt.calls {
				t.Errorf("%d requests, want %d", got, tt.calls)
			}
			if len(progress) != tt.progress {
				t.Errorf("progress = %q, want %d reports", progress, tt.progress)
			}
		})
	}
}

func TestCheckJoinsPathAndRegisters(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { path.Store(r.URL.Path) }))
	t.Cleanup(srv.Close)
	a, ok := httpcheck.Actions(srv.Client())["http.check"]
	if !ok {
		t.Fatal("http.check is not registered")
	}
	req := runbook.Request{Params: runbook.Params{"url": srv.URL + "/", "path": "/healthcheck"}}
	if _, err := a.Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := path.Load(); got != "/healthcheck" {
		t.Errorf("path = %v, want /healthcheck", got)
	}
}

func TestCheckRejectsNonHTTPURL(t *testing.T) {
	_, err := httpcheck.New(nil).Run(context.Background(), runbook.Request{Params: runbook.Params{"url": "ftp://example.com"}})
	if err == nil || !strings.Contains(err.Error(), "want an http(s) URL") {
		t.Fatalf("error = %v", err)
	}
}
