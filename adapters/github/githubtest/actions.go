package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Workflow says how the runs of a workflow behave. The zero value: queued on
// the first read, in progress on the second, completed with success on the
// third, one job.
type Workflow struct {
	// Conclusion of its runs; "" means "success".
	Conclusion string
	// Jobs of its runs (at most 100); nil means one job "run" with the
	// run's conclusion.
	Jobs []Job
	// QueuedPolls and InProgressPolls are how many reads of a run (GET
	// .../actions/runs/{id}, 304s included) answer queued, then in
	// progress, before it reads completed; 0 means 1.
	QueuedPolls, InProgressPolls int
	// QueuedFor and RunFor, when either is set, make runs follow the
	// server's clock instead of the reads: queued for QueuedFor after
	// creation, then in progress for RunFor.
	QueuedFor, RunFor time.Duration
	// ListDelay is how many listings of the workflow's runs leave a new run
	// out, as GitHub takes a moment to list a dispatched run.
	ListDelay int
}

// Job is one job of a run. Its id is also the id of its check run, as on
// GitHub, and its check_run_url points there.
type Job struct {
	Name       string
	Conclusion string // e.g. success, failure, skipped
	// Annotations are what the job's steps reported with workflow commands
	// (echo "::notice title=Temporary URL::https://…"), served by GET
	// .../check-runs/{id}/annotations once the run has started.
	Annotations []Annotation
}

// Annotation is one check-run annotation of a job.
type Annotation struct {
	Level   string // notice, warning or failure; "" means notice
	Title   string
	Message string
}

// Dispatch is a workflow dispatch the server accepted.
type Dispatch struct {
	Repo, Workflow, Ref string
	Inputs              map[string]string
	ReturnRunDetails    bool // the request asked for the run's id
	RunID               int64
	At                  time.Time
}

// RunSpec describes a run that exists before the test acts, e.g. one
// someone else dispatched.
type RunSpec struct {
	Ref, Actor, Event string // Event "" means workflow_dispatch
	Created           time.Time
	Workflow          Workflow
}

// run is one workflow run's state.
type run struct {
	id                        int64
	number                    int
	repo, file, ref           string
	event, actor              string
	wf                        Workflow
	created, started, updated time.Time
	status, conclusion        string
	polls, lists              int
}

// SetWorkflow sets how the runs of repo's workflow file behave from now on.
func (s *Server) SetWorkflow(repo, file string, wf Workflow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).workflows[file] = wf
}

// SetRunDetails sets how dispatches that ask for run details
// (return_run_details) are answered: 200 with the run's id (the default, as
// github.com since February 2026), 204 ignoring the field, or a 400/422
// refusal as GitHub Enterprise Server gives for a field it does not know.
func (s *Server) SetRunDetails(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detailsMode = status
}

// Dispatches returns the dispatches the server accepted, in order.
func (s *Server) Dispatches() []Dispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Dispatch(nil), s.dispatches...)
}

// AddRun adds a run of repo's workflow file and returns its id.
func (s *Server) AddRun(repo, file string, spec RunSpec) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.Event == "" {
		spec.Event = "workflow_dispatch"
	}
	if spec.Created.IsZero() {
		spec.Created = s.now()
	}
	r := s.newRun(repo, file, spec.Ref, spec.Event, spec.Actor, spec.Workflow)
	r.created, r.updated = spec.Created, spec.Created
	return r.id
}

// RunStatus returns a run's status and conclusion as last read.
func (s *Server) RunStatus(id int64) (status, conclusion string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return "", "", false
	}
	return r.status, r.conclusion, true
}

