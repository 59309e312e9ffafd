package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// GitHub is what the GitHub checks read (adapters/github implements it).
// Every call is a GET.
type GitHub interface {
	// Repository reads a repository and the permissions the API reports for
	// the credentials on it.
	Repository(ctx context.Context, repo string) (RepoInfo, error)
	// Branch reads a branch.
	Branch(ctx context.Context, repo, branch string) (BranchInfo, error)
	// ReviewProtection reads the required pull request reviews of a
	// branch's protection (Missing: no such rule).
	ReviewProtection(ctx context.Context, repo, branch string) (ProtectionInfo, error)
	// Workflow reads a workflow by its file name (Actions API).
	Workflow(ctx context.Context, repo, file string) (WorkflowInfo, error)
	// File reads a file at ref (contents API).
	File(ctx context.Context, repo, ref, path string) (FileInfo, error)
}

// RepoInfo is a repository as the API shows it to drbot's credentials.
type RepoInfo struct {
	Lookup Lookup
	// Permissions are the credentials' permissions on the repository
	// (admin, maintain, push, triage, pull); nil when the API did not say,
	// as for some GitHub App tokens.
	Permissions map[string]bool
}

// BranchInfo is a branch.
type BranchInfo struct {
	Lookup    Lookup
	Protected bool
}

// ProtectionInfo is a branch's required pull request reviews.
type ProtectionInfo struct {
	Lookup Lookup
	Count  int
}

// WorkflowInfo is a workflow known to GitHub Actions.
type WorkflowInfo struct {
	Lookup Lookup
	State  string // active, disabled_manually, disabled_inactivity…
	Path   string // .github/workflows/x.yml
}

// FileInfo is a file's content at a ref.
type FileInfo struct {
	Lookup  Lookup
	Content []byte
}

// GitHubTarget is what the runbooks do on GitHub for one service and
// environment.
type GitHubTarget struct {
	Repo string
	// RepoKey is the drbot.yaml key of the repository.
	RepoKey string
	// Branches are the branches steps use (refs of dispatches, the branch
	// whose protection changes, the base of the tfvars change), with the
	// drbot.yaml key that names them.
	Branches  []string
	BranchKey string
	// Protection names the branches whose required approvals a step
	// changes.
	Protection []string
	Workflows  []WorkflowUse
	TFVars     []TFVarsUse
}

// WorkflowUse is a workflow dispatch drbot would make.
type WorkflowUse struct {
	File, Ref string
	// Key is the drbot.yaml key of the workflow and its inputs, e.g.
	// services.itt-mentor-services.workflows.deploy.
	Key string
	// Inputs are the values drbot would send, rendered with sample run
	// inputs; Pending names the ones known only when the run gets there
	// (a remembered server name), whose values are not checked.
	Inputs  map[string]string
	Pending map[string]bool
	// Steps are the runbook steps that dispatch it, e.g. scenario-2/ptr.
	Steps []string
}

// TFVarsUse is a change of keys in a JSON tfvars file on a branch.
type TFVarsUse struct {
	File, Ref string
	Keys      []string
	Key       string // the drbot.yaml key, e.g. services.s.environments.e.tfvars_set
}

func checkGitHub(ctx context.Context, gh GitHub, t GitHubTarget) []Check {
	var out []Check
	add := func(name string, st Status, detail, fix string) {
		out = append(out, Check{Family: FamilyGitHub, Name: name, Status: st, Detail: detail, Fix: fix})
	}
	repo, err := gh.Repository(ctx, t.Repo)
	switch {
	case err != nil:
		add("repository "+t.Repo, Fail, err.Error(), "")
		return out
	case repo.Lookup != Found:
		add("repository "+t.Repo, Fail, "not found, or the credentials cannot see it",
			fmt.Sprintf("check %s in drbot.yaml, and give the token (or GitHub App installation) access to the repository", t.RepoKey))
		return out
	}
	add("repository "+t.Repo, OK, "found"+permissionText(repo.Permissions), "")

	for _, b := range t.Branches {
		info, err := gh.Branch(ctx, t.Repo, b)
		switch {
		case err != nil:
			add("branch "+b, Fail, err.Error(), "")
		case info.Lookup != Found:
			add("branch "+b, Fail, fmt.Sprintf("branch %s not found in %s", b, t.Repo), "check "+t.BranchKey+" in drbot.yaml")
		default:
			add("branch "+b, OK, "found"+map[bool]string{true: ", protected", false: ""}[info.Protected], "")
		}
	}
	for _, b := range t.Protection {
		st, detail, fix := protectionCheck(ctx, gh, t.Repo, b, repo.Permissions)
		add("branch protection "+b, st, detail, fix)
	}

	files := map[string]fileRead{}
	labels := useLabels(t.Workflows)
	for i, use := range t.Workflows {
		out = append(out, checkWorkflow(ctx, gh, t.Repo, use, labels[i], files)...)
	}
	for _, tf := range t.TFVars {
		st, detail, fix := tfvarsCheck(ctx, gh, t.Repo, tf)
		add("tfvars "+tf.File, st, detail, fix)
	}
	return out
}

