package github_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

// testCapture finds temporary URLs as a runbook's capture_url would.
const testCapture = `https://\S+-temp\.\S+`

const testTempURL = "https://itt-mentor-services-temp.test.teacherservices.cloud"

// captureParams are the workflow step's params with capture_url set.
func captureParams(capture any) runbook.Params {
	p := workflowParams()
	p["capture_url"] = capture
	return p
}

// runCapture runs the workflow action once with params p.
func runCapture(t *testing.T, srv *githubtest.Server, p runbook.Params) (runbook.Result, error) {
	t.Helper()
	var s step
	return action(t, newClient(t, srv), "github.workflow").Run(context.Background(), s.request(p, nil))
}

func TestWorkflowCapturesTempURLFromAnnotations(t *testing.T) {
	notice := func(title, message string) githubtest.Annotation {
		return githubtest.Annotation{Level: "notice", Title: title, Message: message}
	}
	tests := []struct {
		name string
		jobs []githubtest.Job
		want string // "" means no URL found
		// reads is how many annotation listings the step makes: one per job
		// that ran, until a match.
		reads int
	}{
		{name: "notice annotation", reads: 1,
			jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success", Annotations: []githubtest.Annotation{
				notice("Maintenance", "Maintenance page enabled on https://itt-mentor-services-staging.test.teacherservices.cloud"),
				notice("Temporary URL", testTempURL),
			}}},
			want: testTempURL},
		{name: "warning in a later job; skipped jobs are not read", reads: 2,
			jobs: []githubtest.Job{
				{Name: "confirm", Conclusion: "skipped"},
				{Name: "build", Conclusion: "success", Annotations: []githubtest.Annotation{notice("", "built in 42s")}},
				{Name: "maintenance", Conclusion: "success", Annotations: []githubtest.Annotation{{Level: "warning", Message: "app moved to " + testTempURL}}},
			},
			want: testTempURL},
		{name: "URL in the title", reads: 1,
			jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success", Annotations: []githubtest.Annotation{notice(testTempURL, "the app is served here")}}},
			want: testTempURL},
		{name: "failure annotations are not read for results", reads: 1,
			jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success", Annotations: []githubtest.Annotation{{Level: "failure", Message: testTempURL}}}}},
		{name: "no annotation matches", reads: 1,
			jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success", Annotations: []githubtest.Annotation{notice("Done", "maintenance page enabled")}}}},
		{name: "no annotations at all", reads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetWorkflow(testRepo, testWorkflow, githubtest.Workflow{Jobs: tt.jobs})

			res, err := runCapture(t, srv, captureParams(testCapture))
			if err != nil {
				t.Fatalf("the step failed: %v; a run that succeeded must succeed, URL or not", err)
			}
			if n := srv.Count("GET", "/annotations"); n != tt.reads {
				t.Errorf("%d annotation listings, want %d", n, tt.reads)
			}
			if res.Remember != tt.want {
				t.Errorf("Remember = %#v, want %q", res.Remember, tt.want)
			}
			var links []string
			for _, l := range res.Links {
				links = append(links, l.Label+" "+l.URL)
			}
			if tt.want != "" {
				if len(res.Links) != 2 || res.Links[1] != (runbook.Link{Label: "temporary URL", URL: tt.want}) {
					t.Errorf("Links = %q, want the run and the temporary URL", links)
				}
				if !strings.Contains(res.Summary, "temporary URL "+tt.want) {
					t.Errorf("Summary = %q, want it to name the URL", res.Summary)
				}
				return
			}
			if len(res.Links) != 1 {
				t.Errorf("Links = %q, want the run only", links)
			}
			if !strings.Contains(res.Summary, "no temporary URL found in its annotations") {
				t.Errorf("Summary = %q, want it to say no URL was found", res.Summary)
			}
		})
	}
}

func TestWorkflowWithoutCaptureReadsNoAnnotations(t *testing.T) {
	annotated := githubtest.Workflow{Jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success",
		Annotations: []githubtest.Annotation{{Title: "Temporary URL", Message: testTempURL}}}}}
	tests := []struct {
		name   string
		params runbook.Params
	}{
		{name: "capture_url not given", params: workflowParams()},
		// How a runbook says "don't" for an environment not configured to
		// capture: templates cannot leave a key out.
		{name: "capture_url empty", params: captureParams("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetWorkflow(testRepo, testWorkflow, annotated)
			res, err := runCapture(t, srv, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if n := srv.Count("", "/check-runs/"); n != 0 {
				t.Errorf("%d check-run requests; annotations cost rate limit and must only be read with capture_url", n)
			}
			if res.Remember != nil || len(res.Links) != 1 || strings.Contains(res.Summary, "temporary URL") {
				t.Errorf("result = %+v, want the plain workflow result", res)
			}
		})
	}
}

func TestWorkflowBadCaptureDispatchesNothing(t *testing.T) {
	tests := []struct {
		name    string
		capture any
		want    string
	}{
		{name: "invalid regexp", capture: `https://(\S+-temp`, want: `parameter "capture_url": "https://(\\S+-temp" is not a regular expression`},
		{name: "not text", capture: []any{"https://"}, want: `parameter "capture_url": want a regular expression`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			var s step
			_, err := action(t, newClient(t, srv), "github.workflow").Run(context.Background(), s.request(captureParams(tt.capture), nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if runbook.IsRetryable(err) {
				t.Errorf("a bad parameter was marked retryable")
			}
			if r := srv.Requests(); len(r) != 0 || len(srv.Dispatches()) != 0 {
				t.Errorf("requests %v before the parameter was checked, want none", r)
			}
			if len(s.saves) != 0 {
				t.Errorf("checkpoint saved %v, want nothing before the parameter was checked", s.saves)
			}
		})
	}
}

func TestWorkflowUnreadableAnnotationsStillSucceed(t *testing.T) {
	// A token without read access to checks: the maintenance page is on all
	// the same, so the step succeeds and says why there is no URL.
	srv := newFake(t)
	srv.SetWorkflow(testRepo, testWorkflow, githubtest.Workflow{Jobs: []githubtest.Job{{Name: "maintenance", Conclusion: "success",
		Annotations: []githubtest.Annotation{{Title: "Temporary URL", Message: testTempURL}}}}})
	srv.Inject(githubtest.Fault{Method: "GET", Path: "/annotations", Status: http.StatusForbidden,
		Body: `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/checks/runs#list-check-run-annotations"}`})

	res, err := runCapture(t, srv, captureParams(testCapture))
	if err != nil {
		t.Fatal(err)
	}
	if res.Remember != "" {
		t.Errorf("Remember = %#v, want \"\" (nothing read)", res.Remember)
	}
	if !strings.Contains(res.Summary, "could not be read") || !strings.Contains(res.Summary, "Checks: read") {
		t.Errorf("Summary = %q, want it to say the annotations could not be read and what permission is needed", res.Summary)
	}
	if len(srv.Dispatches()) != 1 {
		t.Errorf("%d dispatches, want 1", len(srv.Dispatches()))
	}
}
