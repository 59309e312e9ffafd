package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"go.uber.org/zap"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/kube"
	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/deploy"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/preflight"
	"github.com/drbot-dev/drbot/runbook"
)

// preflightCmd checks every configured service and environment against the
// real systems, reading only, and prints one table each. Exit 1 on any
// failed check.
func preflightCmd(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	configFlag := fs.String("config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	service := fs.String("service", "", "check only this service")
	env := fs.String("env", "", "check only this environment")
	asJSON := fs.Bool("json", false, "print JSON (for CI)")
	var simulate simulateFlag
	fs.Var(&simulate, "simulate", "leave these families out (reported as skipped): all, or a list of github, kubernetes, azure")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("preflight takes no arguments, got %q", pos)}
	}
	if err := a.load(*configFlag, false); err != nil {
		return err
	}
	if *service != "" || *env != "" {
		if err := a.checkFilter(*service, *env); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}
	checker, err := a.preflightChecker(string(simulate))
	if err != nil {
		return err
	}
	res := checker.Run(ctx, preflight.Filter{Service: *service, Env: *env, Slack: true})
	if *asJSON {
		err = res.WriteJSON(a.stdout)
	} else {
		err = res.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if res.Failed() {
		return &exitError{code: 1}
	}
	return nil
}

// checkFilter refuses an unknown --service or --env.
func (a *app) checkFilter(service, env string) error {
	envs := a.cfg.Environments()
	if service != "" {
		if _, ok := envs[service]; !ok {
			return fmt.Errorf("--service: unknown service %q; configured: %s", service, strings.Join(runbook.SortedKeys(envs), ", "))
		}
	}
	if env == "" {
		return nil
	}
	for s, list := range envs {
		if (service == "" || s == service) && slices.Contains(list, env) {
			return nil
		}
	}
	return fmt.Errorf("--env: no configured environment %q", env)
}

// preflightChecker builds the checks of every service and environment
// (from drbot.yaml and the runbooks' planned steps) and the sources to run
// them on: the real adapters of each family, or a reason it is skipped.
func (a *app) preflightChecker(simulate string) (*preflight.Checker, error) {
	simulated, err := parseSimulate(simulate)
	if err != nil {
		return nil, err
	}
	targets, err := a.preflightTargets()
	if err != nil {
		return nil, err
	}
	scopes, err := preflight.ManifestScopes(deploy.SlackAppManifest)
	if err != nil {
		return nil, err
	}
	s := a.cfg.Slack
	checker := &preflight.Checker{
		Sources: a.preflightSources(simulated),
		Targets: targets,
		Slack: &preflight.SlackTarget{
			StakeholderChannels: s.StakeholderChannels, DeveloperChannels: s.DeveloperChannels,
			ApproverGroups: s.Approvers.Groups, ResponderGroups: s.Responders.Groups, Scopes: scopes,
		},
	}
	if preflightTestSources != nil {
		preflightTestSources(&checker.Sources)
	}
	return checker, nil
}

// preflightTestSources, when set, edits the sources: tests put the fakes
// behind the real adapters with it. Nil in production.
var preflightTestSources func(*preflight.Sources)

