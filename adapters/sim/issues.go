package sim

import (
	"context"
	"fmt"

	"github.com/drbot-dev/drbot/runbook"
)

// CreateIssue pretends to open a follow-up issue: it is recorded (a call
// of kind github.issue) and its link says SIMULATED.
func (s *Sim) CreateIssue(_ context.Context, repo, title, body string) (runbook.Link, error) {
	s.record("github.issue", runbook.Request{Params: runbook.Params{"repo": repo, "title": title, "body": body}}, "create")
	s.mu.Lock()
	s.nextRun++
	n := s.nextRun
	s.mu.Unlock()
	return runbook.Link{Label: fmt.Sprintf("SIMULATED: %s#%d: %s", repo, n, title), URL: fmt.Sprintf("https://github.com/%s/issues/%d", repo, n)}, nil
}
