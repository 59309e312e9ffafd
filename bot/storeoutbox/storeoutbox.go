// Package storeoutbox makes the SQLite store the bot's outbox and envelope
// record: bot does not import store and store does not import bot, so the
// two message types (same fields) meet here, for drbot serve, the bench and
// the tests alike.
package storeoutbox

import (
	"context"
	"time"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/store"
)

// Outbox is a store.Store seen as a bot.Outbox and bot.Envelopes.
type Outbox struct{ S *store.Store }

var (
	_ bot.Outbox    = Outbox{}
	_ bot.Envelopes = Outbox{}
)

// Enqueue stores messages in one transaction; an existing key changes
// nothing.
func (o Outbox) Enqueue(ctx context.Context, msgs ...bot.OutboxMessage) error {
	out := make([]store.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = store.OutboxMessage(m)
	}
	_, err := o.S.EnqueueAll(ctx, out...)
	return err
}

// Due returns the messages due at now, in order.
func (o Outbox) Due(ctx context.Context, now time.Time, limit int) ([]bot.OutboxMessage, error) {
	msgs, err := o.S.Due(ctx, now, limit)
	out := make([]bot.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = bot.OutboxMessage(m)
	}
	return out, err
}

// Delivered records a message's delivery and its result.
func (o Outbox) Delivered(ctx context.Context, id int64, result string, at time.Time) error {
	return o.S.Delivered(ctx, id, result, at)
}

// Postpone sets a message's next attempt.
func (o Outbox) Postpone(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return o.S.Postpone(ctx, id, next, lastErr)
}

// OutboxResult returns a delivered message's result by key.
func (o Outbox) OutboxResult(ctx context.Context, key string) (string, bool, error) {
	return o.S.OutboxResult(ctx, key)
}

// FirstDelivery makes redelivered Slack envelopes count once across
// restarts.
func (o Outbox) FirstDelivery(ctx context.Context, key string, at time.Time) (bool, error) {
	return o.S.FirstDelivery(ctx, key, at)
}

// LastPending returns the id of the newest undelivered message.
func (o Outbox) LastPending(ctx context.Context) (int64, error) {
	return o.S.LastPending(ctx)
}