// preflightSources are the real adapters, read-only, of every family with
// credentials; the others are skipped, saying why.
func (a *app) preflightSources(simulated map[string]bool) preflight.Sources {
	var src preflight.Sources
	const simulatedText = "simulated (--simulate): nothing real is checked"

	gh := a.cfg.GitHub
	switch {
	case simulated["github"]:
		src.GitHubSkip = simulatedText
	case gh.Token == "" && gh.AppID == 0:
		src.GitHubSkip = "no credentials: set GITHUB_TOKEN (or github.app_id, github.installation_id and GITHUB_APP_PRIVATE_KEY[_FILE])"
	default:
		c, err := github.New(github.Options{
			BaseURL: gh.APIURL, Token: gh.Token.Value(), AppID: gh.AppID, InstallationID: gh.InstallationID,
			PrivateKeyPEM: []byte(gh.PrivateKey.Value()), Logger: a.log,
		})
		if err != nil {
			src.GitHubSkip = err.Error()
		} else {
			src.GitHub = c
		}
	}

	switch kubeconfig := a.getenv("KUBECONFIG"); {
	case simulated["kubernetes"]:
		src.KubeSkip = simulatedText
	case kubeconfig == "" && a.getenv("KUBERNETES_SERVICE_HOST") == "" && !fileExists(clientcmd.RecommendedHomeFile):
		src.KubeSkip = "no credentials: set KUBECONFIG (or run in the cluster)"
	default:
		src.Kube = kube.NewRouter(kubeconfig, a.log)
	}

	switch missing := a.environmentsWithoutSubscription(); {
	case simulated["azure"]:
		src.AzureSkip = simulatedText
	case a.getenv("AZURE_SUBSCRIPTION_ID") == "" && len(missing) > 0:
		src.AzureSkip = "no subscription: set AZURE_SUBSCRIPTION_ID (or postgres.subscription_id for " + strings.Join(missing, ", ") + ")"
	default:
		opts := azure.Options{Subscription: a.getenv("AZURE_SUBSCRIPTION_ID"), Protected: a.liveServers(), Location: a.cfg.Location, Logger: a.log}
		if azureTestOptions != nil {
			opts = azureTestOptions(opts)
		}
		if opts.Credential == nil {
			cred, err := azidentity.NewDefaultAzureCredential(nil)
			if err != nil {
				src.AzureSkip = "no credential: " + err.Error()
				break
			}
			opts.Credential = cred
		}
		c, err := azure.New(opts)
		if err != nil {
			src.AzureSkip = err.Error()
		} else {
			src.Azure = c
		}
	}

	if token := a.cfg.Slack.BotToken.Value(); token == "" {
		src.SlackSkip = "no credentials: set SLACK_BOT_TOKEN"
	} else {
		src.Slack = bot.NewProbe(token, a.cfg.Slack.APIURL, nil)
	}
	return src
}

func fileExists(path string) bool {
	_, err := os.Stat(filepath.Clean(path))
	return err == nil
}

