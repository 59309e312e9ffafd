package github_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

// faultTally sums what the random-fault runs did, across seeds.
type faultTally struct {
	faults      map[string]int
	dispatches  map[string]int // dispatch requests by the fault that answered ("" none)
	duplicates  int            // steps whose dispatches started more than one run
	borrowed    int            // steps that followed a run another step dispatched
	failed      int            // steps that ended failed (with a reason)
	longestWait time.Duration  // from a faulted dispatch to following a run
}

// TestWorkflowUnderRandomFaults runs the steps of several runbook runs, all
// dispatching the same workflow file on the same ref one after the other,
// against a GitHub that refuses 20% of requests with a 502 (half of the
// refused dispatches were in fact handled) and rate-limits 5% more. For
// every seed: each step follows a run it dispatched, no step's dispatches
// start two runs, and no log line, error or timeline text shows the token.
func TestWorkflowUnderRandomFaults(t *testing.T) {
	const steps = 8
	total := faultTally{faults: map[string]int{}, dispatches: map[string]int{}}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			tally := runUnderFaults(t, seed, steps)
			for k, n := range tally.faults {
				total.faults[k] += n
			}
			for k, n := range tally.dispatches {
				total.dispatches[k] += n
			}
			total.duplicates += tally.duplicates
			total.borrowed += tally.borrowed
			total.failed += tally.failed
			total.longestWait = max(total.longestWait, tally.longestWait)
		})
	}
	t.Logf("8 seeds x %d steps: faults injected %v, on dispatch requests %v; duplicated side effects %d; steps that followed another's run %d; failed steps %d; longest wait after a faulted dispatch %s",
		steps, total.faults, total.dispatches, total.duplicates, total.borrowed, total.failed, total.longestWait)
	// A lost answer is found within seconds; a refusal costs the search
	// window, then the re-dispatch, plus any rate-limit wait on the way.
	if limit := github.DefaultDispatchSearch + 30*time.Second; total.longestWait > limit {
		t.Errorf("a step waited %s after a faulted dispatch, want at most %s", total.longestWait, limit)
	}
	if total.faults[githubtest.FaultLost] == 0 || total.faults[githubtest.FaultRefused] == 0 || total.faults[githubtest.FaultRateLimited] == 0 {
		t.Errorf("faults %v: every kind should have been injected", total.faults)
	}
}

// runUnderFaults runs n steps under random faults drawn from seed.
func runUnderFaults(t *testing.T, seed uint64, n int) faultTally {
	t.Helper()
	srv := newFake(t)
	srv.SetWorkflow(testRepo, backupWorkflow, githubtest.Workflow{ListDelay: 2})
	srv.SetFaults(githubtest.Faults{Seed: seed, ServerErrors: 0.2, Handled: 0.5, RateLimits: 0.05, RetryAfter: 3 * time.Second})
	core, logs := observer.New(zapcore.DebugLevel)
	c := newClient(t, srv, func(o *github.Options) { o.Logger = zap.New(core); o.FindTimeout = time.Minute })
	claims := newClaims(t)

	var texts []string // errors, timeline texts and checkpoints, for the token check
	tally := faultTally{}
	for i := range n {
		s := &step{runID: fmt.Sprintf("r%d", i/2), stepID: fmt.Sprintf("backup-%d", i), claims: claims}
		before := len(srv.Requests())
		res, err := runLikeTheEngine(t, c, s, &texts)
		texts = append(texts, res.Summary, fmt.Sprint(s.checkpoint()))
		texts = append(texts, s.texts()...)
		own := dispatchesBy(srv, s.stepID)
		if len(own) > 1 {
			tally.duplicates++
			t.Errorf("%s: dispatches started %d runs %v", s.stepID, len(own), own)
		}
		if err != nil {
			texts = append(texts, err.Error())
			tally.failed++
			// Failing is allowed only when nothing ran: a person then
			// decides with the reason in hand.
			if len(own) != 0 || !strings.Contains(err.Error(), "none found") {
				t.Errorf("%s failed with runs %v: %v", s.stepID, own, err)
			}
			continue
		}
		if got := runOf(t, s); len(own) != 1 || got != own[0] {
			tally.borrowed++
			t.Errorf("%s followed run %d, want the run its dispatch started %v", s.stepID, got, own)
		}
		tally.longestWait = max(tally.longestWait, waitAfterFault(srv.Requests()[before:], runOf(t, s)))
		srv.Clock().Advance(3400 * time.Millisecond)
	}
	tally.faults = srv.FaultCounts()
	tally.dispatches = map[string]int{}
	for _, r := range srv.Requests() {
		if r.Method == "POST" {
			tally.dispatches[r.Fault]++
		}
	}

	for _, e := range logs.All() {
		texts = append(texts, e.Message)
		for k, v := range e.ContextMap() {
			texts = append(texts, k+"="+fmt.Sprint(v))
		}
	}
	// The faults' own words must be among what is checked.
	if !slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, "502") }) {
		t.Errorf("no captured log or text mentions a 502: the token check proves nothing")
	}
	for _, text := range texts {
		if strings.Contains(text, testToken) {
			t.Errorf("the token shows in %q", text)
		}
	}
	return tally
}

// runLikeTheEngine runs the step, retrying errors marked retryable with the
// checkpoint saved so far, as the engine does.
// The retried errors are appended to errs.
func runLikeTheEngine(t *testing.T, c *github.Client, s *step, errs *[]string) (runbook.Result, error) {
	t.Helper()
	var cp map[string]string
	for attempt := 1; ; attempt++ {
		res, err := runBackup(context.Background(), t, c, s, cp)
		if err == nil || !runbook.IsRetryable(err) || attempt == 3 {
			return res, err
		}
		*errs = append(*errs, err.Error())
		cp = s.checkpoint()
	}
}

// waitAfterFault is how long after a step's first faulted dispatch its run
// was first read (that is, followed); zero if no dispatch was faulted. reqs
// are the step's requests.
func waitAfterFault(reqs []githubtest.Request, runID int64) time.Duration {
	var faulted time.Time
	runPath := fmt.Sprintf("/actions/runs/%d", runID)
	for _, r := range reqs {
		switch {
		case r.Method == "POST" && r.Status >= 500 && faulted.IsZero():
			faulted = r.At
		case r.Method == "GET" && strings.HasSuffix(r.Path, runPath):
			if faulted.IsZero() {
				return 0
			}
			return r.At.Sub(faulted)
		}
	}
	return 0
}
