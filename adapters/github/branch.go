package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Checkpoint keys of the branch action.
const (
	ckBaseSHA   = "base_sha"   // the commit the branch was created at
	ckCommitSHA = "commit_sha" // drbot's commit on the branch
)

// BranchAction creates a branch from a base branch and commits a change to a
// JSON file on it (kind github.branch_with_change), e.g. scenario 1's
// `send_traffic_to_maintenance_page: true` in an environment's tfvars JSON.
// The file is edited as text, so its formatting survives. Result.Remember is
// the branch name.
type BranchAction struct{ c *Client }

var _ runbook.Action = (*BranchAction)(nil)

// branchChange is one step's change.
type branchChange struct {
	owner, repo  string
	base, branch string
	file         string
	set          map[string]string
	message      string
}

func (b branchChange) fullRepo() string { return b.owner + "/" + b.repo }

// parseBranchChange reads the step through the kind's one contract.
func parseBranchChange(p runbook.Params) (branchChange, error) {
	spec, err := runbook.DecodeBranchChange(p)
	if err != nil {
		return branchChange{}, err
	}
	return branchChange{owner: spec.Repo.Owner, repo: spec.Repo.Name, base: spec.Base, branch: spec.Branch, file: spec.File, set: spec.Set, message: spec.Message}, nil
}

// Run creates the branch (or re-attaches to the one it created) and commits
// the change unless the file on the branch already holds it.
func (a *BranchAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	b, err := parseBranchChange(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	ctx, log := a.c.stepLogger(ctx, req, zap.String("repo", b.fullRepo()), zap.String("branch", b.branch))
	cp := copyCheckpoint(req.Checkpoint)
	branchLink := runbook.Link{Label: "branch " + b.branch, URL: a.c.link(b.fullRepo(), "tree/"+b.branch)}

	baseSHA, err := a.refSHA(ctx, b, b.base)
	if err != nil {
		return runbook.Result{}, err
	}
	if baseSHA == "" {
		return runbook.Result{}, fmt.Errorf("create branch %s in %s: base branch %s not found", b.branch, b.fullRepo(), b.base)
	}
	head, err := a.refSHA(ctx, b, b.branch)
	if err != nil {
		return runbook.Result{}, err
	}
	if head == "" {
		if head, err = a.createBranch(ctx, req, b, cp, baseSHA); err != nil {
			return runbook.Result{}, err
		}
		log.Info("branch created", zap.String("sha", head))
	}

	content, blobSHA, err := a.file(ctx, b)
	if err != nil {
		return runbook.Result{}, err
	}
	values := make(map[string]json.RawMessage, len(b.set))
	for k, v := range b.set {
		values[k] = jsonValue(v)
	}
	edited, changed, err := setTopLevel(content, values)
	if err != nil {
		return runbook.Result{}, fmt.Errorf("edit %s on %s/%s: %w", b.file, b.fullRepo(), b.branch, err)
	}

	// A branch that was there before must be ours, or plain base plus our change.
	ours := head == baseSHA || head == cp[ckBaseSHA] || head == cp[ckCommitSHA]
	if !ours && !changed {
		ours, err = a.childOf(ctx, b, head, baseSHA, cp[ckBaseSHA])
		if err != nil {
			return runbook.Result{}, err
		}
	}
	if !ours {
		return runbook.Result{}, fmt.Errorf("create branch %s in %s: it already exists with other commits (at %.7s, base %s is at %.7s); delete it or name another branch",
			b.branch, b.fullRepo(), head, b.base, baseSHA)
	}
	if !changed {
		log.Info("file already holds the change")
		return runbook.Result{
			Summary:  fmt.Sprintf("branch %s of %s already sets %s in %s; no new commit", b.branch, b.fullRepo(), formatSet(b.set), b.file),
			Links:    []runbook.Link{branchLink},
			Remember: b.branch,
		}, nil
	}

	commit, err := a.commit(ctx, b, edited, blobSHA)
	if err != nil {
		return runbook.Result{}, err
	}
	cp[ckCommitSHA] = commit.GetSHA()
	if err := save(ctx, req, cp); err != nil {
		log.Warn("checkpoint not saved", zap.Error(err))
	}
	log.Info("change committed", zap.String("sha", commit.GetSHA()))
	commitURL := commit.GetHTMLURL()
	if commitURL == "" {
		commitURL = a.c.link(b.fullRepo(), "commit/"+commit.GetSHA())
	}
	return runbook.Result{
		Summary: fmt.Sprintf("created branch %s from %s@%s and committed %s to %s",
			b.branch, b.fullRepo(), b.base, formatSet(b.set), b.file),
		Links:    []runbook.Link{branchLink, {Label: fmt.Sprintf("commit %.7s", commit.GetSHA()), URL: commitURL}},
		Remember: b.branch,
	}, nil
}

// refSHA returns the commit a branch points at, or "" if there is no such branch.
func (a *BranchAction) refSHA(ctx context.Context, b branchChange, branch string) (string, error) {
	var ref *gh.Reference
	err := a.c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		ref, _, err = a.c.gh.Git.GetRef(ctx, b.owner, b.repo, "heads/"+branch)
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read branch %s of %s: %w", branch, b.fullRepo(), err)
	}
	return ref.GetObject().GetSHA(), nil
}

