// Package preflighttest holds what the preflight tests share: workflow files
// shaped like the real ones of the repositories drbot is configured for
// (the workflow_dispatch blocks of itt-mentor-services' maintenance.yml,
// deploy.yml, database-backup.yml, postgres-restore.yml and
// postgres-ptr.yml), and a fake GitHub repository seeded with them and with
// the tfvars file scenario 1 changes.
package preflighttest

import (
	"embed"
	"path"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
)

//go:embed workflows/*.yml
var workflows embed.FS

// Workflow returns a workflow file by name, e.g. "deploy.yml".
func Workflow(name string) []byte {
	b, err := workflows.ReadFile(path.Join("workflows", name))
	if err != nil {
		panic(err)
	}
	return b
}

// Workflows are the names of the workflow files.
var Workflows = []string{"maintenance.yml", "deploy.yml", "database-backup.yml", "postgres-restore.yml", "postgres-ptr.yml"}

// TFVars is a tfvars file that holds the key scenario 1 changes.
const TFVars = `{"cluster": "test", "namespace": "bat-staging", "send_traffic_to_maintenance_page": false}` + "\n"

// SeedRepo puts every workflow file and the staging and production tfvars
// files of examples/drbot.yaml on branch of repo, protects the branch with
// one required review, and returns nothing: the fake answers from then on.
func SeedRepo(s *githubtest.Server, repo, branch string, skip ...string) {
	for _, name := range Workflows {
		if contains(skip, name) {
			continue
		}
		s.SetFile(repo, branch, ".github/workflows/"+name, Workflow(name))
	}
	for _, env := range []string{"staging", "production", "test"} {
		s.SetFile(repo, branch, "terraform/application/config/"+env+".tfvars.json", []byte(TFVars))
	}
	s.SetReviewCount(repo, branch, 1)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
