package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

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
			PrivateKeyPEM: []byte(gh.PrivateKey.Value()), Logger: a.log, PollInterval: gh.PollInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("GitHub: %w", err)
		}
		return c.Actions(), nil
	case "kubernetes":
		return runbook.Registry{runbook.KindScale: &kubeRouter{kubeconfig: a.getenv("KUBECONFIG"), log: a.log}}, nil
	case "http":
		return httpcheck.Actions(&http.Client{Timeout: time.Minute}), nil
	}
	return nil, fmt.Errorf("no real adapter for %s", family)
}

// kubeRouter sends each kubernetes.scale step to the cluster of its
// environment's kube_context (the step's "context" parameter), connecting to
// each cluster once.
type kubeRouter struct {
	kubeconfig string
	log        *zap.Logger

	mu      sync.Mutex
	clients map[string]runbook.Action
}

func (r *kubeRouter) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	name := req.Params.StringOr("context", "")
	r.mu.Lock()
	act, ok := r.clients[name]
	if !ok {
		c, err := kube.New(kube.Options{Kubeconfig: r.kubeconfig, Context: name, Logger: r.log})
		if err != nil {
			r.mu.Unlock()
			return runbook.Result{}, fmt.Errorf("kubernetes context %q: %w", name, err)
		}
		if r.clients == nil {
			r.clients = map[string]runbook.Action{}
		}
		act = c.Actions()[runbook.KindScale]
		r.clients[name] = act
	}
	r.mu.Unlock()
	return act.Run(ctx, req)
}

// simDelay is the base delay of simulated operations: DRBOT_SIM_DELAY
// (a Go duration) or 150ms, enough to see progress without waiting.
func simDelay(getenv func(string) string) time.Duration {
	if d, err := time.ParseDuration(getenv("DRBOT_SIM_DELAY")); err == nil {
		return d
	}
	return 150 * time.Millisecond
}
