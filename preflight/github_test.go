package preflight_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/preflight"
	"github.com/drbot-dev/drbot/preflight/preflighttest"
)

const (
	repo  = "DFE-Digital/itt-mentor-services"
	token = "ghp_preflight"
	key   = "services.itt-mentor-services.workflows."
)

// ittms is what the runbooks dispatch for itt-mentor-services in env
// (examples/drbot.yaml, rendered as drbot would send it).
func ittms(env string) preflight.GitHubTarget {
	confirm := map[string]string{"staging": "false", "production": "true"}[env]
	ptr := map[string]bool{"new-db-server": true}
	return preflight.GitHubTarget{
		Repo: repo, RepoKey: "services.itt-mentor-services.repo",
		Branches: []string{"main"}, BranchKey: "services.itt-mentor-services.default_branch",
		Protection: []string{"main"},
		Workflows: []preflight.WorkflowUse{
			{File: "maintenance.yml", Ref: "main", Key: key + "maintenance_enable", Inputs: map[string]string{"environment": env, "mode": "enable"}, Steps: []string{"scenario-2/enable-maintenance"}},
			{File: "maintenance.yml", Ref: "main", Key: key + "maintenance_disable", Inputs: map[string]string{"environment": env, "mode": "disable"}},
			{File: "deploy.yml", Ref: "main", Key: key + "deploy", Inputs: map[string]string{"environment": env, "sha": "<image_sha, remembered by step read-image>"}, Pending: map[string]bool{"sha": true}},
			{File: "database-backup.yml", Ref: "main", Key: key + "backup", Inputs: map[string]string{"environment": env, "backup-file": "ittms_stg_dr_flawed_20261202T0748", "db-server": "s189t01-ittms-stg-pg"}},
			{File: "postgres-restore.yml", Ref: "main", Key: key + "restore", Inputs: map[string]string{"environment": env, "confirm-production": confirm, "backup-file": "x.sql.gz"}},
			{File: "postgres-ptr.yml", Ref: "main", Key: key + "ptr", Inputs: map[string]string{"environment": env, "confirm-production": confirm, "restore-time": "2026-11-26T09:30:00", "new-db-server": "<ptr_server, remembered by step prepare-ptr>"}, Pending: ptr},
		},
		TFVars: []preflight.TFVarsUse{{File: "terraform/application/config/" + env + ".tfvars.json", Ref: "main", Keys: []string{"send_traffic_to_maintenance_page"},
			Key: "services.itt-mentor-services.environments." + env + ".tfvars_set"}},
	}
}

