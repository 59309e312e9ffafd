package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

func TestRateLimitWait(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	answer := func(status int, header ...string) *http.Response {
		h := http.Header{}
		for i := 0; i < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	reset := strconv.FormatInt(now.Add(2*time.Minute).Unix(), 10)
	tests := []struct {
		name string
		err  error
		want time.Duration // 0: not a rate limit
	}{
		{name: "primary limit until reset",
			err:  &gh.RateLimitError{Response: answer(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset)},
			want: 2*time.Minute + time.Second},
		{name: "primary limit known before sending",
			err:  &gh.RateLimitError{Response: answer(403), Rate: gh.Rate{Reset: gh.Timestamp{Time: now.Add(time.Minute)}}},
			want: time.Minute + time.Second},
		{name: "secondary limit with Retry-After",
			err:  &gh.AbuseRateLimitError{Response: answer(403, "Retry-After", "30")},
			want: 30 * time.Second},
		{name: "secondary limit without a time", err: &gh.AbuseRateLimitError{Response: answer(403)}, want: time.Minute},
		{name: "429 with Retry-After", err: &gh.ErrorResponse{Response: answer(429, "Retry-After", "5")}, want: 5 * time.Second},
		{name: "429 without headers", err: &gh.ErrorResponse{Response: answer(429)}, want: time.Minute},
		{name: "wrapped", err: fmt.Errorf("poll: %w", &gh.ErrorResponse{Response: answer(429, "Retry-After", "5")}), want: 5 * time.Second},
		{name: "403 for lack of permission", err: &gh.ErrorResponse{Response: answer(403, "X-RateLimit-Remaining", "4999")}},
		{name: "500", err: &gh.ErrorResponse{Response: answer(500)}},
		{name: "other error", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rateLimitWait(tt.err, now)
			if ok != (tt.want != 0) || got != tt.want {
				t.Errorf("rateLimitWait = %s, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

// sleeps is a Clock that records the waits asked of it and returns at once.
type sleeps struct {
	mu  sync.Mutex
	got []time.Duration
}

func (s *sleeps) Now() time.Time { return time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC) }

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, d)
	return ctx.Err()
}

func testClient(clock Clock) *Client { return &Client{clock: clock, log: zap.NewNop()} }

func TestCallRetriesWithJitteredBackoff(t *testing.T) {
	bad := &gh.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}}
	limited := &gh.ErrorResponse{Response: &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"20"}}}}
	tests := []struct {
		name      string
		answers   []error // in turn; nil is success
		attempts  int
		retryable bool
		wantErr   bool
		// bounds of each wait: [lo, hi)
		lo, hi []time.Duration
	}{
		{name: "5xx until the attempts are spent", answers: []error{bad, bad, bad, bad}, attempts: readAttempts, wantErr: true, retryable: true,
			lo: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second},
			hi: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{name: "5xx then success", answers: []error{bad, nil}, attempts: readAttempts,
			lo: []time.Duration{500 * time.Millisecond}, hi: []time.Duration{time.Second}},
		{name: "a write is not sent twice", answers: []error{bad}, attempts: writeAttempts, wantErr: true, retryable: true},
		{name: "a rate limit is waited out, never less than asked", answers: []error{limited, nil}, attempts: writeAttempts,
			lo: []time.Duration{20 * time.Second}, hi: []time.Duration{22 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstWaits := map[time.Duration]bool{}
			for range 20 { // the same failures many times: the waits must differ
				clock := &sleeps{}
				n := 0
				err := testClient(clock).call(context.Background(), tt.attempts, func(context.Context) error {
					n++
					return tt.answers[n-1]
				})
				if (err != nil) != tt.wantErr || runbook.IsRetryable(err) != tt.retryable {
					t.Fatalf("err = %v (retryable %v), want error %v retryable %v", err, runbook.IsRetryable(err), tt.wantErr, tt.retryable)
				}
				if n != len(tt.answers) {
					t.Fatalf("%d attempts, want %d", n, len(tt.answers))
				}
				if len(clock.got) != len(tt.lo) {
					t.Fatalf("waits %v, want %d", clock.got, len(tt.lo))
				}
				for i, d := range clock.got {
					if d < tt.lo[i] || d >= tt.hi[i] {
						t.Errorf("wait %d = %s, want in [%s, %s)", i, d, tt.lo[i], tt.hi[i])
					}
				}
				if len(clock.got) > 0 {
					firstWaits[clock.got[0]] = true
				}
			}
			if len(tt.lo) > 0 && len(firstWaits) < 2 {
				t.Errorf("20 retries all waited %v: no jitter", firstWaits)
			}
		})
	}
}

// TestCallBoundsEachAttempt checks that a request that hangs is given up
// after attemptTimeout and retried, not left to the step's timeout.
func TestCallBoundsEachAttempt(t *testing.T) {
	defer func(d time.Duration) { attemptTimeout = d }(attemptTimeout)
	attemptTimeout = 50 * time.Millisecond
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock := &sleeps{}
	n := 0
	start := time.Now()
	err := testClient(clock).call(ctx, readAttempts, func(ctx context.Context) error {
		n++
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if n != readAttempts || !runbook.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%d attempts, err %v (retryable %v); want %d attempts each past its deadline, retryable", n, err, runbook.IsRetryable(err), readAttempts)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hanging requests took %s", took)
	}
	if ctx.Err() != nil {
		t.Error("the caller's context ended: the attempts were not bounded")
	}
}
