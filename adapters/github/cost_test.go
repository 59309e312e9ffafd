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
// were not 304s (the ones GitHub charges to the rate limit). With capture,
// the step also reads the temporary URL from the annotations of the run's
// one job, as the enable-maintenance step does when configured to.
func followTenMinuteRun(tb testing.TB, capture bool) (calls, charged int) {
	tb.Helper()
	srv := githubtest.New(tb, githubtest.Config{Token: testToken})
	wf := githubtest.Workflow{QueuedFor: 30 * time.Second, RunFor: 9*time.Minute + 30*time.Second}
	params := workflowParams()
	if capture {
		wf.Jobs = []githubtest.Job{{Name: "maintenance", Conclusion: "success",
			Annotations: []githubtest.Annotation{{Title: "Temporary URL", Message: testTempURL}}}}
		params = captureParams(testCapture)
	}
	srv.SetWorkflow(testRepo, testWorkflow, wf)
	c, err := github.New(github.Options{
		BaseURL: srv.URL(), Token: testToken, HTTPClient: srv.Client(),
		Logger: zap.NewNop(), Clock: srv.Clock(), PollInterval: github.DefaultPollInterval,
	})
	if err != nil {
		tb.Fatal(err)
	}
	var s step
	start := srv.Clock().Now()
	res, err := c.Actions()["github.workflow"].Run(context.Background(), s.request(params, nil))
	if err != nil {
		tb.Fatal(err)
	}
	if capture && res.Remember != testTempURL {
		tb.Fatalf("Remember = %#v, want %s", res.Remember, testTempURL)
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
	tests := []struct {
		name                 string
		capture              bool
		maxCalls, maxCharged int
	}{
		// 1 GET /user (drbot's actor, once per client), 1 listing of the
		// runs that exist before the dispatch (never to be taken for this
		// step's), 1 dispatch, ~61 polls at 10 s (3 answered 200: queued,
		// in progress, completed) and 1 jobs listing.
		{name: "follow", maxCalls: 67, maxCharged: 7},
		// The same and 1 annotation listing for the run's one job: charged.
		{name: "follow and read the temporary URL", capture: true, maxCalls: 68, maxCharged: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, charged := followTenMinuteRun(t, tt.capture)
			t.Logf("a 10-minute run cost %d API calls, %d of them not 304", calls, charged)
			if calls > tt.maxCalls {
				t.Errorf("%d calls, want at most %d", calls, tt.maxCalls)
			}
			if charged > tt.maxCharged {
				t.Errorf("%d charged calls, want at most %d", charged, tt.maxCharged)
			}
		})
	}
}

func BenchmarkFollowTenMinuteRun(b *testing.B) {
	var calls, charged int
	for b.Loop() {
		calls, charged = followTenMinuteRun(b, false)
	}
	b.ReportMetric(float64(calls), "calls/run")
	b.ReportMetric(float64(charged), "non304/run")
}
