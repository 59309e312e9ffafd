package github_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

const (
	testRepo  = "DFE-Digital/itt-mentor-services"
	testToken = "ghp_testtoken"
)

// newFake starts a fake GitHub that accepts testToken.
func newFake(t *testing.T) *githubtest.Server {
	t.Helper()
	return githubtest.New(t, githubtest.Config{Token: testToken})
}

// newClient builds a client for srv on srv's clock, polling every 10 s of
// simulated time. opts may change the options first.
func newClient(t *testing.T, srv *githubtest.Server, opts ...func(*github.Options)) *github.Client {
	t.Helper()
	o := github.Options{
		BaseURL:      srv.URL(),
		Token:        testToken,
		HTTPClient:   srv.Client(),
		Logger:       zaptest.NewLogger(t),
		Clock:        srv.Clock(),
		PollInterval: 10 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := github.New(o)
	if err != nil {
		t.Fatalf("github.New: %v", err)
	}
	return c
}

// action returns the client's action of a kind.
func action(t *testing.T, c *github.Client, kind string) runbook.Action {
	t.Helper()
	a, ok := c.Actions()[kind]
	if !ok {
		t.Fatalf("no action %s", kind)
	}
	return a
}

// step records what an action saves, reports and claims while it runs.
type step struct {
	// runID and stepID name the step ("run-1", "step-1" if empty).
	runID, stepID string
	// claims, if set, keeps the claims, shared with other steps as the
	// engine's store is; otherwise every claim succeeds.
	claims *store.Store

	mu       sync.Mutex
	saves    []map[string]string
	progress []progressEvent
	taken    []string // resources claimed
	// onSave and onProgress, if set, run inside the callbacks.
	onSave     func(cp map[string]string)
	onProgress func(text string)
}

// newClaims opens a store to keep the claims of the steps of a test.
func newClaims(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (s *step) ids() (runID, stepID string) {
	runID, stepID = s.runID, s.stepID
	if runID == "" {
		runID = "run-1"
	}
	if stepID == "" {
		stepID = "step-1"
	}
	return runID, stepID
}

// claim is the step's Request.Claim.
func (s *step) claim(ctx context.Context, resource string) error {
	runID, stepID := s.ids()
	if s.claims != nil {
		if err := s.claims.Claim(ctx, runbook.Claim{Resource: resource, RunID: runID, StepID: stepID}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.taken, resource) {
		s.taken = append(s.taken, resource)
	}
	return nil
}

// claimOf is the step's Request.ClaimOf.
func (s *step) claimOf(ctx context.Context, resource string) (runbook.Claim, error) {
	if s.claims != nil {
		return s.claims.ClaimOf(ctx, resource)
	}
	return runbook.Claim{}, runbook.ErrNotFound
}

// claimed returns the resources the step claimed.
func (s *step) claimed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.taken)
}

type progressEvent struct {
	text  string
	links []runbook.Link
}

// request builds a Request whose callbacks record into s.
func (s *step) request(p runbook.Params, checkpoint map[string]string) runbook.Request {
	runID, stepID := s.ids()
	return runbook.Request{
		RunID: runID, StepID: stepID, Attempt: 1, Actor: "U123",
		Params: p, Checkpoint: checkpoint,
		Claim:   s.claim,
		ClaimOf: s.claimOf,
		Save: func(_ context.Context, cp map[string]string) error {
			s.mu.Lock()
			s.saves = append(s.saves, maps.Clone(cp))
			f := s.onSave
			s.mu.Unlock()
			if f != nil {
				f(cp)
			}
			return nil
		},
		Progress: func(_ context.Context, text string, links ...runbook.Link) {
			s.mu.Lock()
			s.progress = append(s.progress, progressEvent{text, links})
			f := s.onProgress
			s.mu.Unlock()
			if f != nil {
				f(text)
			}
		},
	}
}

// checkpoint returns the last checkpoint saved.
func (s *step) checkpoint() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saves) == 0 {
		return nil
	}
	return maps.Clone(s.saves[len(s.saves)-1])
}

// texts returns the progress texts reported.
func (s *step) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.progress))
	for _, p := range s.progress {
		out = append(out, p.text)
	}
	return out
}
