package github

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// Checkpoint keys of the workflow action. Everything that tells this step's
// runs from others' is saved before the dispatch it concerns, so a restarted
// drbot applies the same rules.
const (
	ckDispatchedAt   = "dispatched_at"   // RFC 3339, drbot's clock, just before the first dispatch
	ckCreatedFrom    = "created_from"    // the earliest created_at (GitHub's clock) a run of it can have
	ckExclude        = "exclude_runs"    // comma-separated ids listed before the first dispatch: not ours
	ckAccepted       = "accepted"        // "true" once GitHub accepted a dispatch without naming its run
	ckRedispatchedAt = "redispatched_at" // saved before the one automatic re-dispatch
	ckRedispatchFrom = "redispatch_from" // the re-dispatch's created_from
	ckRunID          = "run_id"          // the run this step follows, claimed
	ckRunURL         = "run_url"         // its web page
)

// searchPoll spaces the listings while drbot looks for the run of a dispatch
// during the dispatch search window: GitHub lists a dispatched run within
// seconds, and each listing costs one call of the rate limit.
const searchPoll = 2 * time.Second

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
//
// A run belongs to one step. The run a dispatch answer names is claimed for
// the step (Request.Claim) before it is followed. When the answer is lost
// (a 5xx, a timeout, a restart) the run is found by listing, and a run is
// this step's only if it is of the same workflow file and ref, by drbot's
// actor, created no earlier than the dispatch was sent (by GitHub's clock,
// read from its Date header), not listed before the dispatch, and not
// claimed by another step. Two such runs are a person's choice, never
// drbot's. When none appears within the dispatch search window the dispatch
// was refused, most likely: drbot dispatches again, once, and says so on
// the timeline; if both dispatches did start a run, one is followed and the
// other is reported.
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
	log = log.With(zap.Int64("workflow_run_id", id))
	res, err := a.follow(ctx, req, w, id, log)
	if cp[ckRedispatchedAt] != "" {
		return a.reportExtras(ctx, req, w, cp, id, res, err, log)
	}
	return res, err
}

// window tells the runs one step's dispatches may have started from all
// others: created at or after from (GitHub's clock) and not in exclude.
// from2 is the re-dispatch's from, zero until there was one.
type window struct {
	from    time.Time
	exclude map[int64]bool
	from2   time.Time
}

// runID returns the id of the run to follow: from the checkpoint, by
// listing when the checkpoint holds only what was saved before a dispatch,
// or by dispatching.
func (a *WorkflowAction) runID(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, log *zap.Logger) (int64, error) {
	if s := cp[ckRunID]; s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("checkpoint run id %q: %w", s, err)
		}
		// A no-op for the step that claimed it; it also claims runs saved
		// by a drbot that kept no claims yet.
		if err := claim(ctx, req, w, id); err != nil {
			return 0, fmt.Errorf("re-attach to workflow run %d of %s: %w", id, w, err)
		}
		log.Info("re-attaching to workflow run", zap.Int64("workflow_run_id", id))
		return id, nil
	}
	if cp[ckDispatchedAt] == "" {
		return a.dispatch(ctx, req, w, cp, log)
	}
	win, err := loadWindow(cp)
	if err != nil {
		return 0, err
	}
	log.Info("re-attaching: finding the run dispatched earlier", zap.Time("created_from", win.from))
	if cp[ckAccepted] != "" || cp[ckRedispatchedAt] != "" {
		// A dispatch was accepted, or the one re-dispatch may have been
		// sent: search, and never dispatch a third time.
		return a.findAndAdopt(ctx, req, w, cp, win, a.c.findTimeout, log)
	}
	// The process stopped between saving the checkpoint and learning the
	// dispatch's outcome: the same as a lost answer.
	return a.unknownOutcome(ctx, req, w, cp, win, "drbot restarted during the dispatch", log)
}

// dispatch lists the runs that exist, saves them with the dispatch time,
// and dispatches.
func (a *WorkflowAction) dispatch(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, log *zap.Logger) (int64, error) {
	win, err := a.prepare(ctx, req, w, cp)
	if err != nil {
		return 0, err
	}
	details, err := a.send(ctx, w, log)
	return a.outcome(ctx, req, w, cp, win, details, err, log)
}

