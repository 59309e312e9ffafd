package bot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// OutboxMessage is a Slack write waiting in the durable outbox. Its fields
// are store.OutboxMessage's, in the same order, so cmd converts between the
// two with a plain type conversion.
type OutboxMessage struct {
	ID        int64
	Key       string // unique; enqueueing an existing key changes nothing
	RunID     string
	Kind      string
	Payload   []byte
	Attempts  int
	NextAt    time.Time
	LastError string
	Result    string // the Slack ts once delivered
	DoneAt    time.Time
}

// Outbox stores Slack writes until they are delivered (store.Store, through
// cmd's adapter).
type Outbox interface {
	// Enqueue stores msgs, all or none; a key already stored is left as it
	// is.
	Enqueue(ctx context.Context, msgs ...OutboxMessage) error
	Due(ctx context.Context, now time.Time, limit int) ([]OutboxMessage, error)
	Delivered(ctx context.Context, id int64, result string, at time.Time) error
	Postpone(ctx context.Context, id int64, next time.Time, lastErr string) error
	OutboxResult(ctx context.Context, key string) (result string, ok bool, err error)
	// LastPending is the id of the newest undelivered message (0 if none).
	LastPending(ctx context.Context) (int64, error)
}

// Outbox message kinds. Run messages are rendered when they are delivered,
// from the run's current view, so a late delivery never shows stale state
// and consecutive updates of one message collapse into one.
const (
	kindPost     = "post"     // a message rendered at enqueue time (notices)
	kindPanel    = "panel"    // post or update the control panel
	kindStep     = "step"     // post or update a step's message
	kindTimeline = "timeline" // one reply in the timeline thread
	kindClosing  = "closing"  // the closing report, to the incident or a stakeholder channel
)

// payload is an outbox message's body.
type payload struct {
	RunID   string         `json:"run_id,omitempty"`
	StepID  string         `json:"step_id,omitempty"`
	Channel string         `json:"channel,omitempty"` // post, closing: where; empty means the incident channel
	Event   *runbook.Event `json:"event,omitempty"`
	Text    string         `json:"text,omitempty"`
	Blocks  *slack.Blocks  `json:"blocks,omitempty"`
	File    string         `json:"file,omitempty"` // report: the file's name
}

// Meta keys the bot keeps on a run (runbook.Run.Meta).
const (
	metaChannel     = "channel"
	metaChannelName = "channel_name"
	metaPanelTS     = "panel_ts"
	metaTimelineTS  = "timeline_ts"
	metaStepTS      = "step_ts." // + step id
)

// Delivery results that are not a ts.
const (
	resultFailed    = "failed: " // + the error: given up
	resultCoalesced = "coalesced"
	resultNoChannel = "skipped: the run has no channel"
	resultNoMessage = "skipped: the step has no message"
)

// Engine is what the bot needs of runbook.Engine.
type Engine interface {
	View(ctx context.Context, runID string) (*runbook.RunView, error)
	SetMeta(ctx context.Context, runID string, kv map[string]string) error
	// Events is a run's stored timeline, to queue what a crash kept from
	// the outbox (RedrawOpen).
	Events(ctx context.Context, runID string) ([]runbook.Event, error)
}

// permanent are Slack errors that retrying does not fix.
var permanent = []string{
	"channel_not_found", "is_archived", "not_in_channel", "invalid_auth", "account_inactive", "token_revoked",
	"missing_scope", "restricted_action", "cant_update_message", "edit_window_closed", "not_authed",
}

// tooBig are Slack errors about the blocks: the message is sent again as text.
var tooBig = []string{"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long"}

func slackErr(err error) string {
	var e slack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	return ""
}

// sender delivers the outbox: one goroutine, in enqueue order, with retries,
// backoff and Slack's Retry-After.
type sender struct {
	b        *Bot
	kick     chan struct{}
	interval time.Duration
	// blocked holds runs whose earlier message is postponed: their later
	// messages wait, so a run's messages keep their order.
	blocked map[string]time.Time
	// shown is what this process last sent to each run message (channel/ts
	// → fingerprint), so an update identical to what Slack shows is not
	// sent (issue 10: 8–13 per run were). Memory only: after a restart the
	// first update of a message is sent again, which is harmless.
	shown map[string]string
	// pendingAtStart is the newest message pending when this process
	// started (-1 until the outbox was read): it and the ones before it may
	// have been sent by a process that was killed (posted.go).
	pendingAtStart int64
	// unanswered are messages whose post here ended without an answer.
	unanswered map[int64]bool
}

