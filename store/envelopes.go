package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EnvelopeTTL is how long a handled Slack envelope is remembered. Slack
// redelivers an envelope it saw no ack for up to three times within minutes
// ("retry_attempt", api.slack.com/apis/socket-mode); a day covers any
// redelivery that can still arrive, and keeps the table small.
const EnvelopeTTL = 24 * time.Hour

// FirstDelivery records that the bot acts on the envelope id at time at, and
// reports whether this is the first time: false means an earlier delivery
// (in this process or one before a restart) was acted on, and this one must
// be dropped. Insert and check are one statement, so of two deliveries
// handled at once exactly one is first. Records older than EnvelopeTTL are
// deleted in the same transaction.
func (s *Store) FirstDelivery(ctx context.Context, id string, at time.Time) (bool, error) {
	if id == "" {
		return false, errors.New("record envelope: empty id")
	}
	first := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		expired := at.Add(-EnvelopeTTL)
		if _, err := tx.ExecContext(ctx, `DELETE FROM envelopes WHERE handled_at < ?`, timeField{&expired}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO envelopes (id, handled_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
			id, timeField{&at})
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record envelope %s: %w", id, err)
	}
	return first, nil
}