// prepare lists the workflow's runs before the first dispatch and saves, in
// the checkpoint, their ids, the dispatch time and the earliest created_at a
// run of the dispatch can have, so that none of those runs is ever taken for
// this step's, even after a restart.
func (a *WorkflowAction) prepare(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string) (window, error) {
	known, offset, err := a.list(ctx, w, time.Time{}, readAttempts)
	if err != nil {
		return window{}, err
	}
	win := window{exclude: map[int64]bool{}}
	ids := make([]string, 0, len(known))
	for _, r := range known {
		win.exclude[r.GetID()] = true
		ids = append(ids, strconv.FormatInt(r.GetID(), 10))
	}
	sent := a.c.clock.Now()
	win.from = createdFrom(sent, offset)
	cp[ckDispatchedAt] = sent.Format(time.RFC3339Nano)
	cp[ckCreatedFrom] = win.from.Format(time.RFC3339)
	cp[ckExclude] = strings.Join(ids, ",")
	if err := save(ctx, req, cp); err != nil {
		return window{}, runbook.Retryable(fmt.Errorf("save checkpoint before dispatching %s: %w", w, err))
	}
	return win, nil
}

// createdFrom is the earliest created_at, in GitHub's clock, of a run
// dispatched at sent by drbot's clock. offset is a lower bound of GitHub's
// clock minus drbot's (see serverOffset), so a host clock off in either
// direction neither hides the run nor lets in one dispatched well before;
// GitHub stamps created_at to the second.
func createdFrom(sent time.Time, offset time.Duration) time.Time {
	return sent.Add(offset).UTC().Truncate(time.Second)
}

// loadWindow reads the window a checkpoint saved. Checkpoints from before
// created_from was saved use the dispatch time, to the second.
func loadWindow(cp map[string]string) (window, error) {
	sent, err := time.Parse(time.RFC3339Nano, cp[ckDispatchedAt])
	if err != nil {
		return window{}, fmt.Errorf("checkpoint dispatch time %q: %w", cp[ckDispatchedAt], err)
	}
	win := window{from: sent.UTC().Truncate(time.Second), exclude: parseIDs(cp[ckExclude])}
	for key, t := range map[string]*time.Time{ckCreatedFrom: &win.from, ckRedispatchFrom: &win.from2} {
		if s := cp[key]; s != "" {
			if *t, err = time.Parse(time.RFC3339, s); err != nil {
				return window{}, fmt.Errorf("checkpoint %s %q: %w", key, s, err)
			}
		}
	}
	return win, nil
}

// send dispatches, asking for the run id. A server that refuses the field
// (GitHub Enterprise Server answers 400 or 422, dispatching nothing) gets
// the plain dispatch, and the run is found by listing.
func (a *WorkflowAction) send(ctx context.Context, w workflowCall, log *zap.Logger) (runDetails, error) {
	details, err := a.post(ctx, w, true)
	if refusedRunDetails(err) {
		log.Info("server refused return_run_details; dispatching without it", zap.Error(err))
		return a.post(ctx, w, false)
	}
	return details, err
}

// outcome turns a dispatch's answer into the run to follow.
func (a *WorkflowAction) outcome(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, win window, details runDetails, err error, log *zap.Logger) (int64, error) {
	switch {
	case err == nil && details.WorkflowRunID != 0:
		log.Info("workflow dispatched", zap.Int64("workflow_run_id", details.WorkflowRunID))
		id, err := a.adopt(ctx, req, w, cp, details.WorkflowRunID, details.HTMLURL)
		if err != nil {
			return 0, fmt.Errorf("GitHub says the dispatch of %s started run %d (%s), but it cannot be this step's: %w; a person must check both steps' runs", w, details.WorkflowRunID, details.HTMLURL, err)
		}
		return id, nil
	case err == nil:
		log.Info("workflow dispatched; the server did not name the run, listing")
		cp[ckAccepted] = "true"
		if err := save(ctx, req, cp); err != nil {
			log.Warn("checkpoint not saved; a restart may dispatch again", zap.Error(err))
		}
		return a.findAndAdopt(ctx, req, w, cp, win, a.c.findTimeout, log)
	case transient(err) && win.from2.IsZero():
		return a.unknownOutcome(ctx, req, w, cp, win, "GitHub answered "+describe(err), log)
	case transient(err):
		log.Warn("re-dispatch outcome unknown too, looking for a run", zap.Error(err))
		return a.findAndAdopt(ctx, req, w, cp, win, a.c.findTimeout, log)
	}
	return 0, dispatchError(w, err)
}

// describe names a transient error briefly for the timeline: the status, or
// the error itself.
func describe(err error) string {
	if s := statusOf(err); s != 0 {
		return fmt.Sprintf("%d %s", s, http.StatusText(s))
	}
	return err.Error()
}

