package main

import (
	"fmt"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/handlers"
)

var (
	_ handlers.FollowUps = (*github.Client)(nil)
	_ handlers.FollowUps = (*sim.Sim)(nil)
)

// followUps is where Raise follow-up opens issues: nil when no repository
// is configured, the simulated GitHub when GitHub is simulated (its links
// say SIMULATED), else the real GitHub adapter.
func (a *app) followUps(simulate string) (handlers.FollowUps, error) {
	if a.cfg.Comms.FollowUpRepo == "" {
		return nil, nil
	}
	simulated, err := parseSimulate(simulate)
	if err != nil {
		return nil, err
	}
	if isSimulated("github", simulated) {
		return a.sim, nil
	}
	gh := a.cfg.GitHub
	c, err := github.New(github.Options{
		BaseURL: gh.APIURL, Token: gh.Token.Value(), AppID: gh.AppID, InstallationID: gh.InstallationID,
		PrivateKeyPEM: []byte(gh.PrivateKey.Value()), Logger: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("follow-ups in %s: %w", a.cfg.Comms.FollowUpRepo, err)
	}
	return c, nil
}
