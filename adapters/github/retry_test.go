package github

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
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