// unknownOutcome looks for the run of a dispatch whose answer was lost, for
// the dispatch search window. If none appears the dispatch was most likely
// refused: it dispatches again, once, reporting it as a retry. The first
// dispatch's run, should it appear late, stays a candidate: pick then
// follows one of the two and reportExtras names the other.
func (a *WorkflowAction) unknownOutcome(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, win window, cause string, log *zap.Logger) (int64, error) {
	log.Warn("dispatch outcome unknown, looking for the run", zap.String("cause", cause), zap.Duration("search", a.c.dispatchSearch))
	id, offset, found, err := a.searchAndAdopt(ctx, req, w, cp, win, a.c.dispatchSearch, log)
	if err != nil || found {
		return id, err
	}
	log.Warn("no run appeared; dispatching again, once", zap.Duration("searched", a.c.dispatchSearch))
	progress(ctx, req, fmt.Sprintf("retry: no run of %s appeared within %s of a dispatch whose answer was lost (%s); dispatching again, once",
		w.file, a.c.dispatchSearch, cause), a.workflowLink(w))
	sent := a.c.clock.Now()
	win.from2 = createdFrom(sent, offset)
	cp[ckRedispatchedAt] = sent.Format(time.RFC3339Nano)
	cp[ckRedispatchFrom] = win.from2.Format(time.RFC3339)
	if err := save(ctx, req, cp); err != nil {
		return 0, fmt.Errorf("save checkpoint before dispatching %s again: %w", w, err)
	}
	details, err := a.send(ctx, w, log)
	return a.outcome(ctx, req, w, cp, win, details, err, log)
}

// findAndAdopt finds this step's run within limit and adopts it, or fails
// the step: it never dispatches.
func (a *WorkflowAction) findAndAdopt(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, win window, limit time.Duration, log *zap.Logger) (int64, error) {
	id, _, found, err := a.searchAndAdopt(ctx, req, w, cp, win, limit, log)
	if err != nil || found {
		return id, err
	}
	return 0, fmt.Errorf("find the run of %s dispatched at %s: none found after %s; check the repository's Actions page (%s) before retrying: drbot does not dispatch again while it cannot tell whether a dispatch started a run",
		w, win.from.Format(time.RFC3339), limit, a.c.link(w.owner+"/"+w.repo, "actions"))
}

// searchAndAdopt searches for this step's run for at most limit and adopts
// it. A run another step claims meanwhile is passed over and the search
// goes on. It also returns the last reading of GitHub's clock offset.
func (a *WorkflowAction) searchAndAdopt(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, win window, limit time.Duration, log *zap.Logger) (id int64, offset time.Duration, found bool, err error) {
	deadline := a.c.clock.Now().Add(limit)
	win.exclude = maps.Clone(win.exclude)
	for {
		run, off, err := a.search(ctx, req, w, win, deadline)
		if err != nil || run == nil {
			return 0, off, false, err
		}
		id, err := a.adopt(ctx, req, w, cp, run.GetID(), run.GetHTMLURL())
		if errors.Is(err, runbook.ErrClaimed) {
			log.Info("run claimed by another step meanwhile; searching on", zap.Int64("candidate_run_id", run.GetID()), zap.Error(err))
			win.exclude[run.GetID()] = true
			continue
		}
		return id, off, err == nil, err
	}
}

// search lists this step's candidate runs until pick chooses one or fails,
// or deadline passes (then it returns no run and no error). It lists every
// searchPoll for the dispatch search window, then every poll interval.
func (a *WorkflowAction) search(ctx context.Context, req runbook.Request, w workflowCall, win window, deadline time.Time) (*gh.WorkflowRun, time.Duration, error) {
	start := a.c.clock.Now()
	for {
		runs, offset, err := a.candidates(ctx, req, w, win, untilDone)
		if err != nil {
			return nil, 0, err
		}
		run, err := pick(runs, win)
		if err != nil {
			progress(ctx, req, "ambiguous: a person must choose", runLinks(runs)...)
			return nil, 0, fmt.Errorf("dispatch %s: %w; drbot follows none of them: a person must decide. If one does this step's work, cancel the others and Skip the step; otherwise cancel them all and Retry, which dispatches again", w, err)
		}
		now := a.c.clock.Now()
		if run != nil || !now.Before(deadline) {
			return run, offset, nil
		}
		wait := searchPoll
		if now.Sub(start) >= a.c.dispatchSearch {
			wait = a.c.poll
		}
		if err := a.c.clock.Sleep(ctx, min(wait, deadline.Sub(now))); err != nil {
			return nil, 0, err
		}
	}
}

