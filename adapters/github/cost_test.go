package github_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
)

// followTenMinuteRun dispatches a workflow whose run is queued for 30 s and
// runs for 9 m 30 s of simulated time, follows it at the default poll
// interval, and returns how many API calls that cost and how many of them
// were not 304s (the ones GitHub charges to the rate limit).
func followTenMinuteRun(tb testing.TB) (calls, charged int) {
	tb.Helper()
	srv := githubtest.New(tb, githubtest.Config{Token: testToken})
	srv.SetWorkflow(testRepo, testWorkflow, githubtest.Workflow{QueuedFor: 30 * time.Second, RunFor: 9*time.Minute + 30*time.Second})
	c, err := github.New(github.Options{
		BaseURL: srv.URL(), Token: testToken, HTTPClient: srv.Client(),
		Logger: zap.NewNop(), Clock: srv.Clock(), PollInterval: github.DefaultPollInterval,
	})
	if err != nil {
		tb.Fatal(err)
	}
	var s step
	start := srv.Clock().Now()
	if _, err := c.Actions()["github.workflow"].Run(context.Background(), s.request(workflowParams(), nil)); err != nil {
		tb.Fatal(err)
	}
	if d := srv.Clock().Now().Sub(start); d < 10*time.Minute || d > 11*time.Minute {
		tb.Fatalf("followed for %s of simulated time, want about 10m", d)
	}
	for _, r := range srv.Requests() {
		calls++
		if r.Status != http.StatusNotModified {
			charged++
		}
	}
	return calls, charged
}

func TestFollowTenMinuteRunCost(t *testing.T) {
	calls, charged := followTenMinuteRun(t)
	t.Logf("a 10-minute run cost %d API calls, %d of them not 304", calls, charged)
	// 1 dispatch, ~61 polls at 10 s (3 answered 200: queued, in progress,
	// completed) and 1 jobs listing.
	if calls > 65 {
		t.Errorf("%d calls, want at most 65", calls)
	}
	if charged > 5 {
		t.Errorf("%d charged calls, want at most 5", charged)
	}
}

func BenchmarkFollowTenMinuteRun(b *testing.B) {
	var calls, charged int
	for b.Loop() {
		calls, charged = followTenMinuteRun(b)
	}
	b.ReportMetric(float64(calls), "calls/run")
	b.ReportMetric(float64(charged), "non304/run")
}
