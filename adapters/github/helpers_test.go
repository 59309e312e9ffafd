package github_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
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

// step records what an action saves and reports while it runs.
type step struct {
	mu       sync.Mutex
	saves    []map[string]string
	progress []progressEvent
	// onSave and onProgress, if set, run inside the callbacks.
	onSave     func(cp map[string]string)
	onProgress func(text string)
}

type progressEvent struct {
	text  string
	links []runbook.Link
}

// request builds a Request whose callbacks record into s.
func (s *step) request(p runbook.Params, checkpoint map[string]string) runbook.Request {
	return runbook.Request{
		RunID: "run-1", StepID: "step-1", Attempt: 1, Actor: "U123",
		Params: p, Checkpoint: checkpoint,
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
