package github_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

func approvalsParams(count any) runbook.Params {
	return runbook.Params{"repo": testRepo, "branch": "main", "count": count}
}

func TestApprovalsFreezeThenUnfreezeRestoresCount(t *testing.T) {
	srv := newFake(t)
	srv.SetReviewCount(testRepo, "main", 2)
	a := action(t, newClient(t, srv), "github.required_approvals")
	ctx := context.Background()

	var freeze step
	res, err := a.Run(ctx, freeze.request(approvalsParams(6), nil))
	if err != nil {
		t.Fatalf("freeze: %v", err)
	}
	if res.Remember != 2 {
		t.Errorf("freeze remembered %v, want 2", res.Remember)
	}
	if n, _ := srv.ReviewCount(testRepo, "main"); n != 6 {
		t.Errorf("after freeze the branch requires %d approvals, want 6", n)
	}
	if cp := freeze.checkpoint(); cp["previous"] != "2" {
		t.Errorf("freeze checkpoint = %v, want previous=2", cp)
	}

	// The runbook's unfreeze step passes the remembered count back.
	var unfreeze step
	if _, err := a.Run(ctx, unfreeze.request(approvalsParams(res.Remember), nil)); err != nil {
		t.Fatalf("unfreeze: %v", err)
	}
	if n, _ := srv.ReviewCount(testRepo, "main"); n != 2 {
		t.Errorf("after unfreeze the branch requires %d approvals, want 2", n)
	}

	for _, r := range srv.Requests() {
		if !strings.HasSuffix(r.Path, "/branches/main/protection/required_pull_request_reviews") || r.Method == "PUT" {
			t.Errorf("request outside the review settings: %v", r)
		}
	}
	if n := srv.Count("PATCH", "/required_pull_request_reviews"); n != 2 {
		t.Errorf("%d PATCHes, want 2", n)
	}
}

func TestApprovalsIdempotent(t *testing.T) {
	tests := []struct {
		name       string
		current    int
		checkpoint map[string]string
		wantMem    int
		wantText   string
	}{
		{name: "already at target", current: 6, wantMem: 6, wantText: "already 6"},
		{name: "re-attach after the change keeps the original count", current: 6,
			checkpoint: map[string]string{"previous": "1"}, wantMem: 1, wantText: "already 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetReviewCount(testRepo, "main", tt.current)
			var s step
			res, err := action(t, newClient(t, srv), "github.required_approvals").
				Run(context.Background(), s.request(approvalsParams("6"), tt.checkpoint))
			if err != nil {
				t.Fatal(err)
			}
			if res.Remember != tt.wantMem {
				t.Errorf("Remember = %v, want %d", res.Remember, tt.wantMem)
			}
			if !strings.Contains(res.Summary, tt.wantText) {
				t.Errorf("Summary = %q, want it to contain %q", res.Summary, tt.wantText)
			}
			if n := srv.Count("PATCH", ""); n != 0 {
				t.Errorf("%d PATCHes, want none", n)
			}
		})
	}
}

func TestApprovalsRefusalsSayWhatIsMissing(t *testing.T) {
	protected := func(s *githubtest.Server) { s.SetReviewCount(testRepo, "main", 1) }
	tests := []struct {
		name   string
		setup  func(*githubtest.Server)
		params runbook.Params
		want   string
		noCall bool
	}{
		{name: "branch not protected", setup: func(*githubtest.Server) {}, params: approvalsParams(6),
			want: "needs a protection rule that requires pull request reviews"},
		{name: "no admin rights", params: approvalsParams(6), setup: func(s *githubtest.Server) {
			protected(s)
			s.DenyAdmin(testRepo)
		}, want: "needs a token with repo admin (Administration: write)"},
		{name: "count beyond GitHub's limit", setup: protected, params: approvalsParams(7),
			want: "0 to 6", noCall: true},
		{name: "malformed repo", setup: protected, noCall: true, want: "want owner/name",
			params: runbook.Params{"repo": "itt-mentor-services", "branch": "main", "count": 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			tt.setup(srv)
			var s step
			_, err := action(t, newClient(t, srv), "github.required_approvals").Run(context.Background(), s.request(tt.params, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if runbook.IsRetryable(err) {
				t.Errorf("a refusal was marked retryable: %v", err)
			}
			if tt.noCall && len(srv.Requests()) > 0 {
				t.Errorf("requests sent for invalid parameters: %v", srv.Requests())
			}
		})
	}
}
