package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Slack is what the Slack checks read (the bot implements it).
type Slack interface {
	// Scopes returns the bot token's OAuth scopes (auth.test answers them
	// in X-OAuth-Scopes).
	Scopes(ctx context.Context) ([]string, error)
	// Channel reads a channel as the bot sees it (conversations.info).
	Channel(ctx context.Context, id string) (ChannelInfo, error)
	// GroupMembers resolves a user group (usergroups.users.list).
	GroupMembers(ctx context.Context, id string) (members []string, found bool, err error)
}

// ChannelInfo is a channel as the bot sees it.
type ChannelInfo struct {
	Lookup   Lookup // Missing: not found, or private without the bot
	Name     string
	Member   bool
	Private  bool
	Archived bool
}

// SlackTarget is drbot's Slack setup.
type SlackTarget struct {
	StakeholderChannels []string
	DeveloperChannels   []string
	ApproverGroups      []string
	ResponderGroups     []string
	// Scopes are the bot scopes drbot uses (deploy/slack-app-manifest.yaml).
	Scopes []string
}

// scopePublic lets the bot post to public channels it has not joined.
const scopePublic = "chat:write.public"

func checkSlack(ctx context.Context, s Slack, t SlackTarget) []Check {
	var out []Check
	add := func(name string, st Status, detail, fix string) {
		out = append(out, Check{Family: FamilySlack, Name: name, Status: st, Detail: detail, Fix: fix})
	}
	have, err := s.Scopes(ctx)
	switch {
	case err != nil:
		add("token scopes", Fail, err.Error(), "check SLACK_BOT_TOKEN")
	default:
		var missing []string
		for _, sc := range t.Scopes {
			if !slices.Contains(have, sc) {
				missing = append(missing, sc)
			}
		}
		if len(missing) > 0 {
			add("token scopes", Fail, "the bot token lacks "+strings.Join(missing, ", "),
				"add the scopes of deploy/slack-app-manifest.yaml to the app (OAuth & Permissions) and reinstall it to the workspace")
		} else {
			add("token scopes", OK, "has "+strings.Join(t.Scopes, ", "), "")
		}
	}
	public := err == nil && slices.Contains(have, scopePublic)
	channels := func(key string, ids []string) {
		for _, id := range ids {
			ch, err := s.Channel(ctx, id)
			name := "channel " + id
			if ch.Name != "" {
				name += " (#" + ch.Name + ")"
			}
			switch {
			case err != nil:
				add(name, Fail, err.Error(), "")
			case ch.Lookup != Found:
				add(name, Fail, "not found: no such channel, or a private channel drbot is not in",
					fmt.Sprintf("check slack.%s in drbot.yaml (channel ids, e.g. C0123ABCD), and /invite @drbot to a private channel", key))
			case ch.Archived:
				add(name, Fail, "archived", fmt.Sprintf("unarchive it or change slack.%s in drbot.yaml", key))
			case ch.Member:
				add(name, OK, "drbot is a member and may post", "")
			case !ch.Private && public:
				add(name, Warn, "drbot is not a member: it posts through chat:write.public, but may not read back its posts, so after a crash or a lost answer a post may show twice",
					fmt.Sprintf("/invite @drbot in #%s", ch.Name))
			default:
				add(name, Fail, "drbot is not a member and its token lacks chat:write.public: posts would fail with not_in_channel",
					fmt.Sprintf("/invite @drbot in #%s", ch.Name))
			}
		}
	}
	channels("stakeholder_channels", t.StakeholderChannels)
	channels("developer_channels", t.DeveloperChannels)
	groups := func(key string, ids []string) {
		for _, id := range ids {
			members, found, err := s.GroupMembers(ctx, id)
			name := "user group " + id
			switch {
			case err != nil:
				add(name, Fail, err.Error(), "the token needs usergroups:read")
			case !found:
				add(name, Fail, "not found", fmt.Sprintf("check slack.%s.groups in drbot.yaml (user group ids look like S0123ABCD)", key))
			case len(members) == 0:
				add(name, Warn, "resolves, but has no members", "")
			default:
				add(name, OK, fmt.Sprintf("%d members", len(members)), "")
			}
		}
	}
	groups("approvers", t.ApproverGroups)
	groups("responders", dedupe(t.ResponderGroups, t.ApproverGroups))
	return out
}

// dedupe returns the ids of list not already in seen.
func dedupe(list, seen []string) []string {
	var out []string
	for _, id := range list {
		if !slices.Contains(seen, id) {
			out = append(out, id)
		}
	}
	return out
}

// ManifestScopes reads the bot scopes of a Slack app manifest
// (oauth_config.scopes.bot), the one list of the scopes drbot uses.
func ManifestScopes(manifest []byte) ([]string, error) {
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("slack app manifest: %w", err)
	}
	if len(m.OAuth.Scopes.Bot) == 0 {
		return nil, fmt.Errorf("slack app manifest: no oauth_config.scopes.bot")
	}
	return m.OAuth.Scopes.Bot, nil
}
