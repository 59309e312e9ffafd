package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/runbook"
)

var _ runbook.Store = (*Store)(nil)

// CreateRun stores run, its steps and ev (if not nil) in one transaction. It
// returns an *runbook.ActiveRunError, unwrapped, if a run is active for the
// same service and env. Steps and ev belong to run: their RunID must be
// empty or run.ID. On success ev.RunID and ev.Seq are set.
func (s *Store) CreateRun(ctx context.Context, run *runbook.Run, steps []runbook.StepState, ev *runbook.Event) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := activeRunID(ctx, tx, run.Service, run.Env)
		if err != nil {
			return err
		}
		if id != "" {
			return &runbook.ActiveRunError{RunID: id, Service: run.Service, Env: run.Env}
		}
		if err := s.insertRun(ctx, tx, run); err != nil {
			return err
		}
		for _, st := range steps {
			if err := belongs("step "+st.StepID, st.RunID, run.ID); err != nil {
				return err
			}
			st.RunID = run.ID
			if _, err := tx.ExecContext(ctx, stepsTable.insert, stepFields(&st)...); err != nil {
				return fmt.Errorf("step %s: %w", st.StepID, err)
			}
		}
		seq, err = s.appendEvent(ctx, tx, run.ID, ev)
		return err
	})
	var active *runbook.ActiveRunError
	if errors.As(err, &active) {
		return active
	}
	if err != nil {
		return fmt.Errorf("create run %s: %w", run.ID, err)
	}
	setSeq(ev, run.ID, seq)
	return nil
}

// Run returns the run with id, or an error wrapping runbook.ErrNotFound.
func (s *Store) Run(ctx context.Context, id string) (*runbook.Run, error) {
	var r runbook.Run
	err := s.db.QueryRowContext(ctx, runsTable.selectAll+" WHERE id = ?", id).Scan(runFields(&r)...)
	if errors.Is(err, sql.ErrNoRows) {
		err = runbook.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return &r, nil
}

// Runs lists at most limit runs (all if limit <= 0), newest first;
// activeOnly limits it to active runs.
func (s *Store) Runs(ctx context.Context, activeOnly bool, limit int) ([]*runbook.Run, error) {
	q := runsTable.selectAll
	if activeOnly {
		q += " WHERE state = 'active'"
	}
	var lim any = limit
	if limit <= 0 {
		lim = s.d.noLimit
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY started_at DESC, "+s.d.runsTieBreak+" LIMIT ?", lim)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := collect(rows, runFields)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]*runbook.Run, len(runs))
	for i := range runs {
		out[i] = &runs[i]
	}
	return out, nil
}

// ActiveRunInChannel returns the active run whose incident channel is
// channelID (its meta "channel"), through the runs_active_channel index,
// or an error wrapping runbook.ErrNotFound.
func (s *Store) ActiveRunInChannel(ctx context.Context, channelID string) (*runbook.Run, error) {
	rows, err := s.db.QueryContext(ctx, runsTable.selectAll+
		" WHERE state = 'active' AND "+s.d.channel+" = ? ORDER BY started_at DESC LIMIT 1", channelID)
	if err != nil {
		return nil, fmt.Errorf("run in channel %s: %w", channelID, err)
	}
	runs, err := collect(rows, runFields)
	if err != nil {
		return nil, fmt.Errorf("run in channel %s: %w", channelID, err)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("run in channel %s: %w", channelID, runbook.ErrNotFound)
	}
	return &runs[0], nil
}

// SaveRun writes run if the stored version is run.Version-1, and appends ev
// (if not nil) in the same transaction. It returns an error wrapping
// runbook.ErrConflict if the version differs, runbook.ErrNotFound if there
// is no such run, and an *runbook.ActiveRunError if run would become a
// second active run for its service and env. On success ev.RunID and ev.Seq
// are set.
func (s *Store) SaveRun(ctx context.Context, run *runbook.Run, ev *runbook.Event) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := s.savepoint(ctx, tx, func() error { return runsTable.swap(ctx, tx, runFields(run), run.Version) })
		if err != nil {
			return s.activeConflict(ctx, tx, err, run.Service, run.Env)
		}
		seq, err = s.appendEvent(ctx, tx, run.ID, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("save run %s: %w", run.ID, err)
	}
	setSeq(ev, run.ID, seq)
	return nil
}

// Steps returns a run's steps in runbook order, or an error wrapping
// runbook.ErrNotFound if there is no such run.
func (s *Store) Steps(ctx context.Context, runID string) ([]runbook.StepState, error) {
	steps, err := listOfRun(ctx, s.db, runID, selectFrom("steps", stepColumns)+" WHERE run_id = ? ORDER BY idx, step_id", stepFields)
	if err != nil {
		return nil, fmt.Errorf("steps of %s: %w", runID, err)
	}
	return steps, nil
}

// SwapStep writes step if the stored version is step.Version-1, and appends
// ev (if not nil) in the same transaction: this is how a click claims a
// step exactly once. It returns an error wrapping runbook.ErrConflict if the
// version differs and runbook.ErrNotFound if there is no such step. On
// success ev.RunID and ev.Seq are set.
func (s *Store) SwapStep(ctx context.Context, step runbook.StepState, ev *runbook.Event) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := stepsTable.swap(ctx, tx, stepFields(&step), step.Version); err != nil {
			return err
		}
		var err error
		seq, err = s.appendEvent(ctx, tx, step.RunID, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("swap step %s/%s: %w", step.RunID, step.StepID, err)
	}
	setSeq(ev, step.RunID, seq)
	return nil
}

