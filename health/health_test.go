package health

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestReadyz(t *testing.T) {
	ok := Check{Name: "config", Fn: func(context.Context) error { return nil }}
	down := Check{Name: "slack", Fn: func(context.Context) error { return errors.New("socket mode not connected") }}
	hung := Check{Name: "store", Fn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	tests := []struct {
		name     string
		checks   []Check
		want     int
		contains []string
	}{
		{"all pass", []Check{ok}, http.StatusOK, []string{"config: ok"}},
		{"one fails", []Check{ok, down}, http.StatusServiceUnavailable, []string{"config: ok", "slack: socket mode not connected"}},
		{"one hangs", []Check{ok, hung}, http.StatusServiceUnavailable, []string{"store: context deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, body := get(t, Handler(tt.checks, nil), "/readyz")
			if code != tt.want {
				t.Errorf("status %d, want %d:\n%s", code, tt.want, body)
			}
			for _, c := range tt.contains {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %q:\n%s", c, body)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("readyz took %s: a hung check must not hang the probe", d)
			}
		})
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "drbot_up 1\n") })
	h := Handler(nil, metrics)
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, h, "/metrics"); code != http.StatusOK || body != "drbot_up 1\n" {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get(t, Handler(nil, nil), "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without metrics: %d, want 404", code)
	}
}

// TestListen: the port is bound at once (a taken port fails the start),
// and Close stops the server.
func TestListen(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Handler(nil, nil), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := Listen(s.Addr().String(), Handler(nil, nil), zaptest.NewLogger(t)); err == nil {
		t.Error("a second listener on the same port started")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Error("the server answers after Close")
	}
}
