package github

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/drbot-dev/drbot/preflight"
)

var _ preflight.GitHub = (*Client)(nil)

// lookupOf classifies a read's error for preflight: 404 is Missing, 403 (and
// a 401 on one repository) Forbidden; anything else stays an error.
func lookupOf(err error) (preflight.Lookup, error) {
	switch statusOf(err) {
	case 0:
		if err == nil {
			return preflight.Found, nil
		}
	case http.StatusNotFound:
		return preflight.Missing, nil
	case http.StatusForbidden:
		return preflight.Forbidden, nil
	}
	return preflight.Missing, err
}

// Repository reads a repository and the permissions GitHub reports for the
// credentials (GET /repos/{owner}/{repo}).
func (c *Client) Repository(ctx context.Context, repo string) (preflight.RepoInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return preflight.RepoInfo{}, err
	}
	var r *gh.Repository
	err = c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		r, _, err = c.gh.Repositories.Get(ctx, owner, name)
		return err
	})
	look, err := lookupOf(err)
	if err != nil || look != preflight.Found {
		return preflight.RepoInfo{Lookup: look}, wrap("read repository "+repo, err)
	}
	perms := r.Permissions
	if perms == nil && c.app != nil {
		perms = c.app.repoPermissions()
	}
	return preflight.RepoInfo{Lookup: look, Permissions: perms}, nil
}

// repoPermissions words an installation token's permissions (issued with
// the token, for every repository of the installation) as a repository's
// permissions: Administration write is admin, Contents write is push. Nil
// when no token was issued yet.
func (t *appTransport) repoPermissions() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perms == nil {
		return nil
	}
	return map[string]bool{
		"admin": t.perms.GetAdministration() == "write",
		"push":  t.perms.GetContents() == "write",
		"pull":  t.perms.GetContents() != "",
	}
}

// Branch reads a branch (GET /repos/{owner}/{repo}/branches/{branch}); a
// renamed branch's redirect is not followed: drbot would use the old name.
func (c *Client) Branch(ctx context.Context, repo, branch string) (preflight.BranchInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return preflight.BranchInfo{}, err
	}
	var b *gh.Branch
	var status int
	err = c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		var resp *gh.Response
		b, resp, err = c.gh.Repositories.GetBranch(ctx, owner, name, branch, 0)
		if resp != nil {
			status = resp.StatusCode
		}
		return err
	})
	// GetBranch reports a status other than 200 in a plain error, not an
	// ErrorResponse; a 301 is a renamed branch, which drbot would not follow.
	switch status {
	case http.StatusNotFound, http.StatusMovedPermanently:
		return preflight.BranchInfo{Lookup: preflight.Missing}, nil
	case http.StatusForbidden:
		return preflight.BranchInfo{Lookup: preflight.Forbidden}, nil
	}
	look, err := lookupOf(err)
	if err != nil || look != preflight.Found {
		return preflight.BranchInfo{Lookup: look}, wrap(fmt.Sprintf("read branch %s of %s", branch, repo), err)
	}
	return preflight.BranchInfo{Lookup: look, Protected: b.GetProtected()}, nil
}

// ReviewProtection reads the required pull request reviews of a branch, the
// rule the freeze step changes (GET .../protection/required_pull_request_reviews).
func (c *Client) ReviewProtection(ctx context.Context, repo, branch string) (preflight.ProtectionInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return preflight.ProtectionInfo{}, err
	}
	var p *gh.PullRequestReviewsEnforcement
	err = c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		p, _, err = c.gh.Repositories.GetPullRequestReviewEnforcement(ctx, owner, name, branch)
		return err
	})
	look, err := lookupOf(err)
	if err != nil || look != preflight.Found {
		return preflight.ProtectionInfo{Lookup: look}, wrap(fmt.Sprintf("read branch protection of %s@%s", repo, branch), err)
	}
	return preflight.ProtectionInfo{Lookup: look, Count: p.RequiredApprovingReviewCount}, nil
}

// Workflow reads a workflow by file name (GET .../actions/workflows/{file}).
func (c *Client) Workflow(ctx context.Context, repo, file string) (preflight.WorkflowInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return preflight.WorkflowInfo{}, err
	}
	var w *gh.Workflow
	err = c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		w, _, err = c.gh.Actions.GetWorkflowByFileName(ctx, owner, name, file)
		return err
	})
	look, err := lookupOf(err)
	if err != nil || look != preflight.Found {
		return preflight.WorkflowInfo{Lookup: look}, wrap(fmt.Sprintf("read workflow %s of %s", file, repo), err)
	}
	return preflight.WorkflowInfo{Lookup: look, State: w.GetState(), Path: w.GetPath()}, nil
}

// File reads a file at a ref through the contents API.
func (c *Client) File(ctx context.Context, repo, ref, path string) (preflight.FileInfo, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return preflight.FileInfo{}, err
	}
	var f *gh.RepositoryContent
	err = c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		f, _, _, err = c.gh.Repositories.GetContents(ctx, owner, name, path, &gh.RepositoryContentGetOptions{Ref: ref})
		return err
	})
	look, err := lookupOf(err)
	if err != nil || look != preflight.Found {
		return preflight.FileInfo{Lookup: look}, wrap(fmt.Sprintf("read %s of %s at %s", path, repo, ref), err)
	}
	if f == nil {
		return preflight.FileInfo{Lookup: preflight.Missing}, nil // a directory
	}
	content, err := f.GetContent()
	if err != nil {
		return preflight.FileInfo{}, fmt.Errorf("decode %s of %s: %w", path, repo, err)
	}
	return preflight.FileInfo{Lookup: look, Content: []byte(content)}, nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// splitRepo splits owner/name.
func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("repository %q is not owner/name", repo)
	}
	return owner, name, nil
}