func newGitHub(t *testing.T) (*githubtest.Server, *github.Client) {
	t.Helper()
	srv := githubtest.New(t, githubtest.Config{Token: token})
	c, err := github.New(github.Options{BaseURL: srv.URL(), Token: token, HTTPClient: srv.Client(), Logger: zaptest.NewLogger(t), Clock: srv.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

// run checks one target's GitHub side and returns its checks.
func runGitHub(t *testing.T, c preflight.GitHub, target preflight.GitHubTarget) []preflight.Check {
	t.Helper()
	res := preflight.Run(context.Background(), preflight.Sources{GitHub: c, KubeSkip: "not in this test", AzureSkip: "not in this test"},
		[]preflight.Target{{Service: "itt-mentor-services", Env: "staging", GitHub: target}}, nil)
	var out []preflight.Check
	for _, ch := range res.Tables[0].Checks {
		if ch.Family == preflight.FamilyGitHub {
			out = append(out, ch)
		}
	}
	return out
}

// find returns the checks whose name contains name.
func find(checks []preflight.Check, name string) []preflight.Check {
	var out []preflight.Check
	for _, c := range checks {
		if strings.Contains(c.Name, name) {
			out = append(out, c)
		}
	}
	return out
}

func TestGitHubAllFit(t *testing.T) {
	srv, c := newGitHub(t)
	preflighttest.SeedRepo(srv, repo, "main")
	checks := runGitHub(t, c, ittms("staging"))
	for _, ch := range checks {
		if ch.Status != preflight.OK {
			t.Errorf("%s: %s: %s (%s)", ch.Name, ch.Status, ch.Detail, ch.Fix)
		}
	}
	if n := len(find(checks, "workflow ")); n != 6 {
		t.Errorf("%d workflow checks, want 6 (maintenance twice, its two modes): %+v", n, checks)
	}
	for _, r := range srv.Requests() {
		if r.Method != "GET" {
			t.Errorf("preflight changed something: %s", r)
		}
	}
}

func TestGitHubProblems(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		setup  func(*githubtest.Server)
		edit   func(*preflight.GitHubTarget)
		check  string // a check name
		detail string // in its detail
		fix    string // in its fix
	}{
		{
			name: "missing file", env: "staging",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "main", "database-backup.yml") },
			check: "workflow database-backup.yml", detail: "has no workflow database-backup.yml", fix: key + "backup.file",
		},
		{
			name: "undeclared input", env: "staging",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "main") },
			edit: func(t *preflight.GitHubTarget) {
				t.Workflows[2].Inputs["docker-image-tag"] = "abc"
			},
			check: "workflow deploy.yml", detail: `input "docker-image-tag", which the workflow does not declare`, fix: ".github/workflows/deploy.yml line 5",
		},
		{
			name: "required input not sent", env: "staging",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "main") },
			edit: func(t *preflight.GitHubTarget) {
				delete(t.Workflows[5].Inputs, "restore-time")
			},
			check: "workflow postgres-ptr.yml", detail: "input restore-time is required and has no default, but drbot does not send it", fix: "postgres-ptr.yml line 23",
		},
		{
			name: "value not among the options", env: "production",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "main") },
			check: "workflow deploy.yml", detail: `drbot would send "production", not among the options [qa, review, staging, sandbox]`, fix: "deploy.yml line 7",
		},
		{
			name: "confirm-production is a choice of strings", env: "staging",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "main") },
			edit: func(t *preflight.GitHubTarget) {
				t.Workflows[4].Inputs["confirm-production"] = "False"
			},
			check: "workflow postgres-restore.yml", detail: `input confirm-production: drbot would send "False", not among the options [false, true]`,
		},
		{
			name: "token without admin", env: "staging",
			setup: func(s *githubtest.Server) {
				preflighttest.SeedRepo(s, repo, "main")
				s.SetPermissions(repo, map[string]bool{"admin": false, "push": true, "pull": true})
			},
			check: "branch protection main", detail: "not admin", fix: "Administration read and write",
		},
		{
			name: "branch without a review rule", env: "staging",
			setup: func(s *githubtest.Server) {
				s.SetFile(repo, "main", "README.md", []byte("x"))
			},
			check: "branch protection main", detail: "no protection rule that requires pull request reviews",
		},
		{
			name: "disabled workflow", env: "staging",
			setup: func(s *githubtest.Server) {
				preflighttest.SeedRepo(s, repo, "main")
				s.DisableWorkflow(repo, "postgres-ptr.yml", "disabled_manually")
			},
			check: "workflow postgres-ptr.yml", detail: "is disabled_manually", fix: "enable the workflow",
		},
		{
			name: "no workflow_dispatch", env: "staging",
			setup: func(s *githubtest.Server) {
				preflighttest.SeedRepo(s, repo, "main")
				s.SetFile(repo, "main", ".github/workflows/deploy.yml", []byte("name: deploy\non:\n  push:\n    branches: [main]\njobs: {}\n"))
			},
			check: "workflow deploy.yml", detail: "has no workflow_dispatch trigger", fix: "deploy.yml (line 2)",
		},
		{
			name: "file not on the ref", env: "staging",
			setup: func(s *githubtest.Server) {
				preflighttest.SeedRepo(s, repo, "main")
				s.SetFile(repo, "dr-branch", "README.md", []byte("x"))
			},
			edit: func(t *preflight.GitHubTarget) {
				t.Workflows[3].Ref = "dr-branch"
			},
			check: "workflow database-backup.yml", detail: "is not on dr-branch",
		},
		{
			name: "tfvars without the key", env: "staging",
			setup: func(s *githubtest.Server) {
				preflighttest.SeedRepo(s, repo, "main")
				s.SetFile(repo, "main", "terraform/application/config/staging.tfvars.json", []byte(`{"cluster": "test"}`))
			},
			check: "tfvars", detail: "has no key send_traffic_to_maintenance_page", fix: "environments.staging.tfvars_set",
		},
		{
			name: "missing branch", env: "staging",
			setup: func(s *githubtest.Server) { preflighttest.SeedRepo(s, repo, "master") },
			check: "branch main", detail: "not found", fix: "default_branch",
		},
		{
			name: "missing repository", env: "staging",
			setup: func(*githubtest.Server) {},
			check: "repository", detail: "not found", fix: "services.itt-mentor-services.repo",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newGitHub(t)
			tt.setup(srv)
			target := ittms(tt.env)
			if tt.edit != nil {
				tt.edit(&target)
			}
			checks := runGitHub(t, c, target)
			var hit *preflight.Check
			for _, ch := range find(checks, tt.check) {
				if ch.Status == preflight.Fail && strings.Contains(ch.Detail, tt.detail) {
					hit = &ch
					break
				}
			}
			if hit == nil {
				t.Fatalf("no failed check %q with %q in:\n%s", tt.check, tt.detail, dump(checks))
			}
			if !strings.Contains(hit.Fix, tt.fix) {
				t.Errorf("fix = %q, want it to name %q", hit.Fix, tt.fix)
			}
		})
	}
}

