package github_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

// backupWorkflow is the workflow both backup steps of scenario 2 dispatch.
const backupWorkflow = "database-backup.yml"

// backupParams are the parameters of a step that dispatches backupWorkflow,
// its inputs naming the step so that every run tells who dispatched it.
func backupParams(stepID string) runbook.Params {
	return runbook.Params{
		"repo": testRepo, "ref": "main", "workflow": backupWorkflow,
		"inputs": map[string]any{"environment": "staging", "step": stepID},
	}
}

// runBackup runs the workflow action as s with backupParams.
func runBackup(ctx context.Context, t *testing.T, c *github.Client, s *step, checkpoint map[string]string) (runbook.Result, error) {
	t.Helper()
	_, stepID := s.ids()
	return action(t, c, runbook.KindWorkflow).Run(ctx, s.request(backupParams(stepID), checkpoint))
}

// runOf returns the run id a step followed, from its checkpoint.
func runOf(t *testing.T, s *step) int64 {
	t.Helper()
	id, err := strconv.ParseInt(s.checkpoint()["run_id"], 10, 64)
	if err != nil {
		t.Fatalf("step %s saved no run id: %v", s.stepID, s.checkpoint())
	}
	return id
}

// dispatchesBy returns the runs the server started for a step's dispatches.
func dispatchesBy(srv *githubtest.Server, stepID string) []int64 {
	var out []int64
	for _, d := range srv.Dispatches() {
		if d.Inputs["step"] == stepID {
			out = append(out, d.RunID)
		}
	}
	return out
}

func hasPrefix(texts []string, prefix string) bool {
	return slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// TestIssue8ARefusedDispatchNeverBorrowsAnotherStepsRun replays issue 8:
// backup-flawed dispatched database-backup.yml (run 30000003); 3.4 s later
// backup-ptr's dispatch of the same file got a 502, and drbot adopted
// 30000003. Each case leaves backup-ptr one defence only (the others are
// defeated), so that each is shown to hold on its own.
func TestIssue8ARefusedDispatchNeverBorrowsAnotherStepsRun(t *testing.T) {
	tests := []struct {
		name string
		// later is how long after backup-flawed's dispatch backup-ptr's is.
		later time.Duration
		// flawedClaims: backup-flawed keeps its claim in the shared store.
		flawedClaims bool
		// listDelay hides a new run from this many listings.
		listDelay int
		// skew is how far GitHub's clock is ahead of drbot's.
		skew time.Duration
	}{
		{name: "as in the issue: every defence", later: 3400 * time.Millisecond, flawedClaims: true},
		{name: "only the listing before the dispatch (same second, unclaimed)", later: 300 * time.Millisecond},
		{name: "only created_from (listed late, unclaimed)", later: 3400 * time.Millisecond, listDelay: 1},
		{name: "only the claim (same second, listed late)", later: 300 * time.Millisecond, flawedClaims: true, listDelay: 1},
		{name: "created_from by GitHub's clock, 10s ahead of drbot's", later: 3400 * time.Millisecond, listDelay: 1, skew: 10 * time.Second},
		{name: "created_from by GitHub's clock, 10s behind drbot's", later: 3400 * time.Millisecond, listDelay: 1, skew: -10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetSkew(tt.skew)
			srv.SetNextRunID(30000003)
			srv.SetWorkflow(testRepo, backupWorkflow, githubtest.Workflow{ListDelay: tt.listDelay})
			c := newClient(t, srv)
			claims := newClaims(t)

			// backup-flawed dispatches and is still following its run.
			flawed := &step{runID: "r1", stepID: "backup-flawed"}
			if tt.flawedClaims {
				flawed.claims = claims
			}
			ctx, cancel := context.WithCancel(context.Background())
			flawed.onProgress = func(string) { cancel() }
			if _, err := runBackup(ctx, t, c, flawed, nil); !errors.Is(err, context.Canceled) {
				t.Fatalf("backup-flawed: %v, want it paused while following", err)
			}
			if got := runOf(t, flawed); got != 30000003 {
				t.Fatalf("backup-flawed follows %d, want 30000003", got)
			}

			srv.Clock().Advance(tt.later)
			srv.Inject(githubtest.ServerError("POST", "/dispatches"))
			ptr := &step{runID: "r1", stepID: "backup-ptr", claims: claims}
			res, err := runBackup(context.Background(), t, c, ptr, nil)
			if err != nil {
				t.Fatalf("backup-ptr: %v", err)
			}
			own := dispatchesBy(srv, "backup-ptr")
			if got := runOf(t, ptr); got == 30000003 || len(own) != 1 || got != own[0] {
				t.Fatalf("backup-ptr followed run %d, want its own dispatch's run %v, never backup-flawed's 30000003", got, own)
			}
			if n := srv.Count("POST", "/dispatches"); n != 3 {
				t.Errorf("%d dispatch requests, want 3: backup-flawed's, backup-ptr's refused one and its one retry", n)
			}
			if !hasPrefix(ptr.texts(), "retry: ") {
				t.Errorf("backup-ptr's timeline %q shows no retry", ptr.texts())
			}
			if strings.Contains(res.Summary, "30000003") {
				t.Errorf("summary %q names backup-flawed's run", res.Summary)
			}

			// backup-flawed re-attaches to its own run and finishes.
			again := &step{runID: "r1", stepID: "backup-flawed", claims: flawed.claims}
			if _, err := runBackup(context.Background(), t, c, again, flawed.checkpoint()); err != nil {
				t.Fatalf("backup-flawed re-attach: %v", err)
			}
		})
	}
}