// newRun creates a queued run. Callers hold s.mu.
func (s *Server) newRun(repo, file, ref, event, actor string, wf Workflow) *run {
	s.nextID++
	rp := s.repo(repo)
	rp.runNumber[file]++
	now := s.now()
	r := &run{
		id: s.nextID, number: rp.runNumber[file],
		repo: repo, file: file, ref: strings.TrimPrefix(ref, "refs/heads/"),
		event: event, actor: actor, wf: wf,
		created: now, updated: now, status: "queued",
	}
	s.runs[r.id] = r
	return r
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !decode(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, file := repoName(r), r.PathValue("file")
	rp := s.repo(name)
	_, wantDetails := body["return_run_details"]
	if wantDetails && (s.detailsMode == http.StatusBadRequest || s.detailsMode == http.StatusUnprocessableEntity) {
		writeJSON(w, s.detailsMode, msg("Invalid request.\n\n\"return_run_details\" is not a permitted key."))
		return
	}
	ref, _ := body["ref"].(string)
	if ref == "" {
		writeJSON(w, http.StatusUnprocessableEntity, msg(`Invalid request. "ref" wasn't supplied.`))
		return
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if len(rp.refs) > 0 && rp.refs[branch] == "" {
		writeJSON(w, http.StatusUnprocessableEntity, msg("No ref found for: "+ref))
		return
	}
	inputs := map[string]string{}
	if in, ok := body["inputs"].(map[string]any); ok {
		for k, v := range in {
			inputs[k] = fmt.Sprint(v)
		}
	}
	run := s.newRun(name, file, ref, "workflow_dispatch", s.actor(), rp.workflows[file])
	details, _ := body["return_run_details"].(bool)
	s.dispatches = append(s.dispatches, Dispatch{
		Repo: name, Workflow: file, Ref: ref, Inputs: inputs,
		ReturnRunDetails: details, RunID: run.id, At: run.created,
	})
	if !details || s.detailsMode != http.StatusOK {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"workflow_run_id": run.id,
		"run_url":         s.runAPIURL(run),
		"html_url":        s.runHTMLURL(run),
	})
}

func (s *Server) runAPIURL(r *run) string {
	return fmt.Sprintf("%srepos/%s/actions/runs/%d", s.URL(), r.repo, r.id)
}

func (s *Server) runHTMLURL(r *run) string {
	return fmt.Sprintf("%s%s/actions/runs/%d", s.WebURL(), r.repo, r.id)
}

// advance brings a run's status up to date; poll counts a read of the run.
// Callers hold s.mu.
func (s *Server) advance(r *run, poll bool) {
	if poll {
		r.polls++
	}
	now := s.now()
	status := r.statusAt(now)
	if status == r.status {
		return
	}
	r.status, r.updated = status, now
	if status != "queued" && r.started.IsZero() {
		r.started = now
	}
	if status == "completed" {
		r.conclusion = r.wf.Conclusion
		if r.conclusion == "" {
			r.conclusion = "success"
		}
	}
}

func (r *run) statusAt(now time.Time) string {
	if r.wf.QueuedFor > 0 || r.wf.RunFor > 0 {
		switch age := now.Sub(r.created); {
		case age < r.wf.QueuedFor:
			return "queued"
		case age < r.wf.QueuedFor+r.wf.RunFor:
			return "in_progress"
		}
		return "completed"
	}
	queued, running := max(r.wf.QueuedPolls, 1), max(r.wf.InProgressPolls, 1)
	switch {
	case r.polls <= queued:
		return "queued"
	case r.polls <= queued+running:
		return "in_progress"
	}
	return "completed"
}

func (r *run) etag() string {
	sum := sha1.Sum([]byte(fmt.Sprintf("%d/%s/%s/%d", r.id, r.status, r.conclusion, r.updated.UnixNano())))
	return `W/"` + hex.EncodeToString(sum[:]) + `"`
}

func (s *Server) runJSON(r *run) map[string]any {
	var conclusion any
	if r.status == "completed" {
		conclusion = r.conclusion
	}
	started := r.started
	if started.IsZero() {
		started = r.created
	}
	actor := map[string]any{"login": r.actor, "type": "User"}
	return map[string]any{
		"id": r.id, "name": strings.TrimSuffix(r.file, path.Ext(r.file)), "run_number": r.number, "run_attempt": 1,
		"event": r.event, "status": r.status, "conclusion": conclusion,
		"head_branch": r.ref, "path": ".github/workflows/" + r.file,
		"created_at": r.created.Format(time.RFC3339), "updated_at": r.updated.Format(time.RFC3339),
		"run_started_at": started.Format(time.RFC3339),
		"html_url":       s.runHTMLURL(r), "url": s.runAPIURL(r),
		"actor": actor, "triggering_actor": actor,
	}
}

// lookupRun finds the run named in the path, answering 404 if there is none.
// Callers hold s.mu.
func (s *Server) lookupRun(w http.ResponseWriter, r *http.Request) *run {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	run, ok := s.runs[id]
	if !ok || run.repo != repoName(r) {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return nil
	}
	return run
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.lookupRun(w, r)
	if run == nil {
		return
	}
	s.advance(run, true)
	if s.pollInterval > 0 {
		w.Header().Set("X-Poll-Interval", strconv.Itoa(s.pollInterval))
	}
	etag := run.etag()
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, s.runJSON(run))
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.lookupRun(w, r)
	if run == nil {
		return
	}
	s.advance(run, false)
	jobs := run.jobs()
	out := make([]map[string]any, 0, len(jobs))
	for i, j := range jobs {
		id := jobID(run, i)
		job := map[string]any{
			"id": id, "run_id": run.id, "name": j.Name, "status": run.status, "conclusion": nil,
			"check_run_url": fmt.Sprintf("%srepos/%s/check-runs/%d", s.URL(), run.repo, id),
		}
		if run.status == "completed" {
			job["conclusion"] = j.Conclusion
		}
		out = append(out, job)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(out), "jobs": out})
}

