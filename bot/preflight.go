package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/preflight"
)

// Probe reads drbot's Slack setup for preflight: the bot token's scopes,
// the channels it posts to and the user groups it resolves. It only reads
// (auth.test, conversations.info, usergroups.users.list).
type Probe struct {
	api *slack.Client

	mu     sync.Mutex
	scopes string // X-OAuth-Scopes of the last answer
}

var _ preflight.Slack = (*Probe)(nil)

// NewProbe returns a Probe for the bot token; apiURL "" means Slack's.
func NewProbe(botToken, apiURL string, hc *http.Client) *Probe {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	p := &Probe{}
	copied := *hc
	base := copied.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	copied.Transport = scopeRecorder{base: base, p: p}
	opts := []slack.Option{slack.OptionHTTPClient(&copied)}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	p.api = slack.New(botToken, opts...)
	return p
}

// scopeRecorder keeps the X-OAuth-Scopes header Slack sends with every Web
// API answer (Slack docs, "Scopes and permissions": the scopes of the token
// used), which slack-go does not expose.
type scopeRecorder struct {
	base http.RoundTripper
	p    *Probe
}

// RoundTrip sends req and records the scopes of the answer.
func (r scopeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		if h, ok := resp.Header["X-Oauth-Scopes"]; ok {
			r.p.mu.Lock()
			r.p.scopes = strings.Join(h, ",")
			r.p.mu.Unlock()
		}
	}
	return resp, err
}

// Scopes calls auth.test and returns the token's scopes.
func (p *Probe) Scopes(ctx context.Context) ([]string, error) {
	if _, err := p.api.AuthTestContext(ctx); err != nil {
		return nil, fmt.Errorf("auth.test: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range strings.Split(p.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// Channel reads a channel (conversations.info); channel_not_found is
// Missing: no such channel, or a private one the bot is not in.
func (p *Probe) Channel(ctx context.Context, id string) (preflight.ChannelInfo, error) {
	ch, err := p.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if slackCode(err) == "channel_not_found" {
		return preflight.ChannelInfo{Lookup: preflight.Missing}, nil
	}
	if err != nil {
		return preflight.ChannelInfo{}, fmt.Errorf("conversations.info %s: %w", id, err)
	}
	return preflight.ChannelInfo{Lookup: preflight.Found, Name: ch.Name, Member: ch.IsMember, Private: ch.IsPrivate, Archived: ch.IsArchived}, nil
}

// GroupMembers resolves a user group (usergroups.users.list).
func (p *Probe) GroupMembers(ctx context.Context, id string) ([]string, bool, error) {
	users, err := p.api.GetUserGroupMembersContext(ctx, id)
	switch code := slackCode(err); {
	case code == "no_such_subteam" || code == "subteam_not_found":
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("usergroups.users.list %s: %w", id, err)
	}
	return users, true, nil
}

// slackCode is the error code of a Web API answer ("" if err is not one).
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// PostDevelopers posts text to the developer channels through the outbox,
// once per key: drbot serve's start-up preflight uses a key made of the day
// and its problems, so a process restarting in a loop posts the same
// problems once, and a new problem again.
func (b *Bot) PostDevelopers(ctx context.Context, key, text string) error {
	var msgs []OutboxMessage
	for _, ch := range b.opts.DeveloperChannels {
		msgs = append(msgs, postMessage("preflight/"+key+"/"+ch, "", ch, Message{Text: text}))
	}
	return b.enqueue(ctx, msgs...)
}
