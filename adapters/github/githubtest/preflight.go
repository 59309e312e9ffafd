package githubtest

import (
	"net/http"
	"path"
	"strings"
)

// access is what the read-only endpoints preflight uses report of a
// repository beyond its files: the credentials' permissions and the
// workflows disabled in the Actions tab.
type access struct {
	// perms overrides the default permissions (all true); hidePerms leaves
	// the field out, as GitHub does for some App tokens.
	perms     map[string]bool
	hidePerms bool
	disabled  map[string]string // workflow file -> state
}

// SetPermissions sets the permissions GET /repos/{owner}/{repo} reports for
// the credentials, e.g. {"admin": false, "push": true, "pull": true} for a
// token without admin. The default is every permission.
func (s *Server) SetPermissions(repo string, perms map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).access.perms = perms
}

// HidePermissions leaves permissions out of GET /repos/{owner}/{repo}.
func (s *Server) HidePermissions(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).access.hidePerms = true
}

// DisableWorkflow gives a workflow a state other than active, e.g.
// disabled_manually.
func (s *Server) DisableWorkflow(repo, file, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.repo(repo).access
	if a.disabled == nil {
		a.disabled = map[string]string{}
	}
	a.disabled[file] = state
}

func (s *Server) preflightRoutes(m *http.ServeMux, p func(method, path string) string) {
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}"), s.getRepo)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/branches/{branch}"), s.getBranch)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/actions/workflows/{file}"), s.getWorkflow)
}

// existing returns a repository the test set up (or an earlier request
// named), without creating one. Callers hold s.mu.
func (s *Server) existing(name string) *repo {
	return s.repos[name]
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := repoName(r)
	rp := s.existing(name)
	if rp == nil {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	out := map[string]any{"full_name": name, "name": r.PathValue("repo"), "html_url": s.WebURL() + name}
	if !rp.access.hidePerms {
		perms := map[string]bool{"admin": true, "maintain": true, "push": true, "triage": true, "pull": true}
		if rp.access.perms != nil {
			perms = rp.access.perms
		}
		out["permissions"] = perms
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, branch := s.existing(repoName(r)), r.PathValue("branch")
	if rp == nil || rp.refs[branch] == "" {
		writeJSON(w, http.StatusNotFound, msg("Branch not found"))
		return
	}
	_, protected := rp.reviews[branch]
	writeJSON(w, http.StatusOK, map[string]any{"name": branch, "protected": protected, "commit": map[string]any{"sha": rp.refs[branch]}})
}

// getWorkflow answers a workflow that is a file under .github/workflows on
// any branch (GitHub lists those of the default branch), active unless
// disabled.
func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, file := s.existing(repoName(r)), path.Base(r.PathValue("file"))
	found := false
	if rp != nil {
		for _, sha := range rp.refs {
			if c := rp.commits[sha]; c != nil {
				if _, ok := c.files[".github/workflows/"+file]; ok {
					found = true
				}
			}
		}
	}
	if !found {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	state := "active"
	if st, ok := rp.access.disabled[file]; ok {
		state = st
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": workflowID(file), "name": strings.TrimSuffix(file, path.Ext(file)), "path": ".github/workflows/" + file, "state": state,
	})
}

// workflowID is a stable id for a workflow file.
func workflowID(file string) int64 {
	var h int64 = 7
	for _, c := range file {
		h = (h*31 + int64(c)) % 1_000_000_007
	}
	return h
}

// appPermissions are the permissions of the app's installation tokens.
func (s *Server) appPermissions() map[string]string {
	if p := s.cfg.App.Permissions; p != nil {
		return p
	}
	return map[string]string{"actions": "write", "administration": "write", "contents": "write"}
}