// shownMax bounds sender.shown; when full it starts over, costing one
// redundant update per message (a run has ~30 messages).
const shownMax = 10000

// fingerprint identifies a message's content.
func fingerprint(msg Message) string {
	blocks, _ := json.Marshal(msg.Blocks)
	sum := sha256.Sum256(append([]byte(msg.Text+"\x00"), blocks...))
	return string(sum[:])
}

// remember notes what a message now shows.
func (s *sender) remember(channel, ts string, msg Message) {
	if s.shown == nil || len(s.shown) >= shownMax {
		s.shown = map[string]string{}
	}
	s.shown[channel+"/"+ts] = fingerprint(msg)
}

// maxAttempts bounds retries of a failing message (about 20 minutes with
// the backoff below) before it is given up and logged.
const maxAttempts = 10

// backoff is the wait before attempt attempts+1: doubling from 1 s up to
// 5 min, with jitter in [d/2, d) so messages (and replicas) that failed
// together do not all come back together.
func backoff(attempts int) time.Duration {
	d := min(time.Second<<min(attempts, 9), 5*time.Minute)
	return d/2 + rand.N(d/2)
}

// wake asks the sender to look at the outbox now.
func (s *sender) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run delivers until ctx ends.
func (s *sender) run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.pendingAtStart = -1
	for {
		if pause := s.deliverDue(ctx); pause > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-t.C:
		}
	}
}

// deliverDue delivers one batch; it returns how long to pause when Slack
// rate-limits us.
func (s *sender) deliverDue(ctx context.Context) time.Duration {
	b := s.b
	now := b.clock.Now()
	if s.pendingAtStart < 0 && !s.notePending(ctx) {
		return 0
	}
	msgs, err := b.outbox.Due(ctx, now, 100)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Error("read outbox", zap.Error(err))
		}
		return 0
	}
	lost := map[string]bool{} // runs whose message another replica took (held)
	for i, m := range msgs {
		if ctx.Err() != nil {
			return 0
		}
		if until, ok := s.blocked[m.RunID]; ok && m.RunID != "" {
			if now.Before(until) {
				continue
			}
			delete(s.blocked, m.RunID)
		}
		if later, ok := coalesced(m, msgs[i+1:]); ok {
			s.carryUnsure(m, later)
			s.done(ctx, m, resultCoalesced)
			continue
		}
		if !s.held(ctx, m, lost) {
			continue
		}
		result, err := s.deliver(ctx, m)
		if err == nil {
			s.done(ctx, m, result)
			continue
		}
		if pause := s.failed(ctx, m, err); pause > 0 {
			return pause
		}
	}
	return 0
}

// notePending reads which messages were pending when this process started;
// false if the outbox could not be read.
func (s *sender) notePending(ctx context.Context) bool {
	id, err := s.b.outbox.LastPending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.b.log.Error("read outbox", zap.Error(err))
		}
		return false
	}
	s.pendingAtStart = id
	return true
}

// coalesced returns the later message in the batch that redraws the same
// Slack message, so this one need not be sent.
func coalesced(m OutboxMessage, later []OutboxMessage) (OutboxMessage, bool) {
	if m.Kind != kindPanel && m.Kind != kindStep {
		return OutboxMessage{}, false
	}
	var p payload
	if json.Unmarshal(m.Payload, &p) != nil {
		return OutboxMessage{}, false
	}
	i := slices.IndexFunc(later, func(o OutboxMessage) bool {
		var q payload
		return o.Kind == m.Kind && o.RunID == m.RunID && json.Unmarshal(o.Payload, &q) == nil && q.StepID == p.StepID
	})
	if i < 0 {
		return OutboxMessage{}, false
	}
	return later[i], true
}

func (s *sender) done(ctx context.Context, m OutboxMessage, result string) {
	delete(s.unanswered, m.ID)
	// Slack has the message: recording that must outlive a shutdown, or the
	// next process posts it again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.b.outbox.Delivered(ctx, m.ID, result, s.b.clock.Now()); err != nil {
		s.b.log.Error("mark delivered", zap.Int64("outbox_id", m.ID), zap.String("run_id", m.RunID), zap.Error(err))
	}
}

