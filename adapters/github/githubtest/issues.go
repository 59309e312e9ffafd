package githubtest

import (
	"fmt"
	"net/http"
)

// Issue is an issue created through the fake.
type Issue struct {
	Repo, Title, Body string
	Number            int
}

// createIssue answers POST /repos/{owner}/{repo}/issues as GitHub does:
// 201 with the issue, 422 without a title.
func (s *Server) createIssue(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Title == "" {
		writeJSON(w, http.StatusUnprocessableEntity, msg("Validation Failed"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := repoName(r)
	n := len(s.issues) + 1
	s.issues = append(s.issues, Issue{Repo: name, Title: body.Title, Body: body.Body, Number: n})
	writeJSON(w, http.StatusCreated, map[string]any{
		"number": n, "title": body.Title, "body": body.Body, "state": "open",
		"html_url": fmt.Sprintf("%s%s/issues/%d", s.WebURL(), name, n),
	})
}

// Issues returns the issues created, in order.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Issue(nil), s.issues...)
}
