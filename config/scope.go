package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Scope returns the template values a runbook sees for one service and
// environment: .service, .env and .workflows.
func (c *Config) Scope(service, env string) (map[string]any, error) {
	svc, ok := c.Services[service]
	if !ok {
		return nil, fmt.Errorf("unknown service %q; configured: %s", service, strings.Join(runbook.SortedKeys(c.Services), ", "))
	}
	e, ok := svc.Environments[env]
	if !ok {
		return nil, fmt.Errorf("service %s has no environment %q; configured: %s", service, env, strings.Join(runbook.SortedKeys(svc.Environments), ", "))
	}
	deployments := make([]any, len(e.Deployments))
	for i, d := range e.Deployments {
		deployments[i] = d
	}
	workflows := map[string]any{}
	for role, wf := range svc.Workflows {
		inputs := map[string]any{}
		for k, v := range wf.Inputs {
			inputs[k] = v
		}
		workflows[role] = map[string]any{"file": wf.File, "inputs": inputs}
	}
	return map[string]any{
		"service": map[string]any{"name": service, "repo": svc.Repo, "short": svc.Short, "default_branch": svc.DefaultBranch},
		"env": map[string]any{
			"key": env, "name": e.Name, "short": e.Short, "repo": svc.Repo, "branch": e.Branch,
			"namespace": e.Namespace, "deployments": deployments, "app": e.App, "kube_context": e.KubeContext,
			"postgres": map[string]any{"resource_group": e.Postgres.ResourceGroup, "server": e.Postgres.Server, "ptr_server": e.Postgres.PTRServer,
				"subscription_id": e.Postgres.SubscriptionID},
			"backup":   map[string]any{"account": e.Backup.Account, "container": e.Backup.Container},
			"temp_url": e.TempURL, "temp_url_pattern": tempURLPattern(e), "health_path": e.HealthPath,
			"production": e.Production, "confirm_production": strconv.FormatBool(e.Production),
			"tfvars_file": e.TFVarsFile, "tfvars_set": e.TFVarsSet,
		},
		"workflows": workflows,
	}, nil
}

// tempURLPattern is the env.temp_url_pattern a runbook passes to the
// enable-maintenance step as capture_url: TempURLPattern when the
// environment reads the temporary URL from the maintenance run, else "",
// which the step takes as "do not read it" (runbooks cannot omit a key).
func tempURLPattern(e Environment) string {
	if !e.TempURLFromMaintenance {
		return ""
	}
	return TempURLPattern
}

// Environments lists service → environment names, sorted.
func (c *Config) Environments() map[string][]string {
	out := make(map[string][]string, len(c.Services))
	for name, svc := range c.Services {
		out[name] = runbook.SortedKeys(svc.Environments)
	}
	return out
}

// ChannelName renders the incident channel name pattern.
func (c *Config) ChannelName(service, env string, at time.Time) string {
	r := strings.NewReplacer("{date}", at.UTC().Format("20060102"), "{service}", service, "{env}", env)
	return strings.ToLower(r.Replace(c.Slack.ChannelName))
}

// Guard lists the live resources of every configured environment (their
// Postgres servers): the engine refuses any destructive step aimed at one.
func (c *Config) Guard() runbook.Guard {
	var g runbook.Guard
	for _, name := range runbook.SortedKeys(c.Services) {
		svc := c.Services[name]
		for _, key := range runbook.SortedKeys(svc.Environments) {
			if server := svc.Environments[key].Postgres.Server; server != "" {
				g = append(g, runbook.LiveResource{Resource: runbook.Resource{Type: runbook.ResourcePostgresServer, Name: server}, Service: name, Env: key})
			}
		}
	}
	return g
}
