package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Checkpoint keys of the workflow action.
const (
	ckDispatchedAt = "dispatched_at" // RFC 3339, saved before the dispatch
	ckRunID        = "run_id"        // the run the dispatch started, once known
	ckRunURL       = "run_url"       // its web page
	ckExclude      = "exclude_runs"  // comma-separated ids that are not ours
)

// dispatchSkew widens the search for a dispatched run to runs created a
// little before drbot's clock read the dispatch time: GitHub stamps
// created_at with its own clock, to the second. It is kept small so that a
// run drbot dispatched moments before (an earlier attempt) is not taken for
// the new one; a host clock off by more fails safe: the run is not found and
// the step says to check the Actions page.
const dispatchSkew = 5 * time.Second

// WorkflowAction dispatches a workflow by file name and follows the run it
// started to its conclusion (kind github.workflow). Before dispatching it
// saves the dispatch time, and the run id as soon as it is known, so a
// restarted drbot follows the same run instead of dispatching again.
type WorkflowAction struct{ c *Client }

var _ runbook.Action = (*WorkflowAction)(nil)

// workflowCall is one step's workflow: what to dispatch and where.
type workflowCall struct {
	owner, repo string
	file        string // workflow file name, e.g. backup-db.yml
	ref         string
	inputs      map[string]string
	// capture, when set (parameter capture_url), is matched against the
	// annotations of a successful run to read the temporary URL it reports.
	capture *regexp.Regexp
}

// String names the call in errors: "file on owner/repo@ref".
func (w workflowCall) String() string {
	return fmt.Sprintf("%s on %s/%s@%s", w.file, w.owner, w.repo, w.ref)
}

// branch is the ref as GitHub reports it in a run's head_branch.
func (w workflowCall) branch() string { return strings.TrimPrefix(w.ref, "refs/heads/") }

// parseWorkflowCall reads the step through the kind's one contract.
func parseWorkflowCall(p runbook.Params) (workflowCall, error) {
	spec, err := runbook.DecodeWorkflow(p)
	if err != nil {
		return workflowCall{}, err
	}
	return workflowCall{owner: spec.Repo.Owner, repo: spec.Repo.Name, file: spec.File, ref: spec.Ref, inputs: spec.Inputs, capture: spec.Capture}, nil
}

// Run dispatches the workflow, or re-attaches to the run an earlier process
// dispatched, and follows the run until it completes. With capture_url set it
// then reads the temporary URL from the run's annotations (see capture.go).
// Parameters are checked first: a bad one fails the step before anything is
// dispatched.
func (a *WorkflowAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	w, err := parseWorkflowCall(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	ctx, log := a.c.stepLogger(ctx, req, zap.String("repo", w.owner+"/"+w.repo), zap.String("workflow", w.file), zap.String("ref", w.ref))
	cp := copyCheckpoint(req.Checkpoint)

	id, err := a.runID(ctx, req, w, cp, log)
	if err != nil {
		return runbook.Result{}, err
	}
	return a.follow(ctx, req, w, id, log.With(zap.Int64("workflow_run_id", id)))
}

// runID returns the id of the run to follow: from the checkpoint, by listing
// when only the dispatch time was saved, or by dispatching.
func (a *WorkflowAction) runID(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, log *zap.Logger) (int64, error) {
	if s := cp[ckRunID]; s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("checkpoint run id %q: %w", s, err)
		}
		log.Info("re-attaching to workflow run", zap.Int64("workflow_run_id", id))
		return id, nil
	}
	if s := cp[ckDispatchedAt]; s != "" {
		since, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("checkpoint dispatch time %q: %w", s, err)
		}
		log.Info("re-attaching: finding the run dispatched earlier", zap.Time("dispatched_at", since))
		return a.findAndSave(ctx, req, w, cp, since)
	}
	return a.dispatch(ctx, req, w, cp, log)
}

