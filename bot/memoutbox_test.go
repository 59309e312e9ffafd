package bot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// MemOutbox is an in-memory Outbox with the store's semantics, for tests.
type MemOutbox struct {
	mu   sync.Mutex
	msgs []OutboxMessage
}

var _ Outbox = (*MemOutbox)(nil)

// Enqueue stores msgs whose keys are new, all or none.
func (o *MemOutbox) Enqueue(_ context.Context, msgs ...OutboxMessage) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range msgs {
		if m.Key == "" {
			return fmt.Errorf("enqueue: empty key")
		}
	}
	for _, m := range msgs {
		if !slices.ContainsFunc(o.msgs, func(have OutboxMessage) bool { return have.Key == m.Key }) {
			m.ID = int64(len(o.msgs) + 1)
			o.msgs = append(o.msgs, m)
		}
	}
	return nil
}

// Due returns undelivered messages due at now, in id order.
func (o *MemOutbox) Due(_ context.Context, now time.Time, limit int) ([]OutboxMessage, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []OutboxMessage
	for _, m := range o.msgs {
		if m.DoneAt.IsZero() && !m.NextAt.After(now) && (limit <= 0 || len(out) < limit) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (o *MemOutbox) update(id int64, f func(*OutboxMessage)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := slices.IndexFunc(o.msgs, func(m OutboxMessage) bool { return m.ID == id })
	if i < 0 {
		return fmt.Errorf("message %d: %w", id, runbook.ErrNotFound)
	}
	if o.msgs[i].DoneAt.IsZero() {
		f(&o.msgs[i])
	}
	return nil
}

// Delivered marks a message delivered.
func (o *MemOutbox) Delivered(_ context.Context, id int64, result string, at time.Time) error {
	return o.update(id, func(m *OutboxMessage) { m.Result, m.DoneAt = result, at })
}

// Postpone records a failed attempt.
func (o *MemOutbox) Postpone(_ context.Context, id int64, next time.Time, lastErr string) error {
	return o.update(id, func(m *OutboxMessage) { m.Attempts++; m.NextAt, m.LastError = next, lastErr })
}

// OutboxResult returns a delivered message's result.
func (o *MemOutbox) OutboxResult(_ context.Context, key string) (string, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.msgs {
		if m.Key == key && !m.DoneAt.IsZero() {
			return m.Result, true, nil
		}
	}
	return "", false, nil
}

// All returns every message.
func (o *MemOutbox) All() []OutboxMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.msgs)
}

// LastPending returns the id of the newest undelivered message.
func (o *MemOutbox) LastPending(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var id int64
	for _, m := range o.msgs {
		if m.DoneAt.IsZero() {
			id = max(id, m.ID)
		}
	}
	return id, nil
}
