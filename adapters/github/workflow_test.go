package github_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

const testWorkflow = "backup-db.yml"

func workflowParams() runbook.Params {
	return runbook.Params{
		"repo": testRepo, "ref": "main", "workflow": testWorkflow,
		"inputs": map[string]any{"environment": "staging", "backup-file": "itt-staging-2026-11-26.sql.gz"},
	}
}

// runWorkflow runs the workflow action once.
func runWorkflow(t *testing.T, c *github.Client, s *step, checkpoint map[string]string) (runbook.Result, error) {
	t.Helper()
	return action(t, c, "github.workflow").Run(context.Background(), s.request(workflowParams(), checkpoint))
}

func TestWorkflowDispatchedAndFollowedToSuccess(t *testing.T) {
	srv := newFake(t)
	var s step
	postsAtFirstSave := -1
	s.onSave = func(map[string]string) {
		if postsAtFirstSave < 0 {
			postsAtFirstSave = srv.Count("POST", "")
		}
	}

	res, err := runWorkflow(t, newClient(t, srv), &s, nil)
	if err != nil {
		t.Fatal(err)
	}

	d := srv.Dispatches()
	if len(d) != 1 {
		t.Fatalf("%d dispatches, want 1", len(d))
	}
	if d[0].Ref != "main" || d[0].Inputs["environment"] != "staging" || d[0].Inputs["backup-file"] != "itt-staging-2026-11-26.sql.gz" || !d[0].ReturnRunDetails {
		t.Errorf("dispatch = %+v", d[0])
	}
	if postsAtFirstSave != 0 {
		t.Errorf("the checkpoint was first saved after %d POSTs; want it saved before the dispatch", postsAtFirstSave)
	}
	if n := srv.Count("GET", "/actions/workflows/"); n != 1 {
		t.Errorf("%d listings; want only the one before the dispatch: its answer named the run", n)
	}
	cp := s.checkpoint()
	if cp["run_id"] != strconv.FormatInt(d[0].RunID, 10) || cp["dispatched_at"] == "" || cp["created_from"] == "" {
		t.Errorf("checkpoint = %v, want the dispatch time, created_from and run id %d", cp, d[0].RunID)
	}
	if got := s.claimed(); !slices.Equal(got, []string{"github-run:dfe-digital/itt-mentor-services:" + strconv.FormatInt(d[0].RunID, 10)}) {
		t.Errorf("claimed %q, want the dispatched run", got)
	}
	if got, want := s.texts(), []string{"queued", "in progress"}; !slices.Equal(got, want) {
		t.Errorf("progress = %q, want %q", got, want)
	}
	wantURL := srv.WebURL() + testRepo + "/actions/runs/" + strconv.FormatInt(d[0].RunID, 10)
	if l := s.progress[0].links; len(l) != 1 || l[0].Label != "workflow run #1" || l[0].URL != wantURL {
		t.Errorf("progress links = %+v, want workflow run #1 at %s", l, wantURL)
	}
	if !strings.Contains(res.Summary, "backup-db.yml run #1 succeeded") {
		t.Errorf("Summary = %q", res.Summary)
	}
	if len(res.Links) != 1 || res.Links[0].URL != wantURL {
		t.Errorf("Links = %+v", res.Links)
	}

	// Polls after the first are conditional.
	var polls []githubtest.Request
	for _, r := range srv.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/actions/runs/"+strconv.FormatInt(d[0].RunID, 10)) {
			polls = append(polls, r)
		}
	}
	for i, p := range polls[1:] {
		if p.Header.Get("If-None-Match") == "" {
			t.Errorf("poll %d has no If-None-Match", i+2)
		}
	}
}

