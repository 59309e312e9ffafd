// Package sim provides simulated adapters for every action kind: the same
// parameters and checkpoints as the real ones, small realistic delays,
// recorded calls, and SIMULATED on everything they report. Rehearsals, drills
// (drbot serve --simulate) and tests use them; they touch no infrastructure.
package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Call is one recorded call of a simulated action.
type Call struct {
	Kind   string
	StepID string
	What   string // e.g. "dispatch", "reattach", "scale"
	Params runbook.Params
}

// Options tune the simulation.
type Options struct {
	// Delay is the base duration of a simulated operation (a workflow run
	// takes a few of them). Zero makes everything instant, for tests.
	Delay time.Duration
	// Replicas seeds deployment replica counts ("namespace/name" → count).
	// Unknown deployments start with 2 for the first of a step and 1 for the
	// rest, as in the seed's example (web 2, worker 1).
	Replicas map[string]int
	// Approvals seeds the required review count per "repo@branch" (default 1).
	Approvals map[string]int
	// FailWorkflow makes dispatches of these workflow files conclude with
	// "failure", to rehearse Retry.
	FailWorkflow []string
	// Clock is the simulated world's time (restore windows, backup dates);
	// nil is the system clock. Give it the engine's clock.
	Clock runbook.Clock
}

// Sim holds the simulated world: deployments, branch protection, workflow
// runs, database servers and backups.
type Sim struct {
	opts Options

	mu        sync.Mutex
	calls     []Call
	replicas  map[string]int
	approvals map[string]int
	servers   map[string]bool // "rg/server" exists
	backups   []string
	nextRun   int
}

// New returns a simulated world.
func New(opts Options) *Sim {
	if opts.Clock == nil {
		opts.Clock = runbook.SystemClock{}
	}
	s := &Sim{opts: opts, replicas: map[string]int{}, approvals: map[string]int{}, servers: map[string]bool{}, nextRun: 4100}
	for k, v := range opts.Replicas {
		s.replicas[k] = v
	}
	for k, v := range opts.Approvals {
		s.approvals[k] = v
	}
	return s
}

// Calls returns the recorded calls in order.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count returns how many recorded calls match: a zero field of want matches
// anything (e.g. Call{Kind: "kubernetes.scale"} or Call{StepID: "ptr"}).
func (s *Sim) Count(want Call) int {
	n := 0
	for _, c := range s.Calls() {
		if (want.Kind == "" || c.Kind == want.Kind) && (want.StepID == "" || c.StepID == want.StepID) && (want.What == "" || c.What == want.What) {
			n++
		}
	}
	return n
}

// Replicas returns a deployment's simulated replica count.
func (s *Sim) Replicas(namespace, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replicas[namespace+"/"+name]
}

// Approvals returns the simulated required review count of repo@branch.
func (s *Sim) Approvals(repo, branch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.approvalsLocked(repo + "@" + branch)
}

// replicaLocked returns a deployment's simulated count: as seeded or set, else
// 2 for the first of a step and 1 for the rest (the seed's web 2, worker 1).
func (s *Sim) replicaLocked(namespace, name string, first bool) int {
	if n, ok := s.replicas[namespace+"/"+name]; ok {
		return n
	}
	if first {
		return 2
	}
	return 1
}

func (s *Sim) approvalsLocked(key string) int {
	if n, ok := s.approvals[key]; ok {
		return n
	}
	return 1
}

func (s *Sim) record(kind string, req runbook.Request, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Kind: kind, StepID: req.StepID, What: what, Params: req.Params})
}

// action adapts a function to runbook.Action and marks it simulated.
type action struct {
	kind string
	run  func(ctx context.Context, req runbook.Request) (runbook.Result, error)
	sim  *Sim
}

func (a action) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	return a.run(ctx, req)
}

// Simulated marks every result as SIMULATED.
func (action) Simulated() bool { return true }

var _ runbook.Simulator = action{}

// Actions returns a simulated action for every kind in runbook.Kinds but
// manual, which the engine runs itself.
func (s *Sim) Actions() runbook.Registry {
	impl := map[string]func(context.Context, runbook.Request) (runbook.Result, error){
		runbook.KindCreateChannel:      s.createChannel,
		runbook.KindNotifyStakeholders: s.post(runbook.KindNotifyStakeholders, "stakeholders"),
		runbook.KindNotifyDevelopers:   s.post(runbook.KindNotifyDevelopers, "developers"),
		runbook.KindRequiredApprovals:  s.requiredApprovals,
		runbook.KindWorkflow:           s.workflow,
		runbook.KindBranchWithChange:   s.branchWithChange,
		runbook.KindScale:              s.scale,
		runbook.KindImage:              s.image,
		runbook.KindPostgresWait:       s.postgresWait,
		runbook.KindPostgresDelete:     s.postgresDelete,
		runbook.KindBackupsList:        s.backupsList,
		runbook.KindPostgresCheckGone:  s.postgresCheckGone,
		runbook.KindPostgresPreparePTR: s.postgresPreparePTR,
		runbook.KindBackupsCheck:       s.backupsCheck,
		runbook.KindHTTPCheck:          s.httpCheck,
	}
	reg := runbook.Registry{}
	for kind, fn := range impl {
		reg[kind] = action{kind: kind, run: fn, sim: s}
	}
	reg[runbook.KindBackupsList] = chooser{reg[runbook.KindBackupsList].(action)}
	return reg
}

