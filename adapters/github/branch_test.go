package github_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
)

const (
	tfvarsPath = "terraform/application/config/staging.tfvars.json"
	tfvars     = "{\n    \"cluster\": \"test\",\n    \"namespace\": \"bat-qa\",\n    \"send_traffic_to_maintenance_page\": false,\n    \"enable_monitoring\": false\n}\n"
	// tfvarsMaintenance is tfvars with the change: only the value differs.
	tfvarsMaintenance = "{\n    \"cluster\": \"test\",\n    \"namespace\": \"bat-qa\",\n    \"send_traffic_to_maintenance_page\": true,\n    \"enable_monitoring\": false\n}\n"
)

func branchParams() runbook.Params {
	return runbook.Params{
		"repo": testRepo, "base": "main", "branch": "dr-maintenance-staging", "file": tfvarsPath,
		"set": map[string]any{"send_traffic_to_maintenance_page": "true"},
	}
}

func TestBranchWithChangeCommitsFormattedEdit(t *testing.T) {
	srv := newFake(t)
	baseSHA := srv.SetFile(testRepo, "main", tfvarsPath, []byte(tfvars))
	a := action(t, newClient(t, srv), "github.branch_with_change")

	var s step
	res, err := a.Run(context.Background(), s.request(branchParams(), nil))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := srv.File(testRepo, "dr-maintenance-staging", tfvarsPath)
	if string(got) != tfvarsMaintenance {
		t.Errorf("file on the branch:\n%s\nwant:\n%s", got, tfvarsMaintenance)
	}
	if main, _ := srv.File(testRepo, "main", tfvarsPath); string(main) != tfvars {
		t.Errorf("main changed:\n%s", main)
	}
	head, _ := srv.Ref(testRepo, "dr-maintenance-staging")
	if parent, _ := srv.Parent(testRepo, head); parent != baseSHA {
		t.Errorf("branch head's parent = %s, want main's %s", parent, baseSHA)
	}
	if res.Remember != "dr-maintenance-staging" {
		t.Errorf("Remember = %v", res.Remember)
	}
	if len(res.Links) != 2 || !strings.HasSuffix(res.Links[0].URL, testRepo+"/tree/dr-maintenance-staging") ||
		res.Links[1].URL != srv.WebURL()+testRepo+"/commit/"+head {
		t.Errorf("Links = %+v", res.Links)
	}
	if cp := s.checkpoint(); cp["base_sha"] != baseSHA || cp["commit_sha"] != head {
		t.Errorf("checkpoint = %v", cp)
	}

	// Running again (a restart, or a new attempt) finds the work done.
	var again step
	res, err = a.Run(context.Background(), again.request(branchParams(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Summary, "no new commit") {
		t.Errorf("second run: %q", res.Summary)
	}
	if n := srv.Count("PUT", "/contents/"); n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
}

func TestBranchWithChangeReattach(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the branch and returns the checkpoint an earlier
		// process would have saved.
		setup   func(s *githubtest.Server, base string) map[string]string
		wantErr string
		commits int
	}{
		{name: "branch created, crashed before the commit", commits: 1,
			setup: func(s *githubtest.Server, base string) map[string]string {
				s.SetRef(testRepo, "dr-maintenance-staging", base)
				return map[string]string{"base_sha": base}
			}},
		{name: "committed, crashed before saving", commits: 0,
			setup: func(s *githubtest.Server, base string) map[string]string {
				s.SetRef(testRepo, "dr-maintenance-staging", base)
				s.SetFile(testRepo, "dr-maintenance-staging", tfvarsPath, []byte(tfvarsMaintenance))
				return nil
			}},
		{name: "someone else's branch with that name", wantErr: "already exists with other commits",
			setup: func(s *githubtest.Server, base string) map[string]string {
				s.SetRef(testRepo, "dr-maintenance-staging", base)
				s.SetFile(testRepo, "dr-maintenance-staging", "other.txt", []byte("x"))
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			base := srv.SetFile(testRepo, "main", tfvarsPath, []byte(tfvars))
			cp := tt.setup(srv, base)
			var s step
			_, err := action(t, newClient(t, srv), "github.branch_with_change").Run(context.Background(), s.request(branchParams(), cp))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := srv.File(testRepo, "dr-maintenance-staging", tfvarsPath); string(got) != tfvarsMaintenance {
				t.Errorf("file on the branch:\n%s", got)
			}
			if n := srv.Count("PUT", "/contents/"); n != tt.commits {
				t.Errorf("%d commits, want %d", n, tt.commits)
			}
			if n := srv.Count("POST", "/git/refs"); n != 0 {
				t.Errorf("branch created again")
			}
		})
	}
}

func TestBranchWithChangeFailures(t *testing.T) {
	tests := []struct {
		name    string
		params  func(runbook.Params)
		wantErr string
	}{
		{name: "no base branch", params: func(p runbook.Params) { p["base"] = "trunk" }, wantErr: "base branch trunk not found"},
		{name: "no such file", params: func(p runbook.Params) { p["file"] = "missing.json" }, wantErr: "read missing.json"},
		{name: "nothing to set", params: func(p runbook.Params) { p["set"] = map[string]any{} }, wantErr: `"set" is empty`},
		{name: "branch is the base", params: func(p runbook.Params) { p["branch"] = "main" }, wantErr: "must differ from the base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.SetFile(testRepo, "main", tfvarsPath, []byte(tfvars))
			p := branchParams()
			tt.params(p)
			var s step
			_, err := action(t, newClient(t, srv), "github.branch_with_change").Run(context.Background(), s.request(p, nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