// pick chooses, among candidates newest first, the run to adopt: the only
// one; or, after a re-dispatch, the newer of exactly two when each dispatch
// accounts for one (the older is the first dispatch's late run, reported by
// reportExtras). Any other choice is a person's.
func pick(runs []*gh.WorkflowRun, win window) (*gh.WorkflowRun, error) {
	switch {
	case len(runs) == 0:
		return nil, nil
	case len(runs) == 1:
		return runs[0], nil
	case len(runs) == 2 && !win.from2.IsZero() &&
		!runs[0].GetCreatedAt().Time.Before(win.from2) && runs[1].GetCreatedAt().Time.Before(win.from2):
		return runs[0], nil
	}
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = fmt.Sprintf("run #%d created %s (%s)", r.GetRunNumber(), r.GetCreatedAt().UTC().Format(time.RFC3339), r.GetHTMLURL())
	}
	return nil, fmt.Errorf("GitHub did not say which run the dispatch started, and %d runs could be it: %s", len(runs), strings.Join(names, ", "))
}

// adopt claims the run for this step and saves it in the checkpoint. A run
// another step claimed is refused with an error wrapping runbook.ErrClaimed.
func (a *WorkflowAction) adopt(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, id int64, url string) (int64, error) {
	if err := claim(ctx, req, w, id); err != nil {
		return 0, err
	}
	cp[ckRunID] = strconv.FormatInt(id, 10)
	cp[ckRunURL] = url
	if err := save(ctx, req, cp); err != nil {
		a.c.logger(ctx).Warn("checkpoint not saved; a restart will list again", zap.Error(err))
	}
	return id, nil
}

// candidates lists the runs this step's dispatches may have started (see
// window), newest first, without those another step claimed, and GitHub's
// clock offset.
func (a *WorkflowAction) candidates(ctx context.Context, req runbook.Request, w workflowCall, win window, attempts int) ([]*gh.WorkflowRun, time.Duration, error) {
	runs, offset, err := a.list(ctx, w, win.from, attempts)
	if err != nil {
		return nil, 0, err
	}
	out := runs[:0]
	for _, r := range runs {
		if win.exclude[r.GetID()] {
			continue
		}
		holder, err := claimOf(ctx, req, w, r.GetID())
		if err != nil {
			return nil, 0, err
		}
		if holder != nil && (holder.RunID != req.RunID || holder.StepID != req.StepID) {
			a.c.logger(ctx).Debug("passing over a run another step claimed", zap.Int64("candidate_run_id", r.GetID()),
				zap.String("holder_run_id", holder.RunID), zap.String("holder_step_id", holder.StepID))
			continue
		}
		out = append(out, r)
	}
	return out, offset, nil
}

// reportExtras runs when the step dispatched twice: it looks once more for
// runs either dispatch started besides the one followed. Both dispatches
// may have started a run (the first's answer was lost and its run listed
// late); the other run is then named on the timeline and in the step's
// outcome, never ignored.
func (a *WorkflowAction) reportExtras(ctx context.Context, req runbook.Request, w workflowCall, cp map[string]string, id int64, res runbook.Result, runErr error, log *zap.Logger) (runbook.Result, error) {
	if ctx.Err() != nil {
		return res, runErr
	}
	win, err := loadWindow(cp)
	var runs []*gh.WorkflowRun
	if err == nil {
		runs, _, err = a.candidates(ctx, req, w, win, readAttempts)
	}
	var text string
	var links []runbook.Link
	switch {
	case err != nil:
		log.Warn("no check for a second run after the re-dispatch", zap.Error(err))
		text = fmt.Sprintf("drbot dispatched %s twice and could not check whether both dispatches started a run (%v): see the Actions page", w.file, err)
		links = []runbook.Link{a.workflowLink(w)}
	default:
		var extra []string
		for _, r := range runs {
			if r.GetID() != id {
				extra = append(extra, fmt.Sprintf("run #%d", r.GetRunNumber()))
				links = append(links, runLink(r))
			}
		}
		if len(extra) == 0 {
			return res, runErr
		}
		log.Warn("both dispatches started a run; one is followed", zap.Strings("other_runs", extra))
		text = fmt.Sprintf("both dispatches of %s started a run: drbot followed run %d only; %s also started and was not followed: cancel it if it must not run twice",
			w.file, id, strings.Join(extra, ", "))
	}
	progress(ctx, req, "warning: "+text, links...)
	if runErr != nil {
		return res, fmt.Errorf("%w; note: %s", runErr, text)
	}
	res.Summary += "; note: " + text
	res.Links = append(res.Links, links...)
	return res, nil
}

