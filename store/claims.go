package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/runbook"
)

var claimColumns = []string{"resource", "run_id", "step_id", "claimed_at"}

func claimFields(c *runbook.Claim) []any {
	return []any{&c.Resource, &c.RunID, &c.StepID, timeField{&c.At}}
}

// Claim records that c.RunID/c.StepID owns c.Resource. The insert and the
// read of an existing holder share one write transaction, so of two steps
// claiming at once exactly one wins; the other gets a *runbook.ClaimedError
// naming the winner. Claiming again from the same step changes nothing.
func (s *Store) Claim(ctx context.Context, c runbook.Claim) error {
	if c.Resource == "" || c.RunID == "" || c.StepID == "" {
		return fmt.Errorf("claim %q for %s/%s: resource, run and step are required", c.Resource, c.RunID, c.StepID)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO claims (resource, run_id, step_id, claimed_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (resource) DO NOTHING`, claimFields(&c)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		holder, err := claimOf(ctx, tx, c.Resource)
		if err != nil {
			return err
		}
		if holder.RunID != c.RunID || holder.StepID != c.StepID {
			return &runbook.ClaimedError{Holder: holder}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("claim %s for step %s of run %s: %w", c.Resource, c.StepID, c.RunID, err)
	}
	return nil
}

// ClaimOf returns the claim on resource, or runbook.ErrNotFound.
func (s *Store) ClaimOf(ctx context.Context, resource string) (runbook.Claim, error) {
	c, err := claimOf(ctx, s.db, resource)
	if errors.Is(err, sql.ErrNoRows) {
		return runbook.Claim{}, fmt.Errorf("claim of %s: %w", resource, runbook.ErrNotFound)
	}
	if err != nil {
		return runbook.Claim{}, fmt.Errorf("claim of %s: %w", resource, err)
	}
	return c, nil
}

// querier is what claimOf needs of a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func claimOf(ctx context.Context, q querier, resource string) (runbook.Claim, error) {
	var c runbook.Claim
	err := q.QueryRowContext(ctx, selectFrom("claims", claimColumns)+" WHERE resource = ?", resource).Scan(claimFields(&c)...)
	return c, err
}