// dispatch starts the workflow once. It asks for the run id in the answer;
// a server that refuses the field (GitHub Enterprise Server answers 400 or
// 422) gets the plain dispatch, and the run is found by listing.
func (a *WorkflowAction) dispatch(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, log *zap.Logger) (int64, error) {
	since := a.c.clock.Now()
	cp[ckDispatchedAt] = since.Format(time.RFC3339Nano)
	if err := save(ctx, req, cp); err != nil {
		return 0, runbook.Retryable(fmt.Errorf("save checkpoint before dispatching %s: %w", w, err))
	}

	details, err := a.post(ctx, w, true)
	switch {
	case err == nil && details.WorkflowRunID != 0:
		log.Info("workflow dispatched", zap.Int64("workflow_run_id", details.WorkflowRunID))
		cp[ckRunID] = strconv.FormatInt(details.WorkflowRunID, 10)
		cp[ckRunURL] = details.HTMLURL
		if err := save(ctx, req, cp); err != nil {
			log.Warn("checkpoint not saved; a restart will find the run by listing", zap.Error(err))
		}
		return details.WorkflowRunID, nil
	case err == nil:
		log.Info("workflow dispatched; the server did not name the run, listing")
		return a.findAndSave(ctx, req, w, cp, since)
	case refusedRunDetails(err):
		log.Info("server refused return_run_details; dispatching without it", zap.Error(err))
		return a.dispatchPlain(ctx, req, w, cp, log)
	case transient(err):
		// The dispatch may have happened: look for it rather than risk a second run.
		log.Warn("dispatch outcome unknown, looking for the run", zap.Error(err))
		return a.findAndSave(ctx, req, w, cp, since)
	}
	return 0, dispatchError(w, err)
}

// dispatchPlain dispatches without return_run_details and finds the run. Runs
// that already match the search are listed first and excluded, so a run
// dispatched moments earlier by the same actor cannot be taken for ours.
func (a *WorkflowAction) dispatchPlain(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, log *zap.Logger) (int64, error) {
	since := a.c.clock.Now()
	existing, err := a.matching(ctx, w, since, nil, readAttempts)
	if err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(existing))
	for _, r := range existing {
		ids = append(ids, strconv.FormatInt(r.GetID(), 10))
	}
	cp[ckDispatchedAt] = since.Format(time.RFC3339Nano)
	cp[ckExclude] = strings.Join(ids, ",")
	if err := save(ctx, req, cp); err != nil {
		return 0, runbook.Retryable(fmt.Errorf("save checkpoint before dispatching %s: %w", w, err))
	}
	_, err = a.post(ctx, w, false)
	switch {
	case err == nil:
	case transient(err):
		log.Warn("dispatch outcome unknown, looking for the run", zap.Error(err))
	default:
		return 0, dispatchError(w, err)
	}
	return a.findAndSave(ctx, req, w, cp, since)
}

// runDetails is the answer to a dispatch with return_run_details (GitHub
// changelog 2026-02-19, "Workflow dispatch API now returns run IDs").
type runDetails struct {
	WorkflowRunID int64  `json:"workflow_run_id"`
	RunURL        string `json:"run_url"`
	HTMLURL       string `json:"html_url"`
}

// post sends POST .../actions/workflows/{file}/dispatches. go-github v62's
// CreateWorkflowDispatchEventByFileName cannot send return_run_details nor
// read the answer, hence the hand-built request. Rate limits (a refusal) are
// waited out; a lost answer is not retried.
func (a *WorkflowAction) post(ctx context.Context, w workflowCall, withDetails bool) (runDetails, error) {
	body := map[string]any{"ref": w.ref, "inputs": w.inputs}
	if withDetails {
		body["return_run_details"] = true
	}
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches", w.owner, w.repo, url.PathEscape(w.file))
	var details runDetails
	err := a.c.call(ctx, writeAttempts, func(ctx context.Context) error {
		req, err := a.c.gh.NewRequest(http.MethodPost, u, body)
		if err != nil {
			return err
		}
		details = runDetails{}
		_, err = a.c.gh.Do(ctx, req, &details)
		return err
	})
	return details, err
}

// refusedRunDetails reports whether the server rejected the request body, as
// GitHub Enterprise Server does with fields it does not know.
func refusedRunDetails(err error) bool {
	s := statusOf(err)
	return s == http.StatusBadRequest || s == http.StatusUnprocessableEntity
}

func dispatchError(w workflowCall, err error) error {
	switch statusOf(err) {
	case http.StatusNotFound:
		return fmt.Errorf("dispatch %s: workflow file not found (check the name and the token's Actions: write permission): %w", w, err)
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("dispatch %s: needs a token with Actions: write: %w", w, err)
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("dispatch %s: GitHub refused it (a workflow_dispatch trigger, the ref and the inputs must match the workflow): %w", w, err)
	}
	return fmt.Errorf("dispatch %s: %w", w, err)
}

