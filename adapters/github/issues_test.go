package github_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
)

func TestCreateIssue(t *testing.T) {
	srv := newFake(t)
	c := newClient(t, srv)
	link, err := c.CreateIssue(context.Background(), testRepo, "Script the data check", "Raised from DR run dr-1 by drbot.")
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.WebURL() + testRepo + "/issues/1"; link.URL != want || !strings.Contains(link.Label, testRepo+"#1: Script the data check") {
		t.Errorf("link %+v, want %s", link, want)
	}
	got := srv.Issues()
	if len(got) != 1 || got[0] != (githubtest.Issue{Repo: testRepo, Title: "Script the data check", Body: "Raised from DR run dr-1 by drbot.", Number: 1}) {
		t.Errorf("issues %+v", got)
	}
	if _, err := c.CreateIssue(context.Background(), "not-a-repo", "x", ""); err == nil {
		t.Error("a repository that is not owner/name was accepted")
	}
	// A lost answer is not sent again: no second issue.
	srv.Inject(githubtest.ServerError("POST", "/repos/"+testRepo+"/issues"))
	if _, err := c.CreateIssue(context.Background(), testRepo, "again", ""); err == nil {
		t.Error("a 5xx was not reported")
	}
	if n := srv.Count("POST", "/repos/"+testRepo+"/issues"); n != 2 {
		t.Errorf("%d issue requests, want 2 (no retry of a write)", n)
	}
}
