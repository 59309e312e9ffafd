package github

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// follow polls the run until it completes, reporting each status change, and
// turns its conclusion into the step's result. Once a run exists, transient
// failures are retried until ctx ends: an error the engine would retry could
// dispatch a second run.
func (a *WorkflowAction) follow(ctx context.Context, req runbook.Request, w workflowCall, id int64, log *zap.Logger) (runbook.Result, error) {
	p := &runPoller{c: a.c, owner: w.owner, repo: w.repo, id: id}
	last := ""
	for {
		run, wait, err := p.poll(ctx)
		if err != nil {
			return runbook.Result{}, fmt.Errorf("follow workflow run %d of %s: %w", id, w, err)
		}
		status := run.GetStatus()
		if status != last {
			last = status
			log.Info("workflow run status", zap.String("status", status), zap.Int("run_number", run.GetRunNumber()))
			if status != "completed" {
				progress(ctx, req, describeStatus(status), runLink(run))
			}
		}
		if status == "completed" {
			return a.conclude(ctx, w, run, log)
		}
		if err := a.c.clock.Sleep(ctx, max(a.c.poll, wait)); err != nil {
			return runbook.Result{}, fmt.Errorf("follow workflow run %d of %s: %w", id, w, err)
		}
	}
}

// conclude fails the step unless the run succeeded and some job really ran.
func (a *WorkflowAction) conclude(ctx context.Context, w workflowCall, run *gh.WorkflowRun, log *zap.Logger) (runbook.Result, error) {
	link := runLink(run)
	name := fmt.Sprintf("workflow run #%d of %s", run.GetRunNumber(), w)
	conclusion := run.GetConclusion()
	log.Info("workflow run completed", zap.String("conclusion", conclusion))
	switch conclusion {
	case "success":
		jobs, err := a.jobs(ctx, w, run.GetID())
		if err != nil {
			return runbook.Result{}, err
		}
		if !someJobRan(jobs) {
			return runbook.Result{}, fmt.Errorf("%s: all jobs were skipped (e.g. an unconfirmed production run): %s", name, link.URL)
		}
		summary := fmt.Sprintf("workflow %s run #%d succeeded", w.file, run.GetRunNumber())
		if d := runDuration(run); d > 0 {
			summary += " in " + d.String()
		}
		res := runbook.Result{Summary: summary, Links: []runbook.Link{link}}
		if w.capture != nil {
			if err := a.captureURL(ctx, w, jobs, &res, log); err != nil {
				return runbook.Result{}, err
			}
		}
		return res, nil
	case "skipped":
		return runbook.Result{}, fmt.Errorf("%s: all jobs were skipped (e.g. an unconfirmed production run): %s", name, link.URL)
	}
	return runbook.Result{}, fmt.Errorf("%s concluded %q: %s", name, conclusion, link.URL)
}

// jobs lists the jobs of the run's latest attempt, every page: the
// all-skipped check and the temporary URL's annotations share one listing.
func (a *WorkflowAction) jobs(ctx context.Context, w workflowCall, id int64) ([]*gh.WorkflowJob, error) {
	opts := &gh.ListWorkflowJobsOptions{Filter: "latest", ListOptions: gh.ListOptions{PerPage: 100}}
	var all []*gh.WorkflowJob
	for {
		var (
			jobs *gh.Jobs
			resp *gh.Response
		)
		err := a.c.call(ctx, untilDone, func(ctx context.Context) (err error) {
			jobs, resp, err = a.c.gh.Actions.ListWorkflowJobs(ctx, w.owner, w.repo, id, opts)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list jobs of workflow run %d of %s: %w", id, w, err)
		}
		all = append(all, jobs.Jobs...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opts.Page = resp.NextPage
	}
}

// someJobRan reports whether any job did not end skipped. A workflow whose
// jobs are all guarded by a condition (such as a confirmation input)
// succeeds without doing anything.
func someJobRan(jobs []*gh.WorkflowJob) bool {
	for _, j := range jobs {
		if j.GetConclusion() != "skipped" {
			return true
		}
	}
	return false
}

// runPoller reads one run with conditional requests: it keeps the ETag of
// the last answer and sends If-None-Match; a 304 — not charged to the rate
// limit ("Best practices for using the REST API") — means the last answer
// still holds.
type runPoller struct {
	c           *Client
	owner, repo string
	id          int64
	etag        string
	last        *gh.WorkflowRun
}

// poll returns the run and the poll interval the server asks for, if any.
func (p *runPoller) poll(ctx context.Context) (*gh.WorkflowRun, time.Duration, error) {
	var wait time.Duration
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d", p.owner, p.repo, p.id)
	err := p.c.call(ctx, untilDone, func(ctx context.Context) error {
		req, err := p.c.gh.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if p.last != nil && p.etag != "" {
			req.Header.Set("If-None-Match", p.etag)
		}
		run := new(gh.WorkflowRun)
		resp, err := p.c.gh.Do(ctx, req, run)
		if resp != nil && resp.Response != nil {
			wait = pollInterval(resp.Response)
		}
		if p.last != nil && statusOf(err) == http.StatusNotModified {
			return nil
		}
		if err != nil {
			return err
		}
		p.last, p.etag = run, resp.Header.Get("ETag")
		return nil
	})
	if statusOf(err) == http.StatusNotFound {
		return nil, 0, fmt.Errorf("run not found (deleted, or the token lost Actions: read): %w", err)
	}
	if err != nil {
		return nil, 0, err
	}
	return p.last, wait, nil
}

// pollInterval reads X-Poll-Interval, GitHub's request to poll no more often
// than every so many seconds.
func pollInterval(resp *http.Response) time.Duration {
	n, err := strconv.Atoi(resp.Header.Get("X-Poll-Interval"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// describeStatus words a run status for the timeline.
func describeStatus(status string) string {
	if status == "waiting" {
		// A job's environment requires a reviewer (e.g. production).
		return "waiting for a deployment review on GitHub"
	}
	return strings.ReplaceAll(status, "_", " ")
}

func runLink(run *gh.WorkflowRun) runbook.Link {
	return runbook.Link{Label: fmt.Sprintf("workflow run #%d", run.GetRunNumber()), URL: run.GetHTMLURL()}
}

// runDuration is how long the run took, rounded to seconds.
func runDuration(run *gh.WorkflowRun) time.Duration {
	start := run.GetRunStartedAt().Time
	if start.IsZero() {
		start = run.GetCreatedAt().Time
	}
	end := run.GetUpdatedAt().Time
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return end.Sub(start).Round(time.Second)
}
