package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// OutboxMessage is a Slack message waiting to be delivered, or delivered.
// The bot enqueues it once the event it announces is stored, and a sender
// delivers it, retrying with backoff, so that a crash or a Slack outage
// loses no announcement.
type OutboxMessage struct {
	ID        int64
	Key       string // unique dedup key, e.g. "event:<run>:<seq>"; enqueueing an existing key is a no-op returning the existing id
	RunID     string
	Kind      string // opaque to the store
	Payload   []byte // opaque JSON
	Attempts  int
	NextAt    time.Time // zero: as soon as possible
	LastError string
	Result    string    // e.g. the Slack ts once delivered
	DoneAt    time.Time // zero until delivered
}

var outboxColumns = []string{
	"id", "dedup_key", "run_id", "kind", "payload", "attempts", "next_at", "last_error", "result", "done_at",
}

func outboxFields(m *OutboxMessage) []any {
	return []any{
		&m.ID, &m.Key, &m.RunID, &m.Kind, &m.Payload, &m.Attempts, timeField{&m.NextAt},
		&m.LastError, &m.Result, timeField{&m.DoneAt},
	}
}

// Enqueue stores m (its ID is ignored) and returns its id. If a message
// with m.Key exists already, Enqueue changes nothing and returns that
// message's id: a retried or replayed enqueue sends nothing twice.
func (s *Store) Enqueue(ctx context.Context, m OutboxMessage) (int64, error) {
	ids, err := s.EnqueueAll(ctx, m)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// EnqueueAll stores msgs as Enqueue does, in one transaction: all or none.
func (s *Store) EnqueueAll(ctx context.Context, msgs ...OutboxMessage) ([]int64, error) {
	for _, m := range msgs {
		if m.Key == "" {
			return nil, errors.New("enqueue: empty key")
		}
	}
	ids := make([]int64, len(msgs))
	now := time.Now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i, m := range msgs {
			// Every column but the id, which the database assigns, and the
			// time it was queued (for the outbox age metric).
			args := append(outboxFields(&m)[1:], timeField{&now})
			err := tx.QueryRowContext(ctx, `INSERT INTO outbox (dedup_key, run_id, kind, payload, attempts, next_at, last_error, result, done_at, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (dedup_key) DO NOTHING
				RETURNING id`, args...).Scan(&ids[i])
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.QueryRowContext(ctx, `SELECT id FROM outbox WHERE dedup_key = ?`, m.Key).Scan(&ids[i])
			}
			if err != nil {
				return fmt.Errorf("enqueue %s: %w", m.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Due returns at most limit (all if limit <= 0) undelivered messages whose
// NextAt is not after now, in id order: the order they were enqueued.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]OutboxMessage, error) {
	var lim any = limit
	if limit <= 0 {
		lim = s.d.noLimit
	}
	// A run's messages go out in order: one waiting for its next attempt
	// (Slack asked us to slow down) holds back the later ones of its run,
	// also in a process that did not see the 429.
	rows, err := s.db.QueryContext(ctx, selectFrom("outbox", outboxColumns)+`
		WHERE done_at IS NULL AND (next_at IS NULL OR next_at <= ?)
		AND NOT EXISTS (SELECT 1 FROM outbox AS earlier
			WHERE earlier.done_at IS NULL AND earlier.run_id = outbox.run_id AND outbox.run_id != ''
			AND earlier.id < outbox.id AND earlier.next_at > ?)
		ORDER BY id LIMIT ?`, timeField{&now}, timeField{&now}, lim)
	if err != nil {
		return nil, fmt.Errorf("due messages: %w", err)
	}
	msgs, err := collect(rows, outboxFields)
	if err != nil {
		return nil, fmt.Errorf("due messages: %w", err)
	}
	return msgs, nil
}

// Delivered marks message id as delivered at at, with result (e.g. the
// Slack ts). A message already delivered keeps its first result. It returns
// an error wrapping runbook.ErrNotFound if there is no such message.
func (s *Store) Delivered(ctx context.Context, id int64, result string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("mark message %d delivered: zero time", id)
	}
	err := s.updatePending(ctx, id, `UPDATE outbox SET result = ?, done_at = ? WHERE id = ? AND done_at IS NULL`,
		result, timeField{&at}, id)
	if err != nil {
		return fmt.Errorf("mark message %d delivered: %w", id, err)
	}
	return nil
}

// Postpone records a failed delivery of message id: it counts the attempt,
// keeps lastErr and makes the message due again at next. A message already
// delivered is left alone. It returns an error wrapping runbook.ErrNotFound
// if there is no such message.
func (s *Store) Postpone(ctx context.Context, id int64, next time.Time, lastErr string) error {
	// The lease ends with the attempt: once due again, any replica may
	// take the message.
	err := s.updatePending(ctx, id, `UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ?,
		lease_owner = '', lease_until = NULL
		WHERE id = ? AND done_at IS NULL`, timeField{&next}, lastErr, id)
	if err != nil {
		return fmt.Errorf("postpone message %d: %w", id, err)
	}
	return nil
}

// OutboxResult returns the result of the delivered message with key; ok is
// false if there is no such message or it is not delivered yet.
func (s *Store) OutboxResult(ctx context.Context, key string) (result string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT result FROM outbox WHERE dedup_key = ? AND done_at IS NOT NULL`, key).Scan(&result)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("outbox result %s: %w", key, err)
	}
	return result, true, nil
}

// updatePending runs update, which changes message id only while it is not
// delivered, and tells a message that does not exist (ErrNotFound) from one
// already delivered (nil).
func (s *Store) updatePending(ctx context.Context, id int64, update string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, update, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return runbook.ErrNotFound
		}
		return nil
	})
}

// Stats are the store's figures for metrics.
type Stats struct {
	OutboxPending int       // undelivered messages
	OldestPending time.Time // when the oldest undelivered one was queued; zero if none
	OpenRuns      int       // active runs
}

// Stats counts the undelivered outbox messages, dates the oldest, and
// counts the active runs, in two reads through the outbox_pending and
// runs_one_active indexes.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE done_at IS NULL`).Scan(&st.OutboxPending, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	if oldest.Valid {
		if err := (timeField{&st.OldestPending}).Scan(oldest.String); err != nil {
			return Stats{}, fmt.Errorf("outbox stats: %w", err)
		}
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE state = 'active'`).Scan(&st.OpenRuns); err != nil {
		return Stats{}, fmt.Errorf("open runs: %w", err)
	}
	return st, nil
}

// LastPending returns the id of the newest undelivered message (0 if none).
func (s *Store) LastPending(ctx context.Context) (int64, error) {
	var id int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM outbox WHERE done_at IS NULL`).Scan(&id); err != nil {
		return 0, fmt.Errorf("newest pending message: %w", err)
	}
	return id, nil
}
