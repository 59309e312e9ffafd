package preflight_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/deploy"
	"github.com/drbot-dev/drbot/preflight"
)

func TestManifestScopes(t *testing.T) {
	got, err := preflight.ManifestScopes(deploy.SlackAppManifest)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's token has the manifest's scopes by default.
	if !slices.Equal(got, slacktest.DefaultScopes) {
		t.Errorf("manifest scopes = %v, the fake's default %v: keep them the same", got, slacktest.DefaultScopes)
	}
}

func TestSlack(t *testing.T) {
	scopes, err := preflight.ManifestScopes(deploy.SlackAppManifest)
	if err != nil {
		t.Fatal(err)
	}
	target := preflight.SlackTarget{
		StakeholderChannels: []string{"C0DRSTAKE1"}, DeveloperChannels: []string{"C0DEVELOP1", "C0PRIVATE1", "C0MISSING1"},
		ApproverGroups: []string{"S0PLATFORM"}, ResponderGroups: []string{"S0PLATFORM", "S0NOSUCH01", "S0EMPTY001"}, Scopes: scopes,
	}
	setup := func() *slacktest.Server {
		s := slacktest.New()
		t.Cleanup(s.Close)
		s.AddChannel("C0DRSTAKE1", "dr-stakeholders")
		s.AddChannelWithout("C0DEVELOP1", "developers")
		s.AddPrivateChannel("C0PRIVATE1", "platform-private")
		s.SetGroup("S0PLATFORM", "U0INCLEAD1", "U0COMMSLD1")
		s.SetGroup("S0EMPTY001")
		return s
	}
	run := func(s *slacktest.Server) []preflight.Check {
		res := preflight.Run(context.Background(), preflight.Sources{Slack: bot.NewProbe("xoxb-test", s.URL(), nil)}, nil, &target)
		return res.Tables[0].Checks
	}

	t.Run("all scopes", func(t *testing.T) {
		checks := run(setup())
		want := map[string]preflight.Status{
			"token scopes":                           preflight.OK,
			"channel C0DRSTAKE1 (#dr-stakeholders)":  preflight.OK,
			"channel C0DEVELOP1 (#developers)":       preflight.Warn, // not a member: posts, cannot read back
			"channel C0PRIVATE1 (#platform-private)": preflight.OK,
			"channel C0MISSING1":                     preflight.Fail,
			"user group S0PLATFORM":                  preflight.OK,
			"user group S0NOSUCH01":                  preflight.Fail,
			"user group S0EMPTY001":                  preflight.Warn,
		}
		for name, st := range want {
			if c, ok := status(checks, name); !ok || c.Status != st {
				t.Errorf("%s = %+v, want %s\n%s", name, c, st, dump(checks))
			}
		}
		if n := len(checks); n != len(want) {
			t.Errorf("%d checks, want %d (S0PLATFORM once):\n%s", n, len(want), dump(checks))
		}
	})

	t.Run("missing scope and a channel the bot is not in", func(t *testing.T) {
		s := setup()
		s.SetScopes(slacktest.ScopesWithout("chat:write.public")...)
		checks := run(s)
		c, _ := status(checks, "token scopes")
		if c.Status != preflight.Fail || !strings.Contains(c.Detail, "lacks chat:write.public") || !strings.Contains(c.Fix, "deploy/slack-app-manifest.yaml") {
			t.Errorf("token scopes = %+v", c)
		}
		c, _ = status(checks, "channel C0DEVELOP1 (#developers)")
		if c.Status != preflight.Fail || !strings.Contains(c.Detail, "not a member") || c.Fix != "/invite @drbot in #developers" {
			t.Errorf("channel without the bot = %+v", c)
		}
	})
}