func permissionText(p map[string]bool) string {
	if p == nil {
		return ""
	}
	var have []string
	for _, k := range []string{"admin", "maintain", "push", "pull"} {
		if p[k] {
			have = append(have, k)
		}
	}
	if len(have) == 0 {
		return ", credentials may only read"
	}
	return ", credentials have " + strings.Join(have, ", ")
}

// adminFix is what a token needs to change branch protection.
const adminFix = "give the token admin on the repository (fine-grained token or GitHub App: Administration read and write; classic token: repo scope, as a repository admin)"

// protectionCheck tells whether the credentials may read and change the
// required reviews of a branch: the API's permissions say whether they may
// change it (admin), the read says the rule exists.
func protectionCheck(ctx context.Context, gh GitHub, repo, branch string, perms map[string]bool) (Status, string, string) {
	if perms != nil && !perms["admin"] {
		return Fail, fmt.Sprintf("the credentials are not admin of %s (GitHub reports %s), so the freeze step cannot change the required approvals", repo, permissionText(perms)[2:]), adminFix
	}
	info, err := gh.ReviewProtection(ctx, repo, branch)
	switch {
	case err != nil:
		return Fail, err.Error(), adminFix
	case info.Lookup == Forbidden:
		return Fail, "GitHub refuses to show the branch protection to these credentials", adminFix
	case info.Lookup == Missing:
		return Fail, fmt.Sprintf("%s has no protection rule that requires pull request reviews; the freeze step changes that rule's count", branch),
			fmt.Sprintf("add a branch protection rule on %s requiring pull request reviews (Settings → Branches)", branch)
	case perms == nil:
		return Warn, fmt.Sprintf("required approvals: %d; readable, but GitHub does not say whether these credentials may change it", info.Count), adminFix
	}
	return OK, fmt.Sprintf("required approvals: %d; the credentials are admin and may change it", info.Count), ""
}

// fileRead is a workflow file read once per target.
type fileRead struct {
	checks   []Check // what the first read found, when it ends the checks
	dispatch Dispatch
}

func checkWorkflow(ctx context.Context, gh GitHub, repo string, use WorkflowUse, label string, cache map[string]fileRead) []Check {
	name := "workflow " + use.File
	if label != "" {
		name += " (" + label + ")"
	}
	check := func(st Status, detail, fix string) Check {
		return Check{Family: FamilyGitHub, Name: name, Status: st, Detail: detail, Fix: fix}
	}
	wfPath := ".github/workflows/" + path.Base(use.File)
	where := use.File + " on " + use.Ref
	cacheKey := use.File + "@" + use.Ref
	read, ok := cache[cacheKey]
	if !ok {
		read = readWorkflow(ctx, gh, repo, use, wfPath)
		for i := range read.checks {
			read.checks[i].Name = "workflow " + use.File
		}
		cache[cacheKey] = read
		if read.checks != nil {
			return read.checks
		}
	} else if read.checks != nil {
		return nil // reported once
	}
	d := read.dispatch
	if !d.Trigger {
		line := ""
		if d.OnLine > 0 {
			line = fmt.Sprintf(" (line %d)", d.OnLine)
		}
		return []Check{check(Fail, where+" has no workflow_dispatch trigger, so drbot cannot start it",
			fmt.Sprintf("add workflow_dispatch to `on:` in %s%s, or name another file in %s.file", wfPath, line, use.Key))}
	}
	problems := CheckDispatch(d, use.Inputs, use.Pending)
	if len(problems) == 0 {
		detail := fmt.Sprintf("active, workflow_dispatch declares %d inputs; drbot's %d fit", len(d.Inputs), len(use.Inputs))
		if len(use.Steps) > 0 {
			detail += " (" + strings.Join(use.Steps, ", ") + ")"
		}
		return []Check{check(OK, detail, "")}
	}
	var out []Check
	for _, p := range problems {
		fix := p.Fix
		if p.Line > 0 {
			fix = fmt.Sprintf("%s (%s line %d; drbot.yaml %s.inputs)", fix, wfPath, p.Line, use.Key)
		} else {
			fix = fmt.Sprintf("%s (drbot.yaml %s.inputs)", fix, use.Key)
		}
		detail := p.Text
		if len(use.Steps) > 0 {
			detail += "; used by " + strings.Join(use.Steps, ", ")
		}
		out = append(out, check(Fail, detail, fix))
	}
	return out
}

