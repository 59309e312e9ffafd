package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// timeLayout writes times in UTC with all nine fraction digits, so that text
// order is time order (Runs sorts by it, Due compares with it).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// timeField binds a time column to *t, both ways: as an argument it writes
// *t in UTC (NULL if zero), as a scan destination it reads it back in UTC.
type timeField struct{ t *time.Time }

// Value implements driver.Valuer.
func (f timeField) Value() (driver.Value, error) {
	if f.t.IsZero() {
		return nil, nil
	}
	return f.t.UTC().Format(timeLayout), nil
}

// Scan implements sql.Scanner.
func (f timeField) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*f.t = time.Time{}
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	*f.t = t.UTC()
	return nil
}

// jsonField binds a JSON text column to the value v points to, both ways.
// JSON numbers read back into an `any` are float64.
type jsonField struct{ v any }

// Value implements driver.Valuer.
func (f jsonField) Value() (driver.Value, error) {
	b, err := json.Marshal(f.v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan implements sql.Scanner.
func (f jsonField) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan json: unexpected %T", src)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, f.v); err != nil {
		return fmt.Errorf("scan json: %w", err)
	}
	return nil
}

// runColumns and runFields describe a runs row; runFields gives the matching
// pointers into r, used both as statement arguments and as scan destinations.
var runColumns = []string{
	"id", "runbook_id", "runbook", "version", "service", "env", "state",
	"started_by", "started_at", "ended_at", "vars", "remembered", "meta", "setup", "incident",
}

func runFields(r *runbook.Run) []any {
	return []any{
		&r.ID, &r.RunbookID, &r.Runbook, &r.Version, &r.Service, &r.Env, &r.State,
		&r.StartedBy, timeField{&r.StartedAt}, timeField{&r.EndedAt},
		jsonField{&r.Vars}, jsonField{&r.Remembered}, jsonField{&r.Meta}, jsonField{&r.Setup}, jsonField{&r.Incident},
	}
}

// stepColumns and stepFields describe a steps row, like runColumns.
var stepColumns = []string{
	"run_id", "step_id", "idx", "state", "version", "attempt", "approvers", "actor",
	"started_at", "ended_at", "checkpoint", "progress", "summary", "error", "links",
}

func stepFields(st *runbook.StepState) []any {
	return []any{
		&st.RunID, &st.StepID, &st.Index, &st.State, &st.Version, &st.Attempt,
		jsonField{&st.Approvers}, &st.Actor, timeField{&st.StartedAt}, timeField{&st.EndedAt},
		jsonField{&st.Checkpoint}, &st.Progress, &st.Summary, &st.Error, jsonField{&st.Links},
	}
}

// eventColumns and eventFields describe an events row, like runColumns.
var eventColumns = []string{"run_id", "seq", "step_id", "kind", "actor", "at", "text", "links"}

func eventFields(ev *runbook.Event) []any {
	return []any{
		&ev.RunID, &ev.Seq, &ev.StepID, &ev.Kind, &ev.Actor, timeField{&ev.At},
		&ev.Text, jsonField{&ev.Links},
	}
}

// versioned holds the SQL of a table whose rows are written by check-and-set
// on their version column. Its columns are in the order of its fields
// function above, key columns first.
type versioned struct {
	nkey      int
	insert    string // all columns
	selectAll string // all columns, no WHERE
	update    string // SET every non-key column WHERE key AND version = ?
	version   string // SELECT version WHERE key
}

func newVersioned(name string, nkey int, cols []string) versioned {
	var set, key []string
	for _, c := range cols[nkey:] {
		set = append(set, c+" = ?")
	}
	for _, c := range cols[:nkey] {
		key = append(key, c+" = ?")
	}
	where := " WHERE " + strings.Join(key, " AND ")
	return versioned{
		nkey:      nkey,
		insert:    "INSERT INTO " + name + " (" + strings.Join(cols, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(cols)-1) + ")",
		selectAll: selectFrom(name, cols),
		update:    "UPDATE " + name + " SET " + strings.Join(set, ", ") + where + " AND version = ?",
		version:   "SELECT version FROM " + name + where,
	}
}

var (
	runsTable  = newVersioned("runs", 1, runColumns)
	stepsTable = newVersioned("steps", 2, stepColumns)
)

func selectFrom(table string, cols []string) string {
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + table
}

// swap writes fields (as given by runFields or stepFields, with the new
// version) if the stored row's version is version-1. It returns ErrNotFound
// if there is no such row and ErrConflict if its version differs.
func (t versioned) swap(ctx context.Context, tx *sql.Tx, fields []any, version int) error {
	key := fields[:t.nkey]
	args := append(append(append([]any{}, fields[t.nkey:]...), key...), version-1)
	res, err := tx.ExecContext(ctx, t.update, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var stored int
	err = tx.QueryRowContext(ctx, t.version, key...).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return runbook.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("stored version is %d, not %d: %w", stored, version-1, runbook.ErrConflict)
}

// collect scans every row into a T through fields, and closes rows.
func collect[T any](rows *sql.Rows, fields func(*T) []any) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(fields(&v)...); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
