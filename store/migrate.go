package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// migrations are the schema, in order: migrations[i] is version i+1. Never
// edit or reorder one that has shipped; append a new one.
var migrations = []string{
	// 1: runs, their steps and their timelines.
	`CREATE TABLE runs (
		id         TEXT PRIMARY KEY,
		runbook_id TEXT NOT NULL,
		runbook    BLOB,             -- the pinned YAML
		version    INTEGER NOT NULL, -- check-and-set by SaveRun
		service    TEXT NOT NULL,
		env        TEXT NOT NULL,
		state      TEXT NOT NULL,
		started_by TEXT NOT NULL,
		started_at TEXT,             -- times: UTC, fixed-width RFC 3339 nanoseconds; NULL is zero
		ended_at   TEXT,
		vars       TEXT NOT NULL,    -- JSON
		remembered TEXT NOT NULL,    -- JSON
		meta       TEXT NOT NULL     -- JSON
	) STRICT;
	-- One active run per service and environment. CreateRun checks it first;
	-- this index is the backstop.
	CREATE UNIQUE INDEX runs_one_active ON runs (service, env) WHERE state = 'active';
	CREATE INDEX runs_started_at ON runs (started_at);

	CREATE TABLE steps (
		run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		step_id    TEXT NOT NULL,
		idx        INTEGER NOT NULL, -- position in the runbook
		state      TEXT NOT NULL,
		version    INTEGER NOT NULL, -- check-and-set by SwapStep
		attempt    INTEGER NOT NULL,
		approvers  TEXT NOT NULL,    -- JSON
		actor      TEXT NOT NULL,
		started_at TEXT,
		ended_at   TEXT,
		checkpoint TEXT NOT NULL,    -- JSON
		progress   TEXT NOT NULL,
		summary    TEXT NOT NULL,
		error      TEXT NOT NULL,
		links      TEXT NOT NULL,    -- JSON
		PRIMARY KEY (run_id, step_id)
	) STRICT;

	CREATE TABLE events (
		run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		seq     INTEGER NOT NULL,    -- 1, 2, ... per run, assigned on insert
		step_id TEXT NOT NULL,
		kind    TEXT NOT NULL,
		actor   TEXT NOT NULL,
		at      TEXT,
		text    TEXT NOT NULL,
		links   TEXT NOT NULL,       -- JSON
		PRIMARY KEY (run_id, seq)
	) STRICT;`,

	// 2: the Slack outbox.
	`CREATE TABLE outbox (
		id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: delivery order
		dedup_key  TEXT NOT NULL UNIQUE,
		run_id     TEXT NOT NULL,
		kind       TEXT NOT NULL,
		payload    BLOB,
		attempts   INTEGER NOT NULL,
		next_at    TEXT,             -- NULL: as soon as possible
		last_error TEXT NOT NULL,
		result     TEXT NOT NULL,
		done_at    TEXT              -- NULL until delivered
	) STRICT;
	CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;`,

	// 3: how a run runs (which adapter families are simulated, its config
	// file and store), so a resume cannot silently change it. Runs from
	// before it were rehearsals or serve runs; '{}' reads as "unknown" and
	// a resume of such a run must say how it runs.
	`ALTER TABLE runs ADD COLUMN setup TEXT NOT NULL DEFAULT '{}';`,

	// 4: external resources claimed by a step, e.g. the workflow run its
	// dispatch started. No foreign key to steps: a claim outlives its run,
	// so that a deleted run never frees its GitHub run for another step.
	`CREATE TABLE claims (
		resource   TEXT PRIMARY KEY, -- e.g. github-run:owner/repo:123
		run_id     TEXT NOT NULL,
		step_id    TEXT NOT NULL,
		claimed_at TEXT
	) STRICT;`,

	// 5: Slack envelopes drbot has acted on, so that a redelivery (same
	// envelope_id, retry_attempt > 0) is not acted on twice, even after a
	// restart. Rows older than EnvelopeTTL are deleted as new ones come.
	`CREATE TABLE envelopes (
		id         TEXT PRIMARY KEY, -- envelope_id, with "/N" for the Nth action of one envelope
		handled_at TEXT NOT NULL
	) STRICT;
	CREATE INDEX envelopes_handled_at ON envelopes (handled_at);`,

	// 6: the active run of an incident channel, found through an index
	// rather than by decoding every active run (/dr status in a channel).
	`CREATE INDEX runs_active_channel ON runs (json_extract(meta, '$.channel')) WHERE state = 'active';`,

	// 7: the playbook's side of a run (issue 11): priority, kind, leads,
	// stage history, stakeholder update cadence, a DR test's result, as
	// JSON. Runs from before it read '{}': not declared.
	`ALTER TABLE runs ADD COLUMN incident TEXT NOT NULL DEFAULT '{}';`,
}

// migrate applies the migrations the database has not recorded yet, each in
// its own write transaction with its row in schema_migrations. Several
// processes may migrate the same file at once: each re-checks under the
// write lock and skips what another has applied.
func (s *Store) migrate(ctx context.Context, migs []string) error {
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, m := range migs {
		version := i + 1
		applied := false
		err := s.write(ctx, func(tx *sql.Tx) error {
			var newest int
			err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest)
			if err != nil {
				return err
			}
			if newest > len(migs) {
				return fmt.Errorf("database schema version %d is newer than this drbot knows (%d)", newest, len(migs))
			}
			if newest >= version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				version, timeField{ptr(time.Now())})
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", version, err)
		}
		if applied {
			s.log.Info("applied migration", zap.Int("version", version))
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
