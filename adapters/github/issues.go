package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/drbot-dev/drbot/runbook"
)

// CreateIssue opens an issue in repo (owner/name): a follow-up raised after
// a run. It is sent once (writeAttempts): a lost answer must not open a
// second issue, so a failure is reported for a person to look and retry.
func (c *Client) CreateIssue(ctx context.Context, repo, title, body string) (runbook.Link, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return runbook.Link{}, fmt.Errorf("create issue: repository %q is not owner/name", repo)
	}
	var issue *gh.Issue
	err := c.call(ctx, writeAttempts, func(ctx context.Context) (err error) {
		issue, _, err = c.gh.Issues.Create(ctx, owner, name, &gh.IssueRequest{Title: gh.String(title), Body: gh.String(body)})
		return err
	})
	if err != nil {
		return runbook.Link{}, fmt.Errorf("create issue in %s: %w", repo, err)
	}
	u := issue.GetHTMLURL()
	if u == "" {
		u = c.link(repo, fmt.Sprintf("issues/%d", issue.GetNumber()))
	}
	return runbook.Link{Label: fmt.Sprintf("%s#%d: %s", repo, issue.GetNumber(), title), URL: u}, nil
}
