package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Leases let two or more replicas share one database. A lease names its
// owner (a replica's id) and when it ends; an owner renews what it still
// works on, and whatever a dead replica held is free again when its lease
// ends. Times are the callers' clocks: replicas are assumed to agree on
// the time to well within a lease (NTP does).

// writeRows runs fn in a transaction that does not take the writers' turn
// (see dialect.lockWriters): its statements lock only the rows they touch,
// so replicas claiming outbox messages skip each other's rows instead of
// queueing. On SQLite, where every transaction is the one writer, it is
// write.
func (s *Store) writeRows(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.lockWriters == "" {
		return s.write(ctx, fn)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// DueLeased is Due for one of several replicas: it returns at most limit
// due messages (in id order) that no other owner holds, and leases them to
// owner until until. Messages owner already holds are returned and their
// lease renewed. A run's messages keep their order across replicas: none
// is returned while an earlier message of its run is pending and not in
// the batch (held by another replica, being claimed by one, or postponed).
//
// On PostgreSQL the candidates are locked with FOR UPDATE SKIP LOCKED, so
// replicas claiming at once take disjoint sets without waiting; the order
// check after the lock sees the rows another replica locked as pending and
// leaves their run alone.
func (s *Store) DueLeased(ctx context.Context, owner string, now, until time.Time, limit int) ([]OutboxMessage, error) {
	if owner == "" {
		return nil, errors.New("due messages: empty lease owner")
	}
	if limit <= 0 {
		limit = 100
	}
	lock := ""
	if s.d.name == postgresDialect.name {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var msgs []OutboxMessage
	err := s.writeRows(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, selectFrom("outbox", outboxColumns)+`
			WHERE done_at IS NULL AND (next_at IS NULL OR next_at <= ?)
			AND (lease_owner = '' OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)
			ORDER BY id LIMIT ?`+lock, timeField{&now}, owner, timeField{&now}, limit)
		if err != nil {
			return err
		}
		cands, err := collect(rows, outboxFields)
		if err != nil {
			return err
		}
		// A run's messages go out in order: of a run's candidates, only
		// those before the first pending message of the run that is not a
		// candidate (not due, another's, or being claimed by another) are
		// taken.
		byRun := map[string][]int64{}
		for _, m := range cands {
			if m.RunID != "" {
				byRun[m.RunID] = append(byRun[m.RunID], m.ID)
			}
		}
		upTo := map[string]int64{} // a run's candidates above this id wait
		for run, cids := range byRun {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM outbox WHERE run_id = ? AND done_at IS NULL AND id <= ? ORDER BY id`,
				run, cids[len(cids)-1])
			if err != nil {
				return err
			}
			pending, err := collect(rows, func(id *int64) []any { return []any{id} })
			if err != nil {
				return err
			}
			upTo[run] = -1
			for i, id := range pending {
				if i >= len(cids) || cids[i] != id {
					break
				}
				upTo[run] = id
			}
		}
		var ids []any
		for _, m := range cands {
			if m.RunID != "" && m.ID > upTo[m.RunID] {
				continue
			}
			msgs = append(msgs, m)
			ids = append(ids, m.ID)
		}
		if len(ids) == 0 {
			return nil
		}
		args := append([]any{owner, timeField{&until}}, ids...)
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN (?`+
			strings.Repeat(", ?", len(ids)-1)+`)`, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lease due messages for %s: %w", owner, err)
	}
	return msgs, nil
}

// HoldMessage renews owner's lease on message id until until, right before
// it is sent: false means the lease was lost (it ended and another replica
// took the message, or it was delivered), and the message must not be
// sent.
func (s *Store) HoldMessage(ctx context.Context, id int64, owner string, until time.Time) (bool, error) {
	var held bool
	err := s.writeRows(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_until = ? WHERE id = ? AND lease_owner = ? AND done_at IS NULL`,
			timeField{&until}, id, owner)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("hold message %d for %s: %w", id, owner, err)
	}
	return held, nil
}

// LeaseStep gives owner the lease of a step until until, if the step's
// lease is free (never taken, or ended by now) or owner's already (then it
// is renewed). It reports whether owner holds it. It does not change the
// step's version: a lease is not part of the step's check-and-set.
func (s *Store) LeaseStep(ctx context.Context, runID, stepID, owner string, now, until time.Time) (bool, error) {
	if owner == "" {
		return false, fmt.Errorf("lease step %s/%s: empty owner", runID, stepID)
	}
	var held bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE steps SET lease_owner = ?, lease_until = ?
			WHERE run_id = ? AND step_id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)`,
			owner, timeField{&until}, runID, stepID, owner, timeField{&now})
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			held = n == 1
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = ? AND step_id = ?)`, runID, stepID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return runbook.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("lease step %s/%s for %s: %w", runID, stepID, owner, err)
	}
	return held, nil
}

// ReleaseStep ends owner's lease of a step at once (the step ended, or its
// claim failed), so that no replica waits for it to expire.
func (s *Store) ReleaseStep(ctx context.Context, runID, stepID, owner string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE steps SET lease_owner = '', lease_until = NULL
			WHERE run_id = ? AND step_id = ? AND lease_owner = ?`, runID, stepID, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release step %s/%s for %s: %w", runID, stepID, owner, err)
	}
	return nil
}