// preflightTargets turns drbot.yaml and the runbooks into what preflight
// checks: every service and environment, with the workflow dispatches, the
// branch protection change and the tfvars change its runbooks' steps would
// make, planned with sample inputs as validate does.
func (a *app) preflightTargets() ([]preflight.Target, error) {
	eng := runbook.New(runbook.Options{Actions: planRegistry(a, nil), Clock: a.clock, Guard: a.cfg.Guard()})
	var out []preflight.Target
	for _, name := range runbook.SortedKeys(a.cfg.Services) {
		svc := a.cfg.Services[name]
		for _, key := range runbook.SortedKeys(svc.Environments) {
			e := svc.Environments[key]
			envKey := "services." + name + ".environments." + key
			t := preflight.Target{
				Service: name, Env: key,
				GitHub: preflight.GitHubTarget{Repo: svc.Repo, RepoKey: "services." + name + ".repo", BranchKey: branchKey(name, key, e, svc)},
				Kube: preflight.KubeTarget{Context: e.KubeContext, ContextKey: envKey + ".kube_context", Namespace: e.Namespace,
					Deployments: e.Deployments, Key: envKey},
				Azure: preflight.AzureTarget{Subscription: e.Postgres.SubscriptionID, ResourceGroup: e.Postgres.ResourceGroup, Server: e.Postgres.Server,
					Account: e.Backup.Account, Container: e.Backup.Container, Key: envKey},
			}
			for _, id := range a.catalog.IDs() {
				view, err := planSample(a, eng, a.catalog[id], name, key)
				if err != nil {
					return nil, fmt.Errorf("plan %s for %s/%s: %w (drbot validate says more)", id, name, key, err)
				}
				addSteps(&t.GitHub, view, svc, name, envKey)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func branchKey(service, env string, e config.Environment, svc config.Service) string {
	if e.Branch != svc.DefaultBranch {
		return "services." + service + ".environments." + env + ".branch"
	}
	return "services." + service + ".default_branch"
}

// addSteps adds the GitHub calls of a planned run to t: each dispatch once
// per distinct file, ref and inputs, the branches whose protection changes,
// and the tfvars changes.
func addSteps(t *preflight.GitHubTarget, view *runbook.RunView, svc config.Service, service, envKey string) {
	// created are the branches the run itself creates (from their base):
	// a dispatch on one reads the workflow file of the base.
	created := map[string]string{}
	branch := func(b string) {
		if _, ok := created[b]; !ok && !slices.Contains(t.Branches, b) {
			t.Branches = append(t.Branches, b)
		}
	}
	for _, sv := range view.Steps {
		if sv.State.State == runbook.Skipped {
			continue
		}
		step := view.Runbook.ID + "/" + sv.Step.ID
		switch sv.Step.Action {
		case runbook.KindWorkflow:
			spec, err := runbook.DecodeWorkflow(sv.Params)
			if err != nil {
				continue // a pending parameter; the run checks it
			}
			if base, ok := created[spec.Ref]; ok {
				spec.Ref = base
			}
			branch(spec.Ref)
			use := preflight.WorkflowUse{File: spec.File, Ref: spec.Ref, Inputs: spec.Inputs, Pending: map[string]bool{},
				Key: workflowKey(svc, service, spec), Steps: []string{step}}
			for k, v := range spec.Inputs {
				if runbook.IsPlaceholder(v) {
					use.Pending[k] = true
				}
			}
			if i := slices.IndexFunc(t.Workflows, func(w preflight.WorkflowUse) bool { return sameUse(w, use) }); i >= 0 {
				t.Workflows[i].Steps = append(t.Workflows[i].Steps, step)
			} else {
				t.Workflows = append(t.Workflows, use)
			}
		case runbook.KindRequiredApprovals:
			spec, err := runbook.DecodeApprovals(sv.Params)
			if err == nil && !slices.Contains(t.Protection, spec.Branch) {
				branch(spec.Branch)
				t.Protection = append(t.Protection, spec.Branch)
			}
		case runbook.KindBranchWithChange:
			spec, err := runbook.DecodeBranchChange(sv.Params)
			if err != nil {
				continue
			}
			branch(spec.Base)
			created[spec.Branch] = spec.Base
			tf := preflight.TFVarsUse{File: spec.File, Ref: spec.Base, Keys: runbook.SortedKeys(spec.Set), Key: envKey + ".tfvars_set"}
			if !slices.ContainsFunc(t.TFVars, func(x preflight.TFVarsUse) bool { return x.File == tf.File && x.Ref == tf.Ref }) {
				t.TFVars = append(t.TFVars, tf)
			}
		}
	}
}

// sameUse reports whether two dispatches send the same workflow the same
// inputs; values known only at run time count as equal.
func sameUse(a, b preflight.WorkflowUse) bool {
	if a.File != b.File || a.Ref != b.Ref || len(a.Inputs) != len(b.Inputs) {
		return false
	}
	for k, v := range a.Inputs {
		w, ok := b.Inputs[k]
		if !ok || (v != w && !(a.Pending[k] && b.Pending[k])) {
			return false
		}
	}
	return true
}

// workflowKey is the drbot.yaml key of the workflow role a dispatch comes
// from: the role with this file and these input names.
func workflowKey(svc config.Service, service string, spec runbook.WorkflowSpec) string {
	roles := runbook.SortedKeys(svc.Workflows)
	for _, exact := range []bool{true, false} {
		for _, role := range roles {
			wf := svc.Workflows[role]
			if filepath.Base(wf.File) != spec.File {
				continue
			}
			if !exact || slices.Equal(runbook.SortedKeys(wf.Inputs), slices.Sorted(maps.Keys(spec.Inputs))) && inputsMatch(wf.Inputs, spec.Inputs) {
				return "services." + service + ".workflows." + role
			}
		}
	}
	return "services." + service + ".workflows"
}

// inputsMatch reports whether the constant (untemplated) inputs of a role
// have the values sent: maintenance_enable and maintenance_disable share a
// file and differ in mode.
func inputsMatch(cfg, sent map[string]string) bool {
	for k, v := range cfg {
		if !strings.Contains(v, "{{") && sent[k] != v {
			return false
		}
	}
	return true
}

// startupPreflight runs the preflight once as serve starts: the summary and
// every problem are logged, and when a check fails the short version goes
// to the developer channels (through the outbox, once a day for the same
// failures). It never stops the bot.
func startupPreflight(ctx context.Context, checker *preflight.Checker, b *bot.Bot, log *zap.Logger) {
	res := checker.Run(ctx, preflight.Filter{Slack: true})
	if ctx.Err() != nil {
		return
	}
	for _, p := range res.Problems(preflight.Warn) {
		log.Warn("preflight problem", zap.String("check", p))
	}
	log.Info("preflight", zap.String("summary", res.Summary()), zap.Bool("failed", res.Failed()))
	if !res.Failed() {
		return
	}
	key := res.At.Format("20060102") + "-" + res.Fingerprint()
	if err := b.PostDevelopers(ctx, key, handlers.PreflightText(res)); err != nil {
		log.Warn("post preflight to the developer channels", zap.Error(err))
	}
}
