// Package bot is drbot's Slack side: the socket-mode loop, Block Kit
// rendering, the incident channel, the control panel, step messages, the
// timeline thread and the Slack action kinds. It is the only package that
// imports slack-go; what to do about a command or click is decided in
// handlers, and runs are driven by the runbook engine.
//
// Everything that announces a run (panel, step messages, timeline, notices,
// closing report) goes through the durable outbox and survives a crash or a
// Slack outage. Replies to one user and the momentary "in progress…" marker
// on a clicked message are sent directly: later they would be worthless.
package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// Principals are Slack user ids and user-group ids.
type Principals struct {
	Users  []string
	Groups []string
}

// Options configure a Bot. Tokens, Outbox and ChannelName are required.
type Options struct {
	BotToken string // xoxb-
	AppToken string // xapp-, for socket mode
	// APIURL is the Web API base URL ending in "/" (a fake Slack in tests);
	// empty means Slack's.
	APIURL     string
	HTTPClient *http.Client

	// Location is the local zone shown next to UTC.
	Location            *time.Location
	StakeholderChannels []string
	DeveloperChannels   []string
	Approvers           Principals
	Responders          Principals
	// ChannelName renders the incident channel name (config.Config.ChannelName).
	ChannelName func(service, env string, at time.Time) string
	// P1Contacts are user-group ids a P1 stakeholder notice mentions.
	P1Contacts []string
	// FollowUps offers Raise follow-up on the closing message (a follow-up
	// repository is configured).
	FollowUps bool

	Outbox Outbox
	Clock  runbook.Clock
	Logger *zap.Logger
	// Workers bounds the commands and clicks handled at once (default 16);
	// more wait in a queue. Steps run on the engine, so a click holds its
	// worker only until its step is claimed.
	Workers int
	// SendInterval is how often the outbox is polled besides wake-ups
	// (default 500ms).
	SendInterval time.Duration
	// GroupTTL is how long user-group members are cached (default 1m).
	GroupTTL time.Duration
	// DeliveryWait bounds how long a notice step waits for Slack to take its
	// post before it reports it as queued (default 10s).
	DeliveryWait time.Duration
	// Observer is told about envelopes, acks, refused clicks and the
	// connection, for metrics (nil: nobody).
	Observer Observer
}

// Bot is drbot in Slack. It implements runbook.Notifier, and its Approvers
// implement runbook.Authorizer.
type Bot struct {
	opts       Options
	api        *slack.Client
	log        *zap.Logger
	clock      runbook.Clock
	outbox     Outbox
	render     Renderer
	approvers  *access
	responders *access
	notifiers  *anyOf
	sender     *sender
	pool       *pool

	engine Engine // set by Bind

	connected atomic.Bool // socket mode is connected (Connected)
	// recvAt is when the receive loop took the envelope it handles now;
	// only that loop reads and writes it (ack latency).
	recvAt time.Time

	mu      sync.Mutex
	self    string // the bot's own user id (auth.test)
	teamURL string // e.g. https://example.slack.com/, for permalinks
}

var _ runbook.Notifier = (*Bot)(nil)

// New returns a Bot. Call Bind with the engine before Run.
func New(opts Options) (*Bot, error) {
	var errs []error
	if !strings.HasPrefix(opts.BotToken, "xoxb-") {
		errs = append(errs, errors.New("bot token must start with xoxb-"))
	}
	if !strings.HasPrefix(opts.AppToken, "xapp-") {
		errs = append(errs, errors.New("app token must start with xapp- (socket mode)"))
	}
	if opts.Outbox == nil {
		errs = append(errs, errors.New("an outbox is required"))
	}
	if opts.ChannelName == nil {
		errs = append(errs, errors.New("a channel name pattern is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("slack bot: %w", errors.Join(errs...))
	}
	if opts.Clock == nil {
		opts.Clock = runbook.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.SendInterval <= 0 {
		opts.SendInterval = 500 * time.Millisecond
	}
	if opts.GroupTTL <= 0 {
		opts.GroupTTL = time.Minute
	}
	if opts.DeliveryWait <= 0 {
		opts.DeliveryWait = 10 * time.Second
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	slackOpts := []slack.Option{slack.OptionAppLevelToken(opts.AppToken), slack.OptionHTTPClient(opts.HTTPClient)}
	if opts.APIURL != "" {
		u := opts.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		slackOpts = append(slackOpts, slack.OptionAPIURL(u))
	}
	log := opts.Logger.Named("bot")
	b := &Bot{
		opts:   opts,
		api:    slack.New(opts.BotToken, slackOpts...),
		log:    log,
		clock:  opts.Clock,
		outbox: opts.Outbox,
		render: Renderer{Location: opts.Location, P1Contacts: opts.P1Contacts, FollowUps: opts.FollowUps},
		pool:   newPool(opts.Workers),
	}
	b.approvers = newAccess(opts.Approvers, b.api, opts.GroupTTL, log)
	b.responders = newAccess(opts.Responders, b.api, opts.GroupTTL, log)
	b.notifiers = &anyOf{b.approvers, b.responders}
	b.sender = &sender{b: b, kick: make(chan struct{}, 1), interval: opts.SendInterval, blocked: map[string]time.Time{}, unanswered: map[int64]bool{}}
	return b, nil
}

// Bind gives the bot the engine it renders and records message ts values
// with. It must be called before Run.
func (b *Bot) Bind(e Engine) { b.engine = e }

// Gate decides who may do something: the engine asks it as a
// runbook.Authorizer, the handlers as a handlers.Access.
type Gate interface {
	runbook.Authorizer
	handlers.Access
}

// Approvers decides who may start, approve, skip, retry and abort (the
// configured approver users and the members of the approver groups).
func (b *Bot) Approvers() Gate { return b.approvers }

// Notifiers decides who may post /dr notify updates: approvers and
// responders.
func (b *Bot) Notifiers() handlers.Access { return b.notifiers }

// update rewrites a message in place (chat.update), falling back to text
// when Slack refuses the blocks.
func (b *Bot) update(ctx context.Context, channel, ts string, msg Message) error {
	text := slack.MsgOptionText(msg.Text, false)
	_, _, _, err := b.api.UpdateMessageContext(ctx, channel, ts, text, slack.MsgOptionBlocks(msg.Blocks...))
	if slices.Contains(tooBig, slackErr(err)) {
		b.log.Warn("blocks refused; updating with text only", zap.String("channel_id", channel), zap.Error(err))
		_, _, _, err = b.api.UpdateMessageContext(ctx, channel, ts, text)
	}
	if err != nil {
		return fmt.Errorf("update %s/%s: %w", channel, ts, err)
	}
	return nil
}

// permalink links to a message, when the workspace URL is known.
func (b *Bot) permalink(channel, ts string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.teamURL == "" || ts == "" {
		return ""
	}
	return b.teamURL + "archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// channelLink links to a channel, when the workspace URL is known.
func (b *Bot) channelLink(channel string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.teamURL == "" {
		return ""
	}
	return b.teamURL + "archives/" + channel
}

// selfID is the bot's own user id (empty before Run).
func (b *Bot) selfID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.self
}
