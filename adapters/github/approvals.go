package github

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// ckPrevious is the checkpoint key of the count found before the first change.
const ckPrevious = "previous"

// ApprovalsAction sets the number of approving reviews a branch requires
// (kind github.required_approvals). It changes only that count, through the
// required_pull_request_reviews endpoint (a PATCH): the full branch
// protection update is a PUT that resets every rule the request omits.
// Result.Remember is the count found before the change, so a later step can
// restore it by calling the same action with the remembered count.
type ApprovalsAction struct{ c *Client }

var _ runbook.Action = (*ApprovalsAction)(nil)

// Run reads the current count, remembers it and sets the target.
func (a *ApprovalsAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeApprovals(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	owner, name, branch, target := spec.Repo.Owner, spec.Repo.Name, spec.Branch, spec.Count
	repo := owner + "/" + name
	ctx, log := a.c.stepLogger(ctx, req, zap.String("repo", repo), zap.String("branch", branch))
	link := runbook.Link{Label: "branch protection of " + repo, URL: a.c.link(repo, "settings/branches")}

	var current *gh.PullRequestReviewsEnforcement
	err = a.c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		current, _, err = a.c.gh.Repositories.GetPullRequestReviewEnforcement(ctx, owner, name, branch)
		return err
	})
	if err != nil {
		return runbook.Result{}, protectionError("read required approvals of", repo, branch, err)
	}
	now := current.RequiredApprovingReviewCount

	// On re-attach the checkpoint holds the count found before our change.
	cp := copyCheckpoint(req.Checkpoint)
	previous := now
	if s, ok := cp[ckPrevious]; ok {
		if n, err := strconv.Atoi(s); err == nil {
			previous = n
		}
	} else {
		cp[ckPrevious] = strconv.Itoa(now)
		if err := save(ctx, req, cp); err != nil {
			return runbook.Result{}, runbook.Retryable(fmt.Errorf("save checkpoint: %w", err))
		}
	}

	if now == target {
		log.Info("required approvals already at target", zap.Int("count", target))
		return runbook.Result{
			Summary:  fmt.Sprintf("required approvals on %s@%s already %d; nothing changed", repo, branch, target),
			Links:    []runbook.Link{link},
			Remember: previous,
		}, nil
	}

	err = a.c.call(ctx, readAttempts, func(ctx context.Context) error {
		// The PATCH is idempotent: sending it twice sets the same count.
		_, _, err := a.c.gh.Repositories.UpdatePullRequestReviewEnforcement(ctx, owner, name, branch,
			&gh.PullRequestReviewsEnforcementUpdate{RequiredApprovingReviewCount: target})
		return err
	})
	if err != nil {
		return runbook.Result{}, protectionError("set required approvals of", repo, branch, err)
	}
	log.Info("required approvals set", zap.Int("from", now), zap.Int("to", target))
	return runbook.Result{
		Summary:  fmt.Sprintf("required approvals on %s@%s: %d → %d", repo, branch, now, target),
		Links:    []runbook.Link{link},
		Remember: previous,
	}, nil
}

// protectionError says what is missing when GitHub refuses.
func protectionError(what, repo, branch string, err error) error {
	switch statusOf(err) {
	case http.StatusNotFound:
		return fmt.Errorf("%s %s@%s: GitHub says %q: the branch needs a protection rule that requires pull request reviews, and the token must be able to administer the repository (Administration: read and write): %w",
			what, repo, branch, messageOf(err), err)
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("%s %s@%s: needs a token with repo admin (Administration: write): %w", what, repo, branch, err)
	}
	return fmt.Errorf("%s %s@%s: %w", what, repo, branch, err)
}