// failed postpones or gives up a message; it returns a pause when Slack
// asked us to slow down.
func (s *sender) failed(ctx context.Context, m OutboxMessage, err error) time.Duration {
	log := s.b.log.With(zap.Int64("outbox_id", m.ID), zap.String("run_id", m.RunID), zap.String("kind", m.Kind), zap.Int("attempts", m.Attempts+1))
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		next := s.b.clock.Now().Add(rl.RetryAfter)
		log.Warn("slack rate limit", zap.Duration("retry_after", rl.RetryAfter))
		s.postpone(ctx, m, next, err)
		return max(rl.RetryAfter, time.Second)
	}
	code := slackErr(err)
	if slices.Contains(permanent, code) || m.Attempts+1 >= maxAttempts {
		log.Error("slack message given up", zap.Error(err))
		s.done(ctx, m, resultFailed+err.Error())
		return 0
	}
	log.Warn("slack message postponed", zap.Error(err))
	s.postpone(ctx, m, s.b.clock.Now().Add(backoff(m.Attempts)), err)
	return 0
}

func (s *sender) postpone(ctx context.Context, m OutboxMessage, next time.Time, cause error) {
	if m.RunID != "" {
		s.blocked[m.RunID] = next
	}
	if err := s.b.outbox.Postpone(ctx, m.ID, next, cause.Error()); err != nil {
		s.b.log.Error("postpone message", zap.Int64("outbox_id", m.ID), zap.Error(err))
	}
}

// deliver sends one message and returns its result (a ts).
func (s *sender) deliver(ctx context.Context, m OutboxMessage) (string, error) {
	var p payload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return resultFailed + "bad payload: " + err.Error(), nil
	}
	if m.Kind == kindPost {
		var blocks []slack.Block
		if p.Blocks != nil {
			blocks = p.Blocks.BlockSet
		}
		return s.send(ctx, m, keyed{channel: p.Channel, key: m.Key}, Message{Text: p.Text, Blocks: blocks})
	}
	view, err := s.b.engine.View(ctx, p.RunID)
	if err != nil {
		if _, refused := runbook.IsRefusal(err); refused {
			return resultFailed + err.Error(), nil // the run is gone
		}
		return "", fmt.Errorf("view %s: %w", p.RunID, err)
	}
	channel := view.Run.Meta[metaChannel]
	if channel == "" && !(p.Channel != "" && (m.Kind == kindClosing || m.Kind == kindComms)) {
		return resultNoChannel, nil
	}
	r := s.b.render
	// Messages drawn in place are keyed by what they are, events and
	// closings by their outbox key.
	in := func(metaKey string) keyed {
		return keyed{channel: channel, key: view.Run.ID + "/" + metaKey, since: view.Run.StartedAt}
	}
	switch m.Kind {
	case kindPanel:
		return s.upsert(ctx, m, view, in(metaPanelTS), metaPanelTS, r.Panel(view), true)
	case kindStep:
		msg, ok := r.Step(view, p.StepID)
		_, sv, _ := stepView(view, p.StepID)
		key := metaStepTS + p.StepID
		if !ok || (view.Run.Meta[key] == "" && !needsMessage(sv)) {
			return resultNoMessage, nil
		}
		return s.upsert(ctx, m, view, in(key), key, msg, false)
	case kindTimeline:
		root := view.Run.Meta[metaTimelineTS]
		if root == "" {
			if root, err = s.send(ctx, m, in(metaTimelineTS), r.TimelineRoot(view)); err != nil {
				return "", err
			}
			s.setMeta(ctx, view.Run.ID, metaTimelineTS, root)
		}
		if p.Event == nil {
			return root, nil
		}
		return s.send(ctx, m, keyed{channel: channel, thread: root, key: m.Key, since: view.Run.StartedAt}, r.TimelineEvent(view, *p.Event))
	case kindClosing:
		return s.deliverClosing(ctx, m, view, channel, p)
	case kindComms:
		return s.deliverComms(ctx, m, view, channel, p)
	case kindReport:
		return s.deliverReport(ctx, m, view, channel, p)
	case kindTopic:
		return s.deliverTopic(ctx, view, channel)
	}
	return resultFailed + "unknown kind " + m.Kind, nil
}

// needsMessage reports whether a step gets a message of its own: steps a
// person approves, and automatic steps once they fail (Retry/Skip).
func needsMessage(s runbook.StepView) bool {
	return !s.Step.Auto || s.State.State == runbook.Failed
}