// TestGitHubPermissionsNotReported: GitHub does not always report the
// credentials' permissions; preflight says it cannot tell, not ok.
func TestGitHubPermissionsNotReported(t *testing.T) {
	srv, c := newGitHub(t)
	preflighttest.SeedRepo(srv, repo, "main")
	srv.HidePermissions(repo)
	got := find(runGitHub(t, c, ittms("staging")), "branch protection")
	if len(got) != 1 || got[0].Status != preflight.Warn || !strings.Contains(got[0].Detail, "does not say") {
		t.Fatalf("branch protection = %+v, want a warning that GitHub does not say", got)
	}
}

func dump(checks []preflight.Check) string {
	var b strings.Builder
	for _, c := range checks {
		b.WriteString("  " + c.Name + " | " + string(c.Status) + " | " + c.Detail + " | " + c.Fix + "\n")
	}
	return b.String()
}

// TestGitHubAppInstallationPermissions: where GitHub reports no repository
// permissions to an App, the installation token's own permissions say
// whether it may change branch protection.
func TestGitHubAppInstallationPermissions(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	for _, tt := range []struct {
		name  string
		perms map[string]string
		want  preflight.Status
	}{
		{"administration write", nil, preflight.OK},
		{"administration read", map[string]string{"actions": "write", "administration": "read", "contents": "write"}, preflight.Fail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.New(t, githubtest.Config{App: &githubtest.App{ID: 42, InstallationID: 7, PublicKey: &key.PublicKey, Slug: "drbot", Permissions: tt.perms}})
			preflighttest.SeedRepo(srv, repo, "main")
			srv.HidePermissions(repo)
			c, err := github.New(github.Options{BaseURL: srv.URL(), AppID: 42, InstallationID: 7, PrivateKeyPEM: pemKey, HTTPClient: srv.Client(), Clock: srv.Clock()})
			if err != nil {
				t.Fatal(err)
			}
			got := find(runGitHub(t, c, ittms("staging")), "branch protection")
			if len(got) != 1 || got[0].Status != tt.want {
				t.Errorf("branch protection = %+v, want %s", got, tt.want)
			}
		})
	}
}