func TestWorkflowWithoutRunDetailsFindsRunByListing(t *testing.T) {
	tests := []struct {
		name  string
		mode  int
		posts int
		// justBefore is how long before the dispatch drbot's previous run
		// of the workflow was created. When the server refuses the field,
		// drbot lists the runs before dispatching again and excludes them;
		// otherwise only the search window (a few seconds) keeps them out.
		justBefore time.Duration
	}{
		{name: "GHES refuses the field with 422", mode: http.StatusUnprocessableEntity, posts: 2, justBefore: time.Second},
		{name: "GHES refuses the field with 400", mode: http.StatusBadRequest, posts: 2, justBefore: time.Second},
		{name: "server ignores the field", mode: http.StatusNoContent, posts: 1, justBefore: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetRunDetails(tt.mode)
			srv.SetWorkflow(testRepo, testWorkflow, githubtest.Workflow{ListDelay: 2})
			clock := srv.Clock()
			// Runs that must not be taken for ours: someone else's, made just
			// now, and drbot's own from a moment ago.
			srv.AddRun(testRepo, testWorkflow, githubtest.RunSpec{Ref: "main", Actor: "ana", Created: clock.Now().Add(time.Second)})
			oldID := srv.AddRun(testRepo, testWorkflow, githubtest.RunSpec{Ref: "main", Actor: "drbot", Created: clock.Now().Add(-tt.justBefore)})

			var s step
			if _, err := runWorkflow(t, newClient(t, srv), &s, nil); err != nil {
				t.Fatal(err)
			}

			d := srv.Dispatches()
			if len(d) != 1 {
				t.Fatalf("%d dispatches accepted, want exactly 1", len(d))
			}
			if n := srv.Count("POST", "/dispatches"); n != tt.posts {
				t.Errorf("%d dispatch requests, want %d", n, tt.posts)
			}
			cp := s.checkpoint()
			if cp["run_id"] != strconv.FormatInt(d[0].RunID, 10) {
				t.Errorf("followed run %s, want the dispatched run %d (not %d)", cp["run_id"], d[0].RunID, oldID)
			}
			if status, _, _ := srv.RunStatus(d[0].RunID); status != "completed" {
				t.Errorf("dispatched run is %s, want it followed to completion", status)
			}
			// The listing before the dispatch takes any time (the known
			// runs); the searches after it, runs created since.
			dispatched := false
			for _, r := range srv.Requests() {
				dispatched = dispatched || r.Method == "POST"
				if r.Method != "GET" || !strings.HasSuffix(r.Path, "/runs") {
					continue
				}
				q, _ := url.ParseQuery(r.Query)
				if q.Get("event") != "workflow_dispatch" || q.Get("branch") != "main" || q.Get("actor") != "drbot" || dispatched != strings.HasPrefix(q.Get("created"), ">=") {
					t.Errorf("listing query %q lacks a filter (after the dispatch: %t)", r.Query, dispatched)
				}
			}
		})
	}
}

func TestWorkflowConclusionsOtherThanSuccessFail(t *testing.T) {
	tests := []struct {
		name string
		wf   githubtest.Workflow
		want string
	}{
		{name: "failure", wf: githubtest.Workflow{Conclusion: "failure"}, want: `concluded "failure"`},
		{name: "cancelled", wf: githubtest.Workflow{Conclusion: "cancelled"}, want: `concluded "cancelled"`},
		{name: "all jobs skipped", want: "all jobs were skipped (e.g. an unconfirmed production run)",
			wf: githubtest.Workflow{Jobs: []githubtest.Job{{Name: "confirm", Conclusion: "skipped"}, {Name: "deploy", Conclusion: "skipped"}}}},
		{name: "run skipped", wf: githubtest.Workflow{Conclusion: "skipped"}, want: "all jobs were skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetWorkflow(testRepo, testWorkflow, tt.wf)
			var s step
			_, err := runWorkflow(t, newClient(t, srv), &s, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), srv.WebURL()+testRepo+"/actions/runs/") {
				t.Errorf("error %q does not link the run", err)
			}
			if runbook.IsRetryable(err) {
				t.Errorf("a concluded run was marked retryable: %v", err)
			}
		})
	}
}

func TestWorkflowSucceedsWhenSomeJobRan(t *testing.T) {
	srv := newFake(t)
	srv.SetWorkflow(testRepo, testWorkflow, githubtest.Workflow{Jobs: []githubtest.Job{{Name: "confirm", Conclusion: "skipped"}, {Name: "backup", Conclusion: "success"}}})
	var s step
	if _, err := runWorkflow(t, newClient(t, srv), &s, nil); err != nil {
		t.Fatal(err)
	}
}

func TestWorkflowWaitsOutRateLimitsAndRetriesServerErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(now time.Time) githubtest.Fault
		minWait  time.Duration
		answered int
	}{
		{name: "primary rate limit while polling", minWait: 90 * time.Second, answered: http.StatusForbidden,
			fault: func(now time.Time) githubtest.Fault {
				return githubtest.RateLimit("GET", "/actions/runs/", now.Add(90*time.Second))
			}},
		{name: "primary rate limit on dispatch", minWait: 90 * time.Second, answered: http.StatusForbidden,
			fault: func(now time.Time) githubtest.Fault {
				return githubtest.RateLimit("POST", "/dispatches", now.Add(90*time.Second))
			}},
		{name: "secondary rate limit", minWait: 45 * time.Second, answered: http.StatusTooManyRequests,
			fault: func(time.Time) githubtest.Fault {
				return githubtest.SecondaryRateLimit("GET", "/actions/runs/", 45*time.Second)
			}},
		{name: "server errors while polling", minWait: time.Second, answered: http.StatusBadGateway,
			fault: func(time.Time) githubtest.Fault {
				f := githubtest.ServerError("GET", "/actions/runs/")
				f.Times = 3
				return f
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.Inject(tt.fault(srv.Clock().Now()))
			var s step
			if _, err := runWorkflow(t, newClient(t, srv), &s, nil); err != nil {
				t.Fatal(err)
			}
			if len(srv.Dispatches()) != 1 {
				t.Errorf("%d dispatches, want 1", len(srv.Dispatches()))
			}
			refused := 0
			for _, r := range srv.Requests() {
				if r.Status == tt.answered {
					refused++
				}
			}
			if refused == 0 {
				t.Fatal("the fault was never hit")
			}
			if !slices.ContainsFunc(srv.Clock().Slept(), func(d time.Duration) bool { return d >= tt.minWait }) {
				t.Errorf("waits %v, want one of at least %s", srv.Clock().Slept(), tt.minWait)
			}
		})
	}
}