// AppendEvent stores ev at the end of its run's timeline and sets ev.Seq. It
// returns an error wrapping runbook.ErrNotFound if there is no such run.
func (s *Store) AppendEvent(ctx context.Context, ev *runbook.Event) error {
	if ev == nil {
		return errors.New("append event: nil event")
	}
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		seq, err = s.appendEvent(ctx, tx, ev.RunID, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("append event to %s: %w", ev.RunID, err)
	}
	setSeq(ev, ev.RunID, seq)
	return nil
}

// Events returns a run's timeline in order, or an error wrapping
// runbook.ErrNotFound if there is no such run.
func (s *Store) Events(ctx context.Context, runID string) ([]runbook.Event, error) {
	events, err := listOfRun(ctx, s.db, runID, selectFrom("events", eventColumns)+" WHERE run_id = ? ORDER BY seq", eventFields)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", runID, err)
	}
	return events, nil
}

// appendEvent inserts ev (if not nil) as the next event of runID and returns
// its seq. The caller's write lock makes MAX(seq)+1 safe.
func (s *Store) appendEvent(ctx context.Context, tx *sql.Tx, runID string, ev *runbook.Event) (int64, error) {
	if ev == nil {
		return 0, nil
	}
	if err := belongs("event", ev.RunID, runID); err != nil {
		return 0, err
	}
	var seq int64
	// The casts give PostgreSQL the parameters' types, which a SELECT
	// list does not; SQLite reads them as what they are.
	err := tx.QueryRowContext(ctx, `INSERT INTO events (run_id, seq, step_id, kind, actor, at, text, links)
		SELECT CAST(?1 AS TEXT), COALESCE(MAX(seq), 0) + 1, CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS TEXT),
			CAST(?5 AS TEXT), CAST(?6 AS TEXT), CAST(?7 AS TEXT) FROM events WHERE run_id = ?1
		RETURNING seq`,
		runID, ev.StepID, string(ev.Kind), ev.Actor, timeField{&ev.At}, ev.Text, jsonField{&ev.Links},
	).Scan(&seq)
	if s.d.isForeignKey(err) {
		return 0, runbook.ErrNotFound
	}
	return seq, err
}

// setSeq records where ev was stored, after its transaction committed.
func setSeq(ev *runbook.Event, runID string, seq int64) {
	if ev != nil {
		ev.RunID, ev.Seq = runID, seq
	}
}

// belongs refuses a step or event whose RunID names another run than the
// one being written; an empty RunID means that run.
func belongs(what, got, runID string) error {
	if got != "" && got != runID {
		return fmt.Errorf("%s belongs to run %s, not %s", what, got, runID)
	}
	return nil
}

// activeRunID returns the id of the active run for service and env, or "".
func activeRunID(ctx context.Context, tx *sql.Tx, service, env string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE service = ? AND env = ? AND state = 'active'`,
		service, env).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// insertRun inserts run's row; an insert the runs_one_active index refuses
// becomes an *runbook.ActiveRunError.
func (s *Store) insertRun(ctx context.Context, tx *sql.Tx, run *runbook.Run) error {
	err := s.savepoint(ctx, tx, func() error {
		_, err := tx.ExecContext(ctx, runsTable.insert, runFields(run)...)
		return err
	})
	if err != nil {
		return s.activeConflict(ctx, tx, err, run.Service, run.Env)
	}
	return nil
}

// savepoint runs fn inside a savepoint and rolls back to it if fn fails,
// so the transaction can still be read from: PostgreSQL refuses every
// statement of a transaction after an error until then.
func (s *Store) savepoint(ctx context.Context, tx *sql.Tx, fn func() error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT drbot_try"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT drbot_try"); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT drbot_try")
	return err
}

// activeConflict turns err into an *runbook.ActiveRunError if it is the
// runs_one_active index refusing a second active run for service and env.
// The caller rolled back to a savepoint, so tx can still be read.
func (s *Store) activeConflict(ctx context.Context, tx *sql.Tx, err error, service, env string) error {
	if !s.d.isActiveRun(err) {
		return err
	}
	id, lookupErr := activeRunID(ctx, tx, service, env)
	if lookupErr != nil || id == "" {
		return err
	}
	return &runbook.ActiveRunError{RunID: id, Service: service, Env: env}
}

// listOfRun returns the rows query selects for runID, or ErrNotFound if
// there are none because there is no such run.
func listOfRun[T any](ctx context.Context, db *sql.DB, runID, query string, fields func(*T) []any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, runID)
	if err != nil {
		return nil, err
	}
	list, err := collect(rows, fields)
	if err != nil || len(list) > 0 {
		return list, err
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?)`, runID).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, runbook.ErrNotFound
	}
	return list, nil
}

// RunStamp identifies what a run and its steps hold now: every write of
// either raises a version (check-and-set), so a different state has a
// different stamp. The engine rebuilds a run's view only when it changes.
func (s *Store) RunStamp(ctx context.Context, runID string) (string, error) {
	var runVersion, stepVersions, steps int64
	err := s.db.QueryRowContext(ctx, `SELECT version,
		(SELECT COALESCE(SUM(version), 0) FROM steps WHERE run_id = runs.id),
		(SELECT COUNT(*) FROM steps WHERE run_id = runs.id)
		FROM runs WHERE id = ?`, runID).Scan(&runVersion, &stepVersions, &steps)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("run %s: %w", runID, runbook.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("stamp of run %s: %w", runID, err)
	}
	return fmt.Sprintf("%d/%d/%d", runVersion, stepVersions, steps), nil
}
