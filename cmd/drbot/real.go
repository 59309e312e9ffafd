package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/httpcheck"
	"github.com/drbot-dev/drbot/adapters/kube"
	"github.com/drbot-dev/drbot/runbook"
)

// realActions builds the real adapters of one family from the config and
// environment. Missing credentials are an error that says what to set.
func (a *app) realActions(family string) (runbook.Registry, error) {
	switch family {
	case "github":
		gh := a.cfg.GitHub
		if gh.Token == "" && gh.AppID == 0 {
			return nil, fmt.Errorf("GitHub: set GITHUB_TOKEN (or github.app_id, github.installation_id and GITHUB_APP_PRIVATE_KEY[_FILE]), or simulate it with --simulate=github")
		}
		c, err := github.New(github.Options{
			BaseURL: gh.APIURL, Token: gh.Token.Value(), AppID: gh.AppID, InstallationID: gh.InstallationID,
			PrivateKeyPEM: []byte(gh.PrivateKey.Value()), Logger: a.log, PollInterval: gh.PollInterval, DispatchSearch: gh.DispatchSearch,
		})
		if err != nil {
			return nil, fmt.Errorf("GitHub: %w", err)
		}
		return c.Actions(), nil
	case "kubernetes":
		return kube.NewRouter(a.getenv("KUBECONFIG"), a.log).Actions(), nil
	case "http":
		return httpcheck.Actions(&http.Client{Timeout: time.Minute}), nil
	case "azure":
		return a.azureActions()
	}
	return nil, fmt.Errorf("no real adapter for %s", family)
}

// azureActions builds the Azure adapter: azidentity's
// DefaultAzureCredential (environment, workload identity, managed identity,
// Azure CLI), the subscription from AZURE_SUBSCRIPTION_ID unless every
// environment names its own, and every environment's live server protected
// from deletion.
func (a *app) azureActions() (runbook.Registry, error) {
	sub := a.getenv("AZURE_SUBSCRIPTION_ID")
	if missing := a.environmentsWithoutSubscription(); sub == "" && len(missing) > 0 {
		return nil, fmt.Errorf("Azure: set AZURE_SUBSCRIPTION_ID (or postgres.subscription_id in drbot.yaml for %s), or simulate it with --simulate=azure",
			strings.Join(missing, ", "))
	}
	opts := azure.Options{Subscription: sub, Protected: a.liveServers(), Location: a.cfg.Location, Logger: a.log}
	if azureTestOptions != nil {
		opts = azureTestOptions(opts)
	}
	if opts.Credential == nil {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("Azure credential: %w (drbot uses DefaultAzureCredential: workload identity, managed identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or az login), or simulate it with --simulate=azure", err)
		}
		opts.Credential = cred
	}
	c, err := azure.New(opts)
	if err != nil {
		return nil, fmt.Errorf("Azure: %w", err)
	}
	return c.Actions(), nil
}

// azureTestOptions, when set, edits the Azure adapter's options: the live
// end-to-end test puts the SDK's fake ARM servers and Azurite behind the
// real adapter with it. Nil in production.
var azureTestOptions func(azure.Options) azure.Options

// environmentsWithoutSubscription lists service/env pairs whose drbot.yaml
// names no Azure subscription.
func (a *app) environmentsWithoutSubscription() []string {
	var out []string
	for _, svc := range runbook.SortedKeys(a.cfg.Services) {
		envs := a.cfg.Services[svc].Environments
		for _, env := range runbook.SortedKeys(envs) {
			if envs[env].Postgres.SubscriptionID == "" {
				out = append(out, svc+"/"+env)
			}
		}
	}
	return out
}

// liveServers are the live Postgres servers of every configured
// environment: the Azure adapter refuses to delete any of them.
func (a *app) liveServers() []string {
	var out []string
	for _, r := range a.cfg.Guard() {
		if r.Type == runbook.ResourcePostgresServer {
			out = append(out, r.Name)
		}
	}
	return out
}

// simDelay is the base delay of simulated operations: DRBOT_SIM_DELAY
// (a Go duration) or 150ms, enough to see progress without waiting.
func simDelay(getenv func(string) string) time.Duration {
	if d, err := time.ParseDuration(getenv("DRBOT_SIM_DELAY")); err == nil {
		return d
	}
	return 150 * time.Millisecond
}
