package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// Exactly-once posts. A post whose answer never came may still be in Slack:
// the process was killed after Slack took it, or Slack acted and the answer
// was lost (a 5xx, a dropped connection). Posting it again would show it
// twice, so every post carries a key as Slack message metadata, and a post
// that may have reached Slack is first looked up by that key.

// metaEventType marks drbot's posts in their metadata.
const metaEventType = "drbot_message"

// A lookup reads at most lookupPages pages of lookupLimit messages, newest
// first for a channel: an incident channel's whole history.
const (
	lookupPages = 10
	lookupLimit = 200
)

// lookupSkew is how much earlier than the run's start (drbot's clock) a
// lookup reads, for clocks that disagree with Slack's.
const lookupSkew = 5 * time.Minute

// keyed is a post's identity: the key its metadata carries, and where and
// since when to look for it.
type keyed struct {
	channel, thread string
	key             string
	since           time.Time // zero: read lookupPages pages back
}

// unsure reports whether message m may already be in Slack: it was pending
// when this process started (a killed process may have sent it), or an
// earlier attempt here ended without an answer.
func (s *sender) unsure(m OutboxMessage) bool {
	return m.ID <= s.pendingAtStart || s.unanswered[m.ID]
}

// carryUnsure moves m's uncertainty to the later message that redraws the
// same Slack message in its place.
func (s *sender) carryUnsure(m, later OutboxMessage) {
	if s.unsure(m) {
		s.unanswered[later.ID] = true
	}
	delete(s.unanswered, m.ID)
}

// send posts msg under k, unless m may already have posted it: then the
// message Slack has is the result.
func (s *sender) send(ctx context.Context, m OutboxMessage, k keyed, msg Message) (string, error) {
	ts, err := s.lookup(ctx, m, k)
	if err != nil || ts != "" {
		return ts, err
	}
	return s.postKeyed(ctx, m, k, msg)
}

// lookup returns the ts of k's message if m is unsure and Slack has it.
func (s *sender) lookup(ctx context.Context, m OutboxMessage, k keyed) (string, error) {
	return s.lookupBy(ctx, m, k, byKey(k.key))
}

// lookupBy returns what match finds of m's earlier attempt in k's channel
// (or thread), if m is unsure. Where drbot may not read the channel (not a
// member, no history scope) it returns "" with a warning: posting at least
// once beats never posting.
func (s *sender) lookupBy(ctx context.Context, m OutboxMessage, k keyed, match matcher) (string, error) {
	if !s.unsure(m) {
		return "", nil
	}
	log := s.b.log.With(zap.Int64("outbox_id", m.ID), zap.String("run_id", m.RunID), zap.String("channel_id", k.channel), zap.String("key", k.key))
	found, err := s.find(ctx, k, match)
	switch {
	case err != nil && slices.Contains(permanent, slackErr(err)):
		log.Warn("cannot look for a post that may have reached Slack; posting it (it may show twice)", zap.Error(err))
		return "", nil
	case err != nil:
		return "", err
	case found != "":
		log.Info("post found in Slack; not posting it again", zap.String("found", found))
	}
	return found, nil
}

// A matcher recognizes drbot's earlier post among a channel's messages and
// returns what identifies it.
type matcher func(slack.Message) (string, bool)

// byKey finds a message by the key in its metadata; it returns its ts.
func byKey(key string) matcher {
	return func(msg slack.Message) (string, bool) {
		if msg.Metadata.EventType == metaEventType && msg.Metadata.EventPayload["key"] == key {
			return msg.Timestamp, true
		}
		return "", false
	}
}

// byFileName finds a shared file by its name (uploads carry no metadata);
// it returns the file's id.
func byFileName(name string) matcher {
	return func(msg slack.Message) (string, bool) {
		for _, f := range msg.Files {
			if f.Name == name {
				return f.ID, true
			}
		}
		return "", false
	}
}

// postKeyed posts msg with k's key as metadata; when the post ends without
// an answer, m becomes unsure.
func (s *sender) postKeyed(ctx context.Context, m OutboxMessage, k keyed, msg Message) (string, error) {
	ts, err := s.post(ctx, k.channel, k.thread, msg, slack.MsgOptionMetadata(slack.SlackMetadata{
		EventType: metaEventType, EventPayload: map[string]any{"key": k.key},
	}))
	s.noteAnswer(m, err)
	return ts, err
}

// noteAnswer makes m unsure when its call failed in a way Slack may still
// have carried out: anything but Slack's own refusal or a rate limit.
func (s *sender) noteAnswer(m OutboxMessage, err error) {
	var rl *slack.RateLimitedError
	if err != nil && slackErr(err) == "" && !errors.As(err, &rl) {
		s.unanswered[m.ID] = true
	}
}

// find returns what match finds in k's channel (or thread) since k.since,
// newest first in a channel, or "" if nothing matches.
func (s *sender) find(ctx context.Context, k keyed, match matcher) (string, error) {
	oldest := ""
	if !k.since.IsZero() {
		from := k.since.Add(-lookupSkew)
		oldest = fmt.Sprintf("%d.%06d", from.Unix(), from.Nanosecond()/1000)
	}
	cursor := ""
	for range lookupPages {
		var (
			msgs []slack.Message
			err  error
		)
		if k.thread == "" {
			var h *slack.GetConversationHistoryResponse
			h, err = s.b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: k.channel, Cursor: cursor, Oldest: oldest, Limit: lookupLimit, IncludeAllMetadata: true})
			if err == nil {
				msgs, cursor = h.Messages, h.ResponseMetaData.NextCursor
			}
		} else {
			msgs, _, cursor, err = s.b.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: k.channel, Timestamp: k.thread, Cursor: cursor, Oldest: oldest, Limit: lookupLimit, IncludeAllMetadata: true})
		}
		if err != nil {
			return "", fmt.Errorf("look for %s in %s: %w", k.key, k.channel, err)
		}
		for _, msg := range msgs {
			if found, ok := match(msg); ok {
				return found, nil
			}
		}
		if cursor == "" {
			break
		}
	}
	return "", nil
}