// useLabels tells apart the uses of one workflow file: by the short inputs
// whose values differ between them (mode=enable, mode=disable), else by
// the first step that makes the dispatch.
func useLabels(uses []WorkflowUse) []string {
	out := make([]string, len(uses))
	for i, u := range uses {
		var others []WorkflowUse
		for j, o := range uses {
			if j != i && o.File == u.File {
				others = append(others, o)
			}
		}
		if len(others) == 0 {
			continue
		}
		var parts []string
		for _, k := range sortedKeys(u.Inputs) {
			v := u.Inputs[k]
			if u.Pending[k] || len(v) > 24 {
				continue
			}
			for _, o := range others {
				if o.Inputs[k] != v {
					parts = append(parts, k+"="+v)
					break
				}
			}
		}
		switch {
		case len(parts) > 0 && len(parts) <= 2:
			out[i] = strings.Join(parts, ", ")
		case len(u.Steps) > 0:
			out[i] = u.Steps[0]
		}
	}
	return out
}

// readWorkflow finds the workflow in Actions (it exists and is active) and
// reads its file at the ref. checks is set when something stops the checks.
func readWorkflow(ctx context.Context, gh GitHub, repo string, use WorkflowUse, wfPath string) fileRead {
	fail := func(detail, fix string) fileRead {
		return fileRead{checks: []Check{{Family: FamilyGitHub, Status: Fail, Detail: detail, Fix: fix}}}
	}
	wf, err := gh.Workflow(ctx, repo, path.Base(use.File))
	switch {
	case err != nil:
		return fail(err.Error(), "")
	case wf.Lookup == Forbidden:
		return fail("the credentials may not read Actions workflows of "+repo, "give the token Actions: read and write on the repository")
	case wf.Lookup == Missing:
		return fail(fmt.Sprintf("GitHub Actions has no workflow %s in %s", use.File, repo),
			fmt.Sprintf("name an existing workflow file in %s.file (drbot.yaml); a workflow must be on the default branch to be dispatched", use.Key))
	case wf.State != "active":
		return fail(fmt.Sprintf("workflow %s is %s", use.File, wf.State), "enable the workflow in the repository's Actions tab")
	}
	f, err := gh.File(ctx, repo, use.Ref, wfPath)
	switch {
	case err != nil:
		return fail(err.Error(), "")
	case f.Lookup != Found:
		return fail(fmt.Sprintf("%s is not on %s (drbot dispatches it on that ref)", wfPath, use.Ref),
			fmt.Sprintf("merge the workflow into %s, or change the branch in drbot.yaml", use.Ref))
	}
	d, err := ParseWorkflow(f.Content)
	if err != nil {
		return fail(fmt.Sprintf("%s on %s: %v", wfPath, use.Ref, err), "fix the workflow file")
	}
	return fileRead{dispatch: d}
}

func tfvarsCheck(ctx context.Context, gh GitHub, repo string, tf TFVarsUse) (Status, string, string) {
	f, err := gh.File(ctx, repo, tf.Ref, tf.File)
	switch {
	case err != nil:
		return Fail, err.Error(), ""
	case f.Lookup != Found:
		return Fail, fmt.Sprintf("%s is not on %s", tf.File, tf.Ref), fmt.Sprintf("check %s (tfvars_file) in drbot.yaml", strings.TrimSuffix(tf.Key, "_set")+"_file")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(f.Content, &doc); err != nil {
		return Fail, fmt.Sprintf("%s is not a JSON object: %v", tf.File, err), "drbot changes JSON tfvars files (*.tfvars.json)"
	}
	var missing []string
	for _, k := range tf.Keys {
		if _, ok := doc[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return Fail, fmt.Sprintf("%s on %s has no key %s, which the scenario 1 change sets", tf.File, tf.Ref, strings.Join(missing, ", ")),
			fmt.Sprintf("add %s to %s, or fix %s in drbot.yaml", strings.Join(missing, ", "), tf.File, tf.Key)
	}
	return OK, fmt.Sprintf("on %s, holds %s", tf.Ref, strings.Join(tf.Keys, ", ")), ""
}
