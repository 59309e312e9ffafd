package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// The temporary URL of a maintenance run.
//
// While the maintenance page is on, the application is served at a temporary
// URL. The workflow that turns the page on reports that URL with a workflow
// command in one of its job's steps:
//
//	echo "::notice title=Temporary URL::https://myapp-temp.test.teacherservices.cloud"
//
// GitHub keeps it as an annotation of the job's check run (level notice,
// title "Temporary URL", the URL as message). With capture_url set, a step
// reads the annotations of the run's jobs once the run has succeeded
// (GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations, the check
// run being the one the job's check_run_url names) and keeps the first match
// of the regexp. Those calls are charged to the rate limit, so they are only
// made when capture_url is set: one per job that ran, and per further page.

// annotationsPerPage is the most the annotations endpoint returns at once.
const annotationsPerPage = 100

// captureURL reads the temporary URL from the annotations of the run's jobs
// and records it in res: Remember holds the URL, a "temporary URL" link and
// the summary show it. When no annotation matches, or the annotations cannot
// be read, the step still succeeds — the workflow did its work — with
// Remember "" and a summary that says so; a runbook then uses the configured
// URL. Only the end of ctx is returned, so that the engine can resume.
func (a *WorkflowAction) captureURL(ctx context.Context, w workflowCall, jobs []*gh.WorkflowJob, res *runbook.Result, log *zap.Logger) error {
	res.Remember = ""
	u, err := a.findURL(ctx, w, jobs, log)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("read the temporary URL of %s: %w", w, err)
	case err != nil:
		log.Warn("temporary url not read", zap.Error(err))
		res.Summary += "; the temporary URL could not be read from its annotations: " + err.Error()
	case u == "":
		log.Info("no temporary url in the run's annotations", zap.String("capture_url", w.capture.String()))
		res.Summary += fmt.Sprintf("; no temporary URL found in its annotations (none matched %s)", w.capture)
	default:
		log.Info("temporary url read", zap.String("temp_url", u))
		res.Remember = u
		res.Links = append(res.Links, runbook.Link{Label: "temporary URL", URL: u})
		res.Summary += "; temporary URL " + u + " (from its annotations)"
	}
	return nil
}

// findURL returns the first match of w.capture in the annotations of the
// jobs that ran, in the listing's order, or "".
func (a *WorkflowAction) findURL(ctx context.Context, w workflowCall, jobs []*gh.WorkflowJob, log *zap.Logger) (string, error) {
	for _, j := range jobs {
		if j.GetConclusion() == "skipped" {
			continue // it reported nothing
		}
		id, ok := checkRunID(j)
		if !ok {
			log.Warn("job names no check run; its annotations are not read", zap.String("job", j.GetName()), zap.String("check_run_url", j.GetCheckRunURL()))
			continue
		}
		u, err := a.matchAnnotations(ctx, w, j.GetName(), id)
		if err != nil || u != "" {
			return u, err
		}
	}
	return "", nil
}

// matchAnnotations lists one check run's annotations, page by page, until
// one matches.
func (a *WorkflowAction) matchAnnotations(ctx context.Context, w workflowCall, job string, id int64) (string, error) {
	opts := &gh.ListOptions{PerPage: annotationsPerPage}
	for {
		var (
			annotations []*gh.CheckRunAnnotation
			resp        *gh.Response
		)
		err := a.c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
			annotations, resp, err = a.c.gh.Checks.ListCheckRunAnnotations(ctx, w.owner, w.repo, id, opts)
			return err
		})
		if err != nil {
			return "", annotationsError(job, id, err)
		}
		for _, an := range annotations {
			if u := matchAnnotation(w.capture, an); u != "" {
				return u, nil
			}
		}
		if resp.NextPage == 0 {
			return "", nil
		}
		opts.Page = resp.NextPage
	}
}

// matchAnnotation returns the first match of re in a notice or warning
// annotation's message, then its title, that is an http(s) URL (a link must
// open); failure annotations are not where a workflow reports a result.
func matchAnnotation(re *regexp.Regexp, an *gh.CheckRunAnnotation) string {
	switch an.GetAnnotationLevel() {
	case "notice", "warning":
	default:
		return ""
	}
	for _, text := range []string{an.GetMessage(), an.GetTitle()} {
		for _, m := range re.FindAllString(text, -1) {
			if isWebURL(m) {
				return m
			}
		}
	}
	return ""
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// checkRunID reads the id of a job's check run from its check_run_url,
// ".../repos/{owner}/{repo}/check-runs/{id}".
func checkRunID(j *gh.WorkflowJob) (int64, bool) {
	u, err := url.Parse(j.GetCheckRunURL())
	if err != nil {
		return 0, false
	}
	dir, last := path.Split(strings.TrimSuffix(u.Path, "/"))
	if !strings.HasSuffix(dir, "/check-runs/") {
		return 0, false
	}
	id, err := strconv.ParseInt(last, 10, 64)
	return id, err == nil && id > 0
}

func annotationsError(job string, id int64, err error) error {
	switch statusOf(err) {
	case http.StatusForbidden, http.StatusNotFound:
		return fmt.Errorf("list annotations of job %q (check run %d): needs read access to checks (a GitHub App: Checks: read): %w", job, id, err)
	}
	return fmt.Errorf("list annotations of job %q (check run %d): %w", job, id, err)
}
