package githubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
)

// repo is one repository's state.
type repo struct {
	reviews   map[string]int // protected branch -> required_approving_review_count
	denyAdmin bool
	refs      map[string]string // branch -> commit sha
	commits   map[string]*commit
	workflows map[string]Workflow
	runNumber map[string]int // per workflow file
	access    access         // what GET /repos/{owner}/{repo} reports (preflight.go)
}

type commit struct {
	sha, parent, message string
	files                map[string][]byte
}

// repo returns the state of owner/name, creating it. Callers hold s.mu.
func (s *Server) repo(name string) *repo {
	r, ok := s.repos[name]
	if !ok {
		r = &repo{
			reviews:   map[string]int{},
			refs:      map[string]string{},
			commits:   map[string]*commit{},
			workflows: map[string]Workflow{},
			runNumber: map[string]int{},
		}
		s.repos[name] = r
	}
	return r
}

func repoName(r *http.Request) string { return r.PathValue("owner") + "/" + r.PathValue("repo") }

// SetReviewCount protects branch with a rule that requires n approving reviews.
func (s *Server) SetReviewCount(repo, branch string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).reviews[branch] = n
}

// ReviewCount returns the required approving review count of a protected branch.
func (s *Server) ReviewCount(repo, branch string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.repo(repo).reviews[branch]
	return n, ok
}

// DenyAdmin makes the branch protection endpoints of repo answer 403, as for
// a token without admin rights.
func (s *Server) DenyAdmin(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).denyAdmin = true
}

func (s *Server) getReviews(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, branch := s.repo(repoName(r)), r.PathValue("branch")
	if !s.protectionAllowed(w, rp, branch) {
		return
	}
	writeJSON(w, http.StatusOK, reviewsJSON(rp.reviews[branch]))
}

func (s *Server) patchReviews(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, branch := s.repo(repoName(r)), r.PathValue("branch")
	if !s.protectionAllowed(w, rp, branch) {
		return
	}
	var body map[string]any
	if !decode(w, r, &body) {
		return
	}
	if n, ok := body["required_approving_review_count"].(float64); ok {
		if n < 0 || n > 6 || n != float64(int(n)) {
			writeJSON(w, http.StatusUnprocessableEntity, msg("Invalid request.\n\nrequired_approving_review_count must be 0 to 6."))
			return
		}
		rp.reviews[branch] = int(n)
	}
	writeJSON(w, http.StatusOK, reviewsJSON(rp.reviews[branch]))
}

func (s *Server) protectionAllowed(w http.ResponseWriter, rp *repo, branch string) bool {
	if rp.denyAdmin {
		writeJSON(w, http.StatusForbidden, msg("Resource not accessible by integration"))
		return false
	}
	if _, ok := rp.reviews[branch]; !ok {
		writeJSON(w, http.StatusNotFound, msg("Branch not protected"))
		return false
	}
	return true
}

func reviewsJSON(n int) map[string]any {
	return map[string]any{
		"dismiss_stale_reviews":           true,
		"require_code_owner_reviews":      false,
		"required_approving_review_count": n,
		"require_last_push_approval":      false,
	}
}

// SetFile commits content at path on branch (creating the branch if needed)
// and returns the commit sha.
func (s *Server) SetFile(repo, branch, file string, content []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repo(repo).commit(branch, file, content, "set "+file)
}

// File returns the content of path on branch.
func (s *Server) File(repo, branch, file string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repo(repo)
	c, ok := rp.commits[rp.refs[branch]]
	if !ok {
		return nil, false
	}
	b, ok := c.files[file]
	return b, ok
}

// Ref returns the commit a branch points at.
func (s *Server) Ref(repo, branch string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.repo(repo).refs[branch]
	return sha, ok
}

// SetRef points branch at a commit.
func (s *Server) SetRef(repo, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(repo).refs[branch] = sha
}

// Parent returns a commit's parent.
func (s *Server) Parent(repo, sha string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.repo(repo).commits[sha]
	if !ok {
		return "", false
	}
	return c.parent, true
}

// commit adds a commit on branch that sets one file. Callers hold s.mu.
func (rp *repo) commit(branch, file string, content []byte, message string) string {
	parent := rp.refs[branch]
	files := map[string][]byte{}
	if p, ok := rp.commits[parent]; ok {
		for k, v := range p.files {
			files[k] = v
		}
	}
	files[file] = content
	sum := sha1.Sum([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%x", parent, message, file, len(rp.commits), content)))
	c := &commit{sha: hex.EncodeToString(sum[:]), parent: parent, message: message, files: files}
	rp.commits[c.sha] = c
	rp.refs[branch] = c.sha
	return c.sha
}

// blobSHA is git's object id of a blob.
func blobSHA(content []byte) string {
	sum := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(content))), content...))
	return hex.EncodeToString(sum[:])
}