// upsert updates the message whose ts is kept under metaKey, or posts it
// (and pins it) and keeps its ts.
func (s *sender) upsert(ctx context.Context, m OutboxMessage, view *runbook.RunView, k keyed, metaKey string, msg Message, pin bool) (string, error) {
	channel := k.channel
	ts := view.Run.Meta[metaKey]
	if ts == "" {
		// A killed process may have posted it without keeping its ts.
		found, err := s.lookup(ctx, m, k)
		if err != nil {
			return "", err
		}
		if found != "" {
			s.keep(ctx, view.Run.ID, channel, metaKey, found, pin)
			ts = found
		}
	}
	if ts != "" {
		if s.shown[channel+"/"+ts] == fingerprint(msg) {
			return ts, nil // Slack shows this already
		}
		err := s.b.update(ctx, channel, ts, msg)
		if err == nil {
			s.remember(channel, ts, msg)
		}
		if code := slackErr(err); code != "message_not_found" {
			return ts, err
		}
		s.b.log.Warn("message gone; posting it again", zap.String("run_id", view.Run.ID), zap.String("meta", metaKey))
	}
	ts, err := s.postKeyed(ctx, m, k, msg)
	if err != nil {
		return "", err
	}
	s.remember(channel, ts, msg)
	s.keep(ctx, view.Run.ID, channel, metaKey, ts, pin)
	return ts, nil
}

// keep pins a message drawn in place (the panel) and keeps its ts.
func (s *sender) keep(ctx context.Context, runID, channel, metaKey, ts string, pin bool) {
	if pin {
		if err := s.b.api.AddPinContext(ctx, channel, slack.NewRefToMessage(channel, ts)); err != nil && slackErr(err) != "already_pinned" {
			s.b.log.Warn("pin panel", zap.String("run_id", runID), zap.String("channel_id", channel), zap.Error(err))
		}
	}
	s.setMeta(ctx, runID, metaKey, ts)
}

func (s *sender) setMeta(ctx context.Context, runID, key, value string) {
	if err := s.b.engine.SetMeta(ctx, runID, map[string]string{key: value}); err != nil {
		s.b.log.Error("keep message ts", zap.String("run_id", runID), zap.String("meta", key), zap.Error(err))
	}
}

// post sends a message (a reply when thread is set); blocks Slack refuses are
// dropped and the text is sent alone, so an event is never lost to layout.
func (s *sender) post(ctx context.Context, channel, thread string, msg Message, extra ...slack.MsgOption) (string, error) {
	opts := append([]slack.MsgOption{slack.MsgOptionText(msg.Text, false), slack.MsgOptionDisableLinkUnfurl()}, extra...)
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	_, ts, err := s.b.api.PostMessageContext(ctx, channel, append(opts, slack.MsgOptionBlocks(msg.Blocks...))...)
	if slices.Contains(tooBig, slackErr(err)) {
		s.b.log.Warn("blocks refused; sending text only", zap.String("channel_id", channel), zap.Error(err))
		_, ts, err = s.b.api.PostMessageContext(ctx, channel, opts...)
	}
	if err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, err)
	}
	return ts, nil
}

// enqueue stores messages in the outbox and wakes the sender.
func (b *Bot) enqueue(ctx context.Context, msgs ...OutboxMessage) error {
	err := b.outbox.Enqueue(ctx, msgs...)
	b.sender.wake()
	return err
}

// message builds an outbox message.
func message(key, kind string, p payload) OutboxMessage {
	body, _ := json.Marshal(p)
	return OutboxMessage{Key: key, RunID: p.RunID, Kind: kind, Payload: body}
}

// postMessage builds an outbox post of a rendered message.
func postMessage(key, runID, channel string, msg Message) OutboxMessage {
	return message(key, kindPost, payload{RunID: runID, Channel: channel, Text: msg.Text, Blocks: &slack.Blocks{BlockSet: msg.Blocks}})
}

// waitDelivered waits until the messages with keys are delivered (or given
// up), up to timeout, and returns their results by key.
func (b *Bot) waitDelivered(ctx context.Context, timeout time.Duration, keys ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := map[string]string{}
	for {
		for _, k := range keys {
			if _, ok := out[k]; ok {
				continue
			}
			res, ok, err := b.outbox.OutboxResult(ctx, k)
			if err != nil && ctx.Err() == nil {
				return out, err
			}
			if ok {
				out[k] = res
			}
		}
		if len(out) == len(keys) {
			return out, nil
		}
		b.sender.wake()
		select {
		case <-ctx.Done():
			return out, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isFailed reports whether a delivery result is a given-up message.
func isFailed(result string) bool { return strings.HasPrefix(result, resultFailed) }