func TestWorkflowTwoCandidatesAreAPersonsChoice(t *testing.T) {
	srv := newFake(t)
	c := newClient(t, srv)
	claims := newClaims(t)
	// This step's dispatch starts a run, but the answer is lost; another
	// run of drbot's appears in the same window, claimed by nobody.
	srv.Inject(githubtest.LostAnswer("POST", "/dispatches"))
	var s step
	s.claims = claims
	s.onSave = func(cp map[string]string) {
		if cp["dispatched_at"] != "" && cp["run_id"] == "" && srv.Count("POST", "") == 0 {
			srv.AddRun(testRepo, backupWorkflow, githubtest.RunSpec{Ref: "main", Actor: "drbot", Created: srv.Clock().Now().Add(time.Second)})
		}
	}
	_, err := runBackup(context.Background(), t, c, &s, nil)
	if err == nil {
		t.Fatal("the step adopted one of two candidate runs")
	}
	for _, want := range []string{"2 runs could be it", srv.WebURL() + testRepo + "/actions/runs/1001", srv.WebURL() + testRepo + "/actions/runs/1002", "a person must decide"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if runbook.IsRetryable(err) {
		t.Error("an ambiguous run was marked retryable: the engine would dispatch again")
	}
	if n := srv.Count("POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatch requests, want 1: no re-dispatch when runs did appear", n)
	}
	if got := s.claimed(); len(got) != 0 {
		t.Errorf("claimed %q, want nothing", got)
	}
	if len(s.progress) == 0 || len(s.progress[len(s.progress)-1].links) != 2 {
		t.Errorf("progress %+v, want the last one to link both runs", s.progress)
	}
}

func TestWorkflowRefusedDispatchIsRetriedOnce(t *testing.T) {
	const search = 20 * time.Second
	tests := []struct {
		name    string
		faults  []githubtest.Fault
		wantErr string
		posts   int
	}{
		{name: "refused once: dispatched again, one run", posts: 2,
			faults: []githubtest.Fault{githubtest.ServerError("POST", "/dispatches")}},
		{name: "refused twice: the step fails, never a third dispatch", posts: 2, wantErr: "none found",
			faults: []githubtest.Fault{{Method: "POST", Path: "/dispatches", Status: 502, Times: 2, Body: `{"message":"Server Error"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			for _, f := range tt.faults {
				srv.Inject(f)
			}
			var s step
			c := newClient(t, srv, func(o *github.Options) { o.DispatchSearch = search; o.FindTimeout = time.Minute })
			_, err := runBackup(context.Background(), t, c, &s, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := srv.Count("POST", "/dispatches"); n != tt.posts {
				t.Errorf("%d dispatch requests, want %d", n, tt.posts)
			}
			if !hasPrefix(s.texts(), "retry: no run of "+backupWorkflow+" appeared within 20s") {
				t.Errorf("progress %q shows no retry", s.texts())
			}
			var posts []time.Time
			for _, r := range srv.Requests() {
				if r.Method == "POST" {
					posts = append(posts, r.At)
				}
			}
			if wait := posts[1].Sub(posts[0]); wait < search || wait > search+time.Second {
				t.Errorf("dispatched again %s after the refusal, want the %s search window", wait, search)
			}
			if tt.wantErr == "" && len(srv.Dispatches()) == 1 && runOf(t, &s) != srv.Dispatches()[0].RunID {
				t.Errorf("followed %d, want the re-dispatch's run %d", runOf(t, &s), srv.Dispatches()[0].RunID)
			}
		})
	}
}

func TestWorkflowLostAnswerEndsWithOneRun(t *testing.T) {
	tests := []struct {
		name      string
		listDelay int  // listings that leave a new run out
		retried   bool // the run showed up too late: dispatched again
	}{
		{name: "listed at once"},
		{name: "listed after a few seconds", listDelay: 4},
		// 11 listings in the 20 s window (every 2 s); the 12th, when the step
		// ends, shows it.
		{name: "listed after the search window", listDelay: 11, retried: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetWorkflow(testRepo, backupWorkflow, githubtest.Workflow{ListDelay: tt.listDelay, QueuedFor: time.Minute, RunFor: time.Minute})
			srv.Inject(githubtest.LostAnswer("POST", "/dispatches"))
			var s step
			res, err := runBackup(context.Background(), t, newClient(t, srv), &s, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := srv.Dispatches()
			if !tt.retried {
				if len(d) != 1 || runOf(t, &s) != d[0].RunID {
					t.Fatalf("dispatches %+v, followed %d: want one run, followed", d, runOf(t, &s))
				}
				if hasPrefix(s.texts(), "retry: ") {
					t.Errorf("progress %q: dispatched again though the run appeared", s.texts())
				}
				return
			}
			// Both dispatches started a run: one is followed, the other
			// named on the timeline and in the summary.
			if len(d) != 2 || runOf(t, &s) != d[1].RunID {
				t.Fatalf("dispatches %+v, followed %d: want the re-dispatch's run followed", d, runOf(t, &s))
			}
			if got := s.claimed(); len(got) != 1 {
				t.Errorf("claimed %q, want one run", got)
			}
			extra := fmt.Sprintf("run #%d", 1)
			if !hasPrefix(s.texts(), "warning: both dispatches of "+backupWorkflow+" started a run") || !strings.Contains(res.Summary, extra+" also started and was not followed") {
				t.Errorf("progress %q, summary %q: want the first dispatch's run reported", s.texts(), res.Summary)
			}
		})
	}
}