func (s *Server) refJSON(repo, branch, sha string) map[string]any {
	return map[string]any{
		"ref": "refs/heads/" + branch,
		"url": s.URL() + "repos/" + repo + "/git/refs/heads/" + branch,
		"object": map[string]any{
			"type": "commit", "sha": sha,
			"url": s.URL() + "repos/" + repo + "/git/commits/" + sha,
		},
	}
}

func (s *Server) getRef(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := repoName(r)
	branch, ok := strings.CutPrefix(r.PathValue("ref"), "heads/")
	sha, found := s.repo(name).refs[branch]
	if !ok || !found {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, s.refJSON(name, branch, sha))
}

func (s *Server) createRef(w http.ResponseWriter, r *http.Request) {
	var body struct{ Ref, SHA string }
	if !decode(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := repoName(r)
	rp := s.repo(name)
	branch, ok := strings.CutPrefix(body.Ref, "refs/heads/")
	switch {
	case !ok || branch == "":
		writeJSON(w, http.StatusUnprocessableEntity, msg("Reference name must start with 'refs/' and have at least two slashes."))
	case rp.commits[body.SHA] == nil:
		writeJSON(w, http.StatusUnprocessableEntity, msg("Object does not exist"))
	case rp.refs[branch] != "":
		writeJSON(w, http.StatusUnprocessableEntity, msg("Reference already exists"))
	default:
		rp.refs[branch] = body.SHA
		writeJSON(w, http.StatusCreated, s.refJSON(name, branch, body.SHA))
	}
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := repoName(r)
	c, ok := s.repo(name).commits[r.PathValue("sha")]
	if !ok {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, s.commitJSON(name, c))
}

func (s *Server) commitJSON(repo string, c *commit) map[string]any {
	parents := []map[string]string{}
	if c.parent != "" {
		parents = append(parents, map[string]string{"sha": c.parent})
	}
	return map[string]any{
		"sha": c.sha, "message": c.message, "parents": parents,
		"html_url": s.WebURL() + repo + "/commit/" + c.sha,
	}
}

// resolve finds the commit a ref (branch or sha; default main) names.
func (rp *repo) resolve(ref string) *commit {
	if ref == "" {
		ref = "main"
	}
	if sha, ok := rp.refs[ref]; ok {
		return rp.commits[sha]
	}
	return rp.commits[ref]
}

func (s *Server) contentJSON(repo, file string, content []byte) map[string]any {
	enc := base64.StdEncoding.EncodeToString(content)
	var lines []string // GitHub wraps the base64 at 60 characters
	for len(enc) > 60 {
		lines, enc = append(lines, enc[:60]), enc[60:]
	}
	lines = append(lines, enc)
	return map[string]any{
		"type": "file", "encoding": "base64", "size": len(content),
		"name": path.Base(file), "path": file, "sha": blobSHA(content),
		"content": strings.Join(lines, "\n") + "\n",
	}
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, file := repoName(r), r.PathValue("path")
	c := s.repo(name).resolve(r.URL.Query().Get("ref"))
	if c == nil {
		writeJSON(w, http.StatusNotFound, msg("No commit found for the ref "+r.URL.Query().Get("ref")))
		return
	}
	content, ok := c.files[file]
	if !ok {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, s.contentJSON(name, file, content))
}

func (s *Server) putContents(w http.ResponseWriter, r *http.Request) {
	var body struct{ Message, Content, SHA, Branch string }
	if !decode(w, r, &body) {
		return
	}
	content, err := base64.StdEncoding.DecodeString(body.Content)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, msg("content is not valid Base64"))
		return
	}
	if body.Branch == "" {
		body.Branch = "main"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, file := repoName(r), r.PathValue("path")
	rp := s.repo(name)
	head := rp.resolve(body.Branch)
	if rp.refs[body.Branch] == "" || head == nil {
		writeJSON(w, http.StatusNotFound, msg("Branch "+body.Branch+" not found"))
		return
	}
	old, exists := head.files[file]
	switch {
	case exists && body.SHA == "":
		writeJSON(w, http.StatusUnprocessableEntity, msg(`Invalid request. "sha" wasn't supplied.`))
		return
	case exists && body.SHA != blobSHA(old):
		writeJSON(w, http.StatusConflict, msg(file+" does not match "+body.SHA))
		return
	}
	sha := rp.commit(body.Branch, file, content, body.Message)
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{
		"content": s.contentJSON(name, file, content),
		"commit":  s.commitJSON(name, rp.commits[sha]),
	})
}