// Only returns the simulated actions whose kind starts with one of prefixes
// (e.g. "azure." for --simulate=azure).
func (s *Sim) Only(prefixes ...string) runbook.Registry {
	out := runbook.Registry{}
	for kind, a := range s.Actions() {
		for _, p := range prefixes {
			if strings.HasPrefix(kind, p) {
				out[kind] = a
			}
		}
	}
	return out
}

// wait sleeps n delays or until ctx ends.
func (s *Sim) wait(ctx context.Context, n int) error {
	if s.opts.Delay == 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(n) * s.opts.Delay):
		return nil
	}
}

func (s *Sim) createChannel(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	s.record(runbook.KindCreateChannel, req, "create")
	spec, err := runbook.DecodeChannel(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	name := spec.Name
	if name == "" {
		name = "for run " + req.RunID
	}
	return runbook.Result{Summary: "incident channel " + name + " created (no Slack here)"}, s.wait(ctx, 1)
}

func (s *Sim) post(kind, audience string) func(context.Context, runbook.Request) (runbook.Result, error) {
	return func(ctx context.Context, req runbook.Request) (runbook.Result, error) {
		spec, err := runbook.DecodeText(req.Params)
		if err != nil {
			return runbook.Result{}, err
		}
		s.record(kind, req, "post")
		return runbook.Result{Summary: fmt.Sprintf("posted to %s: %s", audience, spec.Text)}, s.wait(ctx, 1)
	}
}

func (s *Sim) requiredApprovals(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeApprovals(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	repo, count := spec.Repo.String(), spec.Count
	key := repo + "@" + spec.Branch
	prev, saved := req.Checkpoint["previous"]
	if !saved {
		s.mu.Lock()
		prev = strconv.Itoa(s.approvalsLocked(key))
		s.mu.Unlock()
		if err := req.Save(ctx, map[string]string{"previous": prev}); err != nil {
			return runbook.Result{}, err
		}
	}
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	s.mu.Lock()
	s.approvals[key] = count
	s.mu.Unlock()
	s.record(runbook.KindRequiredApprovals, req, "set")
	n, _ := strconv.Atoi(prev)
	return runbook.Result{
		Summary:  fmt.Sprintf("required approvals on %s changed %d → %d", key, n, count),
		Links:    []runbook.Link{{Label: "branch protection", URL: fmt.Sprintf("https://github.com/%s/settings/branches", repo)}},
		Remember: n,
	}, nil
}

func (s *Sim) workflow(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeWorkflow(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	repo, file, ref := spec.Repo.String(), spec.File, spec.Ref
	// Simulated runs are claimed like real ones (the same Request.Claim
	// contract), under their own prefix so that they never collide with a
	// real GitHub run id in a store shared with real runs.
	claim := func(id string) error {
		if req.Claim == nil {
			return nil
		}
		return req.Claim(ctx, "sim-github-run:"+strings.ToLower(repo)+":"+id)
	}
	runID, attached := req.Checkpoint["run_id"]
	if attached {
		if err := claim(runID); err != nil {
			return runbook.Result{}, fmt.Errorf("re-attach to simulated run %s of %s: %w", runID, file, err)
		}
		s.record(runbook.KindWorkflow, req, "reattach")
	} else {
		// The counter restarts with the process while claims outlive it:
		// skip ids that earlier rehearsals claimed, as GitHub never reuses
		// a run id. Claims are finite, so this ends.
		for {
			s.mu.Lock()
			s.nextRun++
			runID = strconv.Itoa(s.nextRun)
			s.mu.Unlock()
			err := claim(runID)
			if err == nil {
				break
			}
			if !errors.Is(err, runbook.ErrClaimed) {
				return runbook.Result{}, fmt.Errorf("dispatch simulated %s: %w", file, err)
			}
		}
		// Saved before the dispatch "happens", as the real adapter does.
		if err := req.Save(ctx, map[string]string{"run_id": runID}); err != nil {
			return runbook.Result{}, err
		}
		s.record(runbook.KindWorkflow, req, "dispatch")
	}
	link := runbook.Link{Label: file + " run #" + runID, URL: fmt.Sprintf("https://github.com/%s/actions/runs/%s", repo, runID)}
	if !attached {
		req.Progress(ctx, fmt.Sprintf("dispatched %s on %s@%s: queued", file, repo, ref), link)
	}
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	req.Progress(ctx, file+" run #"+runID+": in progress", link)
	if err := s.wait(ctx, 3); err != nil {
		return runbook.Result{}, err
	}
	if slices.Contains(s.opts.FailWorkflow, file) {
		return runbook.Result{Links: []runbook.Link{link}}, fmt.Errorf("workflow %s run #%s concluded failure (%s)", file, runID, link.URL)
	}
	return runbook.Result{Summary: fmt.Sprintf("%s run #%s succeeded", file, runID), Links: []runbook.Link{link}}, nil
}

func (s *Sim) branchWithChange(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeBranchChange(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	repo, branch, file, set := spec.Repo.String(), spec.Branch, spec.File, spec.Set
	s.record(runbook.KindBranchWithChange, req, "commit")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	return runbook.Result{
		Summary:  fmt.Sprintf("branch %s created with %s changed (%s)", branch, file, strings.Join(runbook.SortedKeys(set), ", ")),
		Links:    []runbook.Link{{Label: "branch " + branch, URL: fmt.Sprintf("https://github.com/%s/tree/%s", repo, branch)}},
		Remember: branch,
	}, nil
}

func (s *Sim) scale(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeScale(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	ns, target := spec.Namespace, spec.Counts()
	prev := map[string]int{}
	if cp := req.Checkpoint; len(cp) > 0 {
		for name, v := range cp {
			prev[name], _ = strconv.Atoi(v)
		}
	} else {
		s.mu.Lock()
		for i, name := range runbook.SortedKeys(target) {
			prev[name] = s.replicaLocked(ns, name, i == 0)
		}
		s.mu.Unlock()
		cp := map[string]string{}
		for name, n := range prev {
			cp[name] = strconv.Itoa(n)
		}
		if err := req.Save(ctx, cp); err != nil {
			return runbook.Result{}, err
		}
	}
	var parts []string
	for _, name := range runbook.SortedKeys(target) {
		s.mu.Lock()
		s.replicas[ns+"/"+name] = target[name]
		s.mu.Unlock()
		parts = append(parts, fmt.Sprintf("%s/%s %d→%d", ns, name, prev[name], target[name]))
	}
	s.record(runbook.KindScale, req, "scale")
	req.Progress(ctx, "waiting for the rollout: "+strings.Join(parts, ", "))
	if err := s.wait(ctx, 2); err != nil {
		return runbook.Result{}, err
	}
	return runbook.Result{Summary: "scaled " + strings.Join(parts, ", "), Remember: prev}, nil
}

func (s *Sim) postgresWait(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeAzureServer(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	rg, server := spec.ResourceGroup, spec.Server
	s.record(runbook.KindPostgresWait, req, "wait")
	req.Progress(ctx, "server "+server+" is Provisioning")
	if err := s.wait(ctx, 2); err != nil {
		return runbook.Result{}, err
	}
	s.mu.Lock()
	s.servers[rg+"/"+server] = true
	s.mu.Unlock()
	return runbook.Result{Summary: "server " + server + " is Ready"}, nil
}

func (s *Sim) postgresDelete(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeAzureServer(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	rg, server := spec.ResourceGroup, spec.Server
	s.record(runbook.KindPostgresDelete, req, "delete")
	if err := s.wait(ctx, 2); err != nil {
		return runbook.Result{}, err
	}
	s.mu.Lock()
	delete(s.servers, rg+"/"+server)
	s.mu.Unlock()
	return runbook.Result{Summary: "server " + server + " deleted from " + rg}, nil
}

func (s *Sim) backupsList(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeBackups(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	account, container := spec.Account, spec.Container
	s.record(runbook.KindBackupsList, req, "list")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	backups := s.nightlies()
	chosen := backups[0]
	if spec.Prefer != "" {
		if !slices.Contains(backups, spec.Prefer) {
			return runbook.Result{}, fmt.Errorf("backup %s is not in %s/%s; the newest are %s", spec.Prefer, account, container, strings.Join(backups, "; "))
		}
		chosen = spec.Prefer
	}
	return runbook.Result{Summary: fmt.Sprintf("backups in %s/%s, newest first: %s; restoring %s", account, container, strings.Join(backups, "; "), chosen), Remember: chosen}, nil
}

func (s *Sim) httpCheck(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeHTTPCheck(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	s.record(runbook.KindHTTPCheck, req, "get")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	return runbook.Result{Summary: fmt.Sprintf("GET %s: HTTP %d in 84ms", spec.URL, spec.Status)}, nil
}