// findAndSave finds the dispatched run and saves its id in the checkpoint.
func (a *WorkflowAction) findAndSave(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, since time.Time) (int64, error) {
	run, err := a.find(ctx, w, since, parseIDs(cp[ckExclude]))
	if err != nil {
		return 0, err
	}
	cp[ckRunID] = strconv.FormatInt(run.GetID(), 10)
	cp[ckRunURL] = run.GetHTMLURL()
	if err := save(ctx, req, cp); err != nil {
		a.c.logger(ctx).Warn("checkpoint not saved; a restart will list again", zap.Error(err))
	}
	return run.GetID(), nil
}

// find lists the workflow's runs until the one dispatched at since shows up,
// for at most the client's FindTimeout. It never dispatches.
func (a *WorkflowAction) find(ctx context.Context, w workflowCall, since time.Time, exclude map[int64]bool) (*gh.WorkflowRun, error) {
	deadline := a.c.clock.Now().Add(a.c.findTimeout)
	for {
		runs, err := a.matching(ctx, w, since, exclude, untilDone)
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			return runs[0], nil
		}
		if !a.c.clock.Now().Before(deadline) {
			return nil, fmt.Errorf("find the run of %s dispatched at %s: none found after %s; check the repository's Actions page (%s) before retrying: drbot does not dispatch again while it cannot tell whether the first dispatch started a run",
				w, since.UTC().Format(time.RFC3339), a.c.findTimeout, a.c.link(w.owner+"/"+w.repo, "actions"))
		}
		if err := a.c.clock.Sleep(ctx, a.c.poll); err != nil {
			return nil, err
		}
	}
}

// matching lists runs of the workflow that drbot may have dispatched at
// since — event workflow_dispatch, on the ref, created since then (less
// dispatchSkew), by drbot's actor — newest first, without the excluded ones.
// attempts is the retry policy: after a dispatch, untilDone, so that no
// error the engine would retry (with a second dispatch) escapes.
func (a *WorkflowAction) matching(ctx context.Context, w workflowCall, since time.Time, exclude map[int64]bool, attempts int) ([]*gh.WorkflowRun, error) {
	actor, err := a.c.actor.get(ctx)
	if err != nil {
		// A token that may not read /user (e.g. an Actions GITHUB_TOKEN):
		// search without the actor filter rather than fail.
		a.c.logger(ctx).Warn("actor unknown; listing runs by time and ref only", zap.Error(err))
	}
	from := since.Add(-dispatchSkew).UTC()
	opts := &gh.ListWorkflowRunsOptions{
		Event:       "workflow_dispatch",
		Branch:      w.branch(),
		Actor:       actor,
		Created:     ">=" + from.Format("2006-01-02T15:04:05Z"),
		ListOptions: gh.ListOptions{PerPage: 50},
	}
	var list *gh.WorkflowRuns
	err = a.c.call(ctx, attempts, func(ctx context.Context) (err error) {
		list, _, err = a.c.gh.Actions.ListWorkflowRunsByFileName(ctx, w.owner, w.repo, w.file, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", w, err)
	}
	var out []*gh.WorkflowRun
	for _, r := range list.WorkflowRuns {
		if exclude[r.GetID()] || r.GetEvent() != "workflow_dispatch" || r.GetHeadBranch() != w.branch() ||
			r.GetCreatedAt().Time.Before(from) || !byActor(r, actor) {
			continue
		}
		out = append(out, r)
	}
	newestFirst(out)
	return out, nil
}

func byActor(r *gh.WorkflowRun, actor string) bool {
	if actor == "" {
		return true
	}
	return strings.EqualFold(r.GetTriggeringActor().GetLogin(), actor) || strings.EqualFold(r.GetActor().GetLogin(), actor)
}

func newestFirst(runs []*gh.WorkflowRun) {
	// Insertion sort: the list is short and usually sorted already.
	for i := 1; i < len(runs); i++ {
		for j := i; j > 0 && newer(runs[j], runs[j-1]); j-- {
			runs[j], runs[j-1] = runs[j-1], runs[j]
		}
	}
}

func newer(a, b *gh.WorkflowRun) bool {
	ta, tb := a.GetCreatedAt().Time, b.GetCreatedAt().Time
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.GetID() > b.GetID()
}

func parseIDs(s string) map[int64]bool {
	out := map[int64]bool{}
	for _, f := range strings.Split(s, ",") {
		if id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil {
			out[id] = true
		}
	}
	return out
}