// createBranch saves the base commit, then creates the branch at it. If the
// branch appeared meanwhile, its head is returned for the caller to judge.
func (a *BranchAction) createBranch(ctx context.Context, req runbook.Request, b branchChange, cp map[string]string, baseSHA string) (string, error) {
	cp[ckBaseSHA] = baseSHA
	if err := save(ctx, req, cp); err != nil {
		return "", runbook.Retryable(fmt.Errorf("save checkpoint: %w", err))
	}
	err := a.c.call(ctx, writeAttempts, func(ctx context.Context) error {
		_, _, err := a.c.gh.Git.CreateRef(ctx, b.owner, b.repo, &gh.Reference{
			Ref:    gh.String("refs/heads/" + b.branch),
			Object: &gh.GitObject{SHA: gh.String(baseSHA)},
		})
		return err
	})
	if statusOf(err) == http.StatusUnprocessableEntity || transient(err) {
		// "Reference already exists", or an answer lost on the way: read it back.
		if head, rerr := a.refSHA(ctx, b, b.branch); rerr == nil && head != "" {
			return head, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("create branch %s in %s from %s: %w", b.branch, b.fullRepo(), b.base, refError(err))
	}
	return baseSHA, nil
}

// childOf reports whether commit's only parent is one of the bases: the
// branch holds exactly one commit on top of the base (ours, made before a
// crash, or a person's identical change).
func (a *BranchAction) childOf(ctx context.Context, b branchChange, commit string, bases ...string) (bool, error) {
	var c *gh.Commit
	err := a.c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		c, _, err = a.c.gh.Git.GetCommit(ctx, b.owner, b.repo, commit)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read commit %.7s of %s: %w", commit, b.fullRepo(), err)
	}
	if len(c.Parents) != 1 {
		return false, nil
	}
	for _, base := range bases {
		if base != "" && c.Parents[0].GetSHA() == base {
			return true, nil
		}
	}
	return false, nil
}

// file reads the file on the branch: its bytes and blob sha.
func (a *BranchAction) file(ctx context.Context, b branchChange) ([]byte, string, error) {
	var fc *gh.RepositoryContent
	err := a.c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		fc, _, _, err = a.c.gh.Repositories.GetContents(ctx, b.owner, b.repo, b.file, &gh.RepositoryContentGetOptions{Ref: b.branch})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("read %s on %s/%s: %w", b.file, b.fullRepo(), b.branch, err)
	}
	if fc == nil {
		return nil, "", fmt.Errorf("read %s on %s/%s: it is a directory", b.file, b.fullRepo(), b.branch)
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, "", fmt.Errorf("read %s on %s/%s: %w", b.file, b.fullRepo(), b.branch, err)
	}
	return []byte(s), fc.GetSHA(), nil
}

// commit writes the file on the branch with the contents API.
func (a *BranchAction) commit(ctx context.Context, b branchChange, content []byte, blobSHA string) (gh.Commit, error) {
	var res *gh.RepositoryContentResponse
	err := a.c.call(ctx, writeAttempts, func(ctx context.Context) (err error) {
		res, _, err = a.c.gh.Repositories.UpdateFile(ctx, b.owner, b.repo, b.file, &gh.RepositoryContentFileOptions{
			Message: gh.String(b.message),
			Content: content,
			SHA:     gh.String(blobSHA),
			Branch:  gh.String(b.branch),
		})
		return err
	})
	if err != nil {
		return gh.Commit{}, fmt.Errorf("commit %s on %s/%s: %w", b.file, b.fullRepo(), b.branch, refError(err))
	}
	return res.Commit, nil
}

// refError says what permission a refused write needs.
func refError(err error) error {
	if s := statusOf(err); s == http.StatusForbidden || s == http.StatusNotFound {
		return fmt.Errorf("needs a token with Contents: write on the repository: %w", err)
	}
	return err
}

func formatSet(set map[string]string) string {
	parts := make([]string, 0, len(set))
	for _, k := range runbook.SortedKeys(set) {
		parts = append(parts, k+": "+set[k])
	}
	return strings.Join(parts, ", ")
}
