package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

var _ handlers.Incidents = (*Bot)(nil)

// scopes names the bot scope each Web API method the bot calls needs, for
// missing_scope errors that do not say (deploy/slack-app-manifest.yaml lists
// the same).
var scopes = map[string]string{
	"conversations.create":       "channels:manage",
	"conversations.setTopic":     "channels:manage",
	"conversations.setPurpose":   "channels:manage",
	"conversations.invite":       "channels:manage",
	"chat.postMessage":           "chat:write",
	"conversations.history":      "channels:history",
	"conversations.replies":      "channels:history",
	"pins.add":                   "pins:write",
	"files.getUploadURLExternal": "files:write",
	"usergroups.users.list":      "usergroups:read",
}

// scopeRefusal words a missing_scope error for the user, or returns nil.
func scopeRefusal(method string, err error) error {
	var e slack.SlackErrorResponse
	if !errors.As(err, &e) || e.Err != "missing_scope" {
		return nil
	}
	scope := e.Needed
	if scope == "" {
		scope = scopes[method]
	}
	return runbook.Refusef("I could not create the incident channel: the Slack app lacks the %s scope (%s answered missing_scope). "+
		"Add it to the app (deploy/slack-app-manifest.yaml lists every scope drbot needs), reinstall the app, and try again.", scope, method)
}

var notChannelChars = regexp.MustCompile(`[^a-z0-9_-]+`)

// channelName makes a valid Slack channel name: lowercase letters, digits,
// '-' and '_', at most 80 characters; suffix makes it unique when taken.
func channelName(base string, suffix int) string {
	name := strings.Trim(notChannelChars.ReplaceAllString(strings.ToLower(base), "-"), "-")
	tail := ""
	if suffix > 1 {
		tail = "-" + strconv.Itoa(suffix)
	}
	if len(name)+len(tail) > maxChannelName {
		name = strings.TrimRight(name[:maxChannelName-len(tail)], "-")
	}
	return name + tail
}

// OpenChannel creates the incident channel (a numbered name when the name is
// taken), sets its topic and purpose and invites the requester and the
// responders. A missing scope comes back as a refusal naming it. Invitations
// that fail are warnings: the channel is usable without them.
func (b *Bot) OpenChannel(ctx context.Context, req handlers.ChannelRequest) (handlers.Channel, error) {
	base := b.opts.ChannelName(req.Service, req.Env, req.At)
	log := b.log.With(zap.String("user_id", req.Requester))
	var ch *slack.Channel
	var err error
	for i := 1; i <= 20; i++ {
		name := channelName(base, i)
		err = retryRateLimited(ctx, func() (err error) {
			ch, err = b.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name})
			return err
		})
		if slackErr(err) != "name_taken" {
			break
		}
	}
	if err != nil {
		if r := scopeRefusal("conversations.create", err); r != nil {
			return handlers.Channel{}, r
		}
		if slackErr(err) == "name_taken" {
			return handlers.Channel{}, runbook.Refusef("I could not create the incident channel: %s and 19 numbered variants are taken; archive old incident channels or change slack.channel_name", channelName(base, 1))
		}
		return handlers.Channel{}, fmt.Errorf("create channel %s: %w", channelName(base, 1), err)
	}
	out := handlers.Channel{ID: ch.ID, Name: ch.Name}
	log = log.With(zap.String("channel_id", ch.ID))
	log.Info("incident channel created", zap.String("channel", ch.Name))

	topic := channelTopic(req)
	if _, err := b.api.SetTopicOfConversationContext(ctx, ch.ID, truncate(topic, maxTopic)); err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the channel topic was not set: %v", err))
	}
	purpose := fmt.Sprintf("Disaster recovery: %s (%s) for %s/%s, run with drbot. The pinned panel shows every step; the timeline thread has every event.",
		req.Title, req.Scenario, req.Service, req.Env)
	if _, err := b.api.SetPurposeOfConversationContext(ctx, ch.ID, truncate(purpose, maxTopic)); err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the channel purpose was not set: %v", err))
	}
	if w := b.invite(ctx, ch.ID, req.Requester, req.Comms, req.Incident.TechLead); w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	for _, w := range out.Warnings {
		log.Warn("incident channel", zap.String("warning", w))
	}
	return out, nil
}

// rateLimitTries bounds retryRateLimited: a person waits on these calls.
const rateLimitTries = 5

// retryRateLimited makes a Web API call a person waits on (creating the
// incident channel) again when Slack answers 429, after its Retry-After,
// a few times within ctx. Messages go through the outbox, which does the
// same without holding anyone.
func retryRateLimited(ctx context.Context, call func() error) error {
	for try := 1; ; try++ {
		err := call()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || try == rateLimitTries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(rl.RetryAfter):
		}
	}
}

// maxInvite is how many users conversations.invite takes at once
// (https://api.slack.com/methods/conversations.invite: up to 1000).
const maxInvite = 1000

// invite brings the requester and the responders into the channel; it
// returns a warning when some could not be invited.
func (b *Bot) invite(ctx context.Context, channel string, leads ...string) string {
	responders, err := b.responders.Members(ctx)
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("responder groups could not be read (%v)", err))
	}
	users := append(slices.Clone(leads), responders...)
	self := b.selfID()
	users = slices.DeleteFunc(users, func(u string) bool { return u == "" || u == self })
	slices.Sort(users)
	users = slices.Compact(users)
	for start := 0; start < len(users); start += maxInvite {
		batch := users[start:min(start+maxInvite, len(users))]
		if _, err := b.api.InviteUsersToConversationContext(ctx, channel, batch...); err != nil && slackErr(err) != "already_in_channel" {
			problems = append(problems, fmt.Sprintf("inviting %d people failed (%v); invite them by hand", len(batch), err))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return "Not everyone was invited: " + strings.Join(problems, "; ")
}

// Abandon explains in a channel that no run started in it.
func (b *Bot) Abandon(ctx context.Context, ch handlers.Channel, reason string) {
	msg := fmt.Sprintf("⚠️ No run started in this channel: %s\nYou can archive it, or start again with `/dr start`.", reason)
	if _, _, err := b.api.PostMessageContext(ctx, ch.ID, slack.MsgOptionText(truncate(msg, maxSectionText), false)); err != nil {
		b.log.Error("explain abandoned channel", zap.String("channel_id", ch.ID), zap.Error(err))
	}
}

// Announce posts a /dr notify update to the stakeholder channels through the
// outbox.
func (b *Bot) Announce(ctx context.Context, runID, actor, text string) error {
	view, err := b.engine.View(ctx, runID)
	if err != nil {
		return err
	}
	if len(b.opts.StakeholderChannels) == 0 {
		return runbook.Refusef("no stakeholder channels are configured (slack.stakeholder_channels in drbot.yaml)")
	}
	now := b.clock.Now()
	msg := b.render.Update(view, actor, text, now)
	var msgs []OutboxMessage
	for _, ch := range b.opts.StakeholderChannels {
		key := fmt.Sprintf("update:%s:%d:%s", runID, now.UnixNano(), ch)
		msgs = append(msgs, postMessage(key, runID, ch, msg))
	}
	if err := b.enqueue(ctx, msgs...); err != nil {
		return fmt.Errorf("queue stakeholder update: %w", err)
	}
	return nil
}

// InviteLeads brings leads named after the start (/dr roles) into the
// incident channel; it returns a warning when some could not be invited.
func (b *Bot) InviteLeads(ctx context.Context, channel string, users ...string) string {
	return b.invite(ctx, channel, users...)
}
