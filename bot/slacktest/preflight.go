package slacktest

import (
	"slices"
	"strings"

	"github.com/drbot-dev/drbot/deploy"
	"github.com/drbot-dev/drbot/preflight"
)

// DefaultScopes are the bot scopes the fake's token has unless SetScopes
// changes them: those of deploy/slack-app-manifest.yaml, read from it so
// the two cannot drift apart.
var DefaultScopes = manifestScopes()

func manifestScopes() []string {
	scopes, err := preflight.ManifestScopes(deploy.SlackAppManifest)
	if err != nil {
		panic(err)
	}
	return scopes
}

// SetScopes sets the scopes the bot token has, which every Web API answer
// reports in X-OAuth-Scopes, as Slack does.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append([]string{}, scopes...)
}

// scopeHeader is the X-OAuth-Scopes value. Callers hold s.mu.
func (s *Server) scopeHeader() string {
	if s.scopes == nil {
		return strings.Join(DefaultScopes, ",")
	}
	return strings.Join(s.scopes, ",")
}

// AddChannelWithout seeds a public channel the bot is not a member of. (A
// private channel without the bot is one the fake does not know: Slack
// answers channel_not_found for it.)
func (s *Server) AddChannelWithout(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &Channel{ID: id, Name: name, NotMember: true}
}

// AddPrivateChannel seeds a private channel the bot is a member of.
func (s *Server) AddPrivateChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &Channel{ID: id, Name: name, Private: true}
}

// ScopesWithout returns DefaultScopes less the ones named, for a token
// missing a scope.
func ScopesWithout(missing ...string) []string {
	var out []string
	for _, s := range DefaultScopes {
		if !slices.Contains(missing, s) {
			out = append(out, s)
		}
	}
	return out
}
