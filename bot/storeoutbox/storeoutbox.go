// Package storeoutbox makes the store the bot's outbox and envelope record:
// bot does not import store and store does not import bot, so the two
// message types (same fields) meet here, for drbot serve, the bench and
// the tests alike.
package storeoutbox

import (
	"context"
	"time"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/store"
)

// Outbox is a store.Store seen as a bot.Outbox and bot.Envelopes. With an
// Owner (a replica's id, on a store that replicas share) it is also a
// bot.Holder: Due leases what it returns to Owner for Lease, so that each
// message is sent by one replica and a dead replica's messages are sent by
// another once its lease ends.
type Outbox struct {
	S     *store.Store
	Owner string        // "": one replica, no leases
	Lease time.Duration // default DefaultLease
}

// DefaultLease is how long a replica holds the messages it took: longer
// than one Slack call may take (the bot's HTTP client gives up after 30 s),
// so a live replica never loses a message it is sending.
const DefaultLease = 45 * time.Second

var (
	_ bot.Outbox    = Outbox{}
	_ bot.Envelopes = Outbox{}
	_ bot.Holder    = Outbox{}
)

func (o Outbox) lease() time.Duration {
	if o.Lease > 0 {
		return o.Lease
	}
	return DefaultLease
}

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

// Due returns the messages due at now, in order; with an Owner, only those
// no other replica holds, leased to Owner.
func (o Outbox) Due(ctx context.Context, now time.Time, limit int) ([]bot.OutboxMessage, error) {
	var msgs []store.OutboxMessage
	var err error
	// A read far ahead of the clock is a look at everything pending (main's
	// sender does one when it starts): it leases nothing, or this replica
	// would hold every pending message until that far-off time.
	if o.Owner != "" && !now.After(time.Now().Add(time.Hour)) {
		msgs, err = o.S.DueLeased(ctx, o.Owner, now, now.Add(o.lease()), limit)
	} else {
		msgs, err = o.S.Due(ctx, now, limit)
	}
	out := make([]bot.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = bot.OutboxMessage(m)
	}
	return out, err
}

// Hold renews Owner's lease on a message about to be sent; without an
// Owner every message is this process's.
func (o Outbox) Hold(ctx context.Context, id int64) (bool, error) {
	if o.Owner == "" {
		return true, nil
	}
	return o.S.HoldMessage(ctx, id, o.Owner, time.Now().Add(o.lease()))
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