func TestWorkflowRespectsXPollInterval(t *testing.T) {
	srv := newFake(t)
	srv.SetPollInterval(30 * time.Second)
	var s step
	c := newClient(t, srv, func(o *github.Options) { o.PollInterval = time.Second })
	if _, err := runWorkflow(t, c, &s, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range srv.Clock().Slept() {
		if d < 30*time.Second {
			t.Errorf("polled after %s, want at least the server's 30s", d)
		}
	}
}

func TestWorkflowReattach(t *testing.T) {
	t.Run("checkpoint with only the dispatch time finds the run", func(t *testing.T) {
		srv := newFake(t)
		c := newClient(t, srv)

		// The first process dispatches and dies before it saves the run id.
		ctx, cancel := context.WithCancel(context.Background())
		var first step
		first.onProgress = func(string) { cancel() }
		_, err := action(t, c, "github.workflow").Run(ctx, first.request(workflowParams(), nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("first process: %v, want it cancelled", err)
		}
		saved := map[string]string{"dispatched_at": first.saves[0]["dispatched_at"]}

		var second step
		if _, err := runWorkflow(t, c, &second, saved); err != nil {
			t.Fatal(err)
		}
		d := srv.Dispatches()
		if len(d) != 1 {
			t.Fatalf("%d dispatches, want 1", len(d))
		}
		if got := second.checkpoint()["run_id"]; got != strconv.FormatInt(d[0].RunID, 10) {
			t.Errorf("re-attached to run %s, want %d", got, d[0].RunID)
		}
	})

	t.Run("checkpoint with the run id follows it", func(t *testing.T) {
		srv := newFake(t)
		id := srv.AddRun(testRepo, testWorkflow, githubtest.RunSpec{Ref: "main", Actor: "drbot"})
		var s step
		if _, err := runWorkflow(t, newClient(t, srv), &s, map[string]string{"run_id": strconv.FormatInt(id, 10), "dispatched_at": srv.Clock().Now().Format(time.RFC3339Nano)}); err != nil {
			t.Fatal(err)
		}
		if n := srv.Count("POST", ""); n != 0 {
			t.Errorf("%d POSTs on re-attach, want none", n)
		}
		if n := srv.Count("GET", "/actions/workflows/"); n != 0 {
			t.Errorf("%d listings, want none", n)
		}
	})

	t.Run("a checkpoint saved before a dispatch that never left: dispatches once", func(t *testing.T) {
		srv := newFake(t)
		var s step
		since := srv.Clock().Now().Format(time.RFC3339Nano)
		if _, err := runWorkflow(t, newClient(t, srv), &s, map[string]string{"dispatched_at": since}); err != nil {
			t.Fatal(err)
		}
		if n := srv.Count("POST", "/dispatches"); n != 1 {
			t.Errorf("%d dispatches, want 1 after the search window found no run", n)
		}
		if !slices.ContainsFunc(s.texts(), func(t string) bool { return strings.HasPrefix(t, "retry: ") }) {
			t.Errorf("progress %q does not report the dispatch as a retry", s.texts())
		}
	})

	t.Run("an accepted dispatch whose run is not found fails without dispatching", func(t *testing.T) {
		srv := newFake(t)
		var s step
		since := srv.Clock().Now().Format(time.RFC3339Nano)
		c := newClient(t, srv, func(o *github.Options) { o.FindTimeout = time.Minute })
		_, err := runWorkflow(t, c, &s, map[string]string{"dispatched_at": since, "accepted": "true"})
		if err == nil || !strings.Contains(err.Error(), "Actions page") {
			t.Fatalf("error = %v, want it to send the reader to the Actions page", err)
		}
		if n := srv.Count("POST", ""); n != 0 {
			t.Errorf("%d POSTs, want none", n)
		}
		if n := srv.Count("GET", "/actions/workflows/"); n < 2 {
			t.Errorf("%d listings, want the search repeated until the timeout", n)
		}
	})
}

func TestWorkflowDispatchRefused(t *testing.T) {
	srv := newFake(t)
	srv.SetFile(testRepo, "main", "README.md", []byte("hi\n"))
	var s step
	p := workflowParams()
	p["ref"] = "no-such-branch"
	_, err := action(t, newClient(t, srv), "github.workflow").Run(context.Background(), s.request(p, nil))
	if err == nil || !strings.Contains(err.Error(), "No ref found") {
		t.Fatalf("error = %v", err)
	}
	if runbook.IsRetryable(err) {
		t.Errorf("a refused dispatch was marked retryable")
	}
}