// workflowLink links the workflow's runs on GitHub.
func (a *WorkflowAction) workflowLink(w workflowCall) runbook.Link {
	return runbook.Link{Label: w.file + " runs", URL: a.c.link(w.owner+"/"+w.repo, "actions/workflows/"+w.file)}
}

// runLinks links each run.
func runLinks(runs []*gh.WorkflowRun) []runbook.Link {
	out := make([]runbook.Link, len(runs))
	for i, r := range runs {
		out[i] = runLink(r)
	}
	return out
}

// runResource is the claim key of a workflow run; GitHub names are
// case-insensitive.
func runResource(w workflowCall, id int64) string {
	return "github-run:" + strings.ToLower(w.owner+"/"+w.repo) + ":" + strconv.FormatInt(id, 10)
}

// claim claims the run for the step, if the engine keeps claims.
func claim(ctx context.Context, req runbook.Request, w workflowCall, id int64) error {
	if req.Claim == nil {
		return nil
	}
	return req.Claim(ctx, runResource(w, id))
}

// claimOf returns who claimed the run, or nil.
func claimOf(ctx context.Context, req runbook.Request, w workflowCall, id int64) (*runbook.Claim, error) {
	if req.ClaimOf == nil {
		return nil, nil
	}
	c, err := req.ClaimOf(ctx, runResource(w, id))
	if errors.Is(err, runbook.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check who owns workflow run %d of %s: %w", id, w, err)
	}
	return &c, nil
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

// list lists runs of the workflow that drbot may have dispatched — event
// workflow_dispatch, on the ref, by drbot's actor, created at or after from
// (GitHub's clock; zero: any time) — newest first, and GitHub's clock offset
// as read from the answer. attempts is the retry policy: after a dispatch,
// untilDone, so that no error the engine would retry escapes.
func (a *WorkflowAction) list(ctx context.Context, w workflowCall, from time.Time, attempts int) ([]*gh.WorkflowRun, time.Duration, error) {
	actor, err := a.c.actor.get(ctx)
	if err != nil {
		// A token that may not read /user (e.g. an Actions GITHUB_TOKEN):
		// search without the actor filter rather than fail.
		a.c.logger(ctx).Warn("actor unknown; listing runs by time and ref only", zap.Error(err))
	}
	opts := &gh.ListWorkflowRunsOptions{
		Event:       "workflow_dispatch",
		Branch:      w.branch(),
		Actor:       actor,
		ListOptions: gh.ListOptions{PerPage: 50},
	}
	if !from.IsZero() {
		opts.Created = ">=" + from.UTC().Format("2006-01-02T15:04:05Z")
	}
	var (
		list   *gh.WorkflowRuns
		offset time.Duration
	)
	err = a.c.call(ctx, attempts, func(ctx context.Context) error {
		l, resp, err := a.c.gh.Actions.ListWorkflowRunsByFileName(ctx, w.owner, w.repo, w.file, opts)
		if err != nil {
			return err
		}
		list, offset = l, serverOffset(resp, a.c.clock.Now())
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list runs of %s: %w", w, err)
	}
	var out []*gh.WorkflowRun
	for _, r := range list.WorkflowRuns {
		if r.GetEvent() != "workflow_dispatch" || r.GetHeadBranch() != w.branch() ||
			r.GetCreatedAt().Time.Before(from) || !byActor(r, actor) {
			continue
		}
		out = append(out, r)
	}
	newestFirst(out)
	return out, offset, nil
}

// serverOffset is a lower bound of GitHub's clock minus drbot's, read from
// the Date header of an answer that arrived by drbot's clock at received:
// GitHub's clock read at least Date when it answered, which was before
// received. Without a usable Date it assumes the clocks agree.
func serverOffset(resp *gh.Response, received time.Time) time.Duration {
	if resp == nil || resp.Response == nil {
		return 0
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0
	}
	return date.Sub(received)
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

var _ runbook.Linker = (*WorkflowAction)(nil)

// Links points at the workflow file on its ref, on the configured GitHub
// (github.com or GitHub Enterprise), before the step runs.
func (a *WorkflowAction) Links(p runbook.Params) []runbook.Link {
	w, err := parseWorkflowCall(p)
	if err != nil {
		return nil
	}
	return []runbook.Link{{Label: "workflow file " + w.file, URL: a.c.link(w.owner+"/"+w.repo, "blob/"+w.ref+"/.github/workflows/"+w.file)}}
}