// jobs returns the run's jobs: its workflow's, or one job "run" with the
// run's conclusion.
func (r *run) jobs() []Job {
	if r.wf.Jobs == nil {
		return []Job{{Name: "run", Conclusion: r.conclusion}}
	}
	return r.wf.Jobs
}

// maxJobs bounds the jobs of a run, so that a job id (the run id times
// maxJobs plus the job's index) names both.
const maxJobs = 100

// jobID is the id of the run's i-th job and of its check run.
func jobID(r *run, i int) int64 { return r.id*maxJobs + int64(i) }

// listAnnotations serves a check run's annotations: those of the job with
// that id, once its run has started. Annotations come in the order the job
// reported them, all on one page.
func (s *Server) listAnnotations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	run, ok := s.runs[id/maxJobs]
	if !ok || run.repo != repoName(r) || int(id%maxJobs) >= len(run.jobs()) {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	s.advance(run, false)
	out := []map[string]any{}
	if run.status != "queued" {
		for _, a := range run.jobs()[id%maxJobs].Annotations {
			level := a.Level
			if level == "" {
				level = "notice"
			}
			var title any
			if a.Title != "" {
				title = a.Title
			}
			out = append(out, map[string]any{
				"path": ".github", "start_line": 1, "end_line": 1, "start_column": nil, "end_column": nil,
				"annotation_level": level, "title": title, "message": a.Message, "raw_details": nil,
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// listRuns serves a workflow's runs, newest first, filtered by event, branch,
// actor and created (">=TIME" only).
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from time.Time
	if c := q.Get("created"); c != "" {
		t, ok := strings.CutPrefix(c, ">=")
		var err error
		if from, err = time.Parse(time.RFC3339, t); !ok || err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, msg("githubtest: created filter "+c+" is not >=RFC3339"))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, file := repoName(r), r.PathValue("file")
	var runs []*run
	for _, run := range s.runs {
		if run.repo != name || run.file != file {
			continue
		}
		run.lists++
		s.advance(run, false)
		switch {
		case run.lists <= run.wf.ListDelay,
			q.Get("event") != "" && run.event != q.Get("event"),
			q.Get("branch") != "" && run.ref != q.Get("branch"),
			q.Get("actor") != "" && run.actor != q.Get("actor"),
			run.created.Before(from):
			continue
		}
		runs = append(runs, run)
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].created.Equal(runs[j].created) {
			return runs[i].created.After(runs[j].created)
		}
		return runs[i].id > runs[j].id
	})
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if perPage <= 0 {
		perPage = 30
	}
	total := len(runs)
	runs = runs[:min(perPage, len(runs))]
	out := make([]map[string]any, 0, len(runs))
	for _, run := range runs {
		out = append(out, s.runJSON(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "workflow_runs": out})
}
