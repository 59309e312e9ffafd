package store

import (
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between the two databases a Store runs on. Every
// statement is written once, with "?" placeholders and SQL both accept; the
// PostgreSQL connector rewrites the placeholders (see rebind), and the few
// things that cannot be written once live here.
type dialect struct {
	name string
	// noLimit is the LIMIT argument that means "all rows".
	noLimit any
	// newestFirst orders rows of equal started_at newest first: SQLite's
	// rowid is insertion order; PostgreSQL has none, and run ids sort by
	// their start time.
	runsTieBreak string
	// channel is the expression of a run's incident channel (meta's
	// "channel"), the same text as in the runs_active_channel index so
	// that the index serves it.
	channel string
	// lockWriters, run first in every write transaction, makes writers take
	// turns across processes and replicas, as SQLite's BEGIN IMMEDIATE does:
	// a check-and-set, MAX(seq)+1 or check-then-insert reads what no other
	// writer changes before it commits. Empty for SQLite.
	lockWriters string
	// migrationsTable creates the table of applied migrations.
	migrationsTable string
	// isForeignKey and isUnique classify a constraint error; isUnique with a
	// name matches only that index or constraint (PostgreSQL reports it;
	// SQLite's extended code tells a primary key from a unique index).
	isForeignKey func(error) bool
	isActiveRun  func(error) bool
}

// writersLockKey is the PostgreSQL advisory lock writers take turns on: any
// fixed number, the same in every drbot ("drbt" in ASCII).
const writersLockKey = 0x64726274

var sqliteDialect = dialect{
	name:         "sqlite",
	noLimit:      -1,
	runsTieBreak: "rowid DESC",
	channel:      "json_extract(meta, '$.channel')",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`,
	isForeignKey: func(err error) bool { return hasCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) },
	// runs_one_active is the only UNIQUE index on runs; its primary key
	// fails with another code.
	isActiveRun: func(err error) bool { return hasCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) },
}

var postgresDialect = dialect{
	name:         "postgres",
	noLimit:      nil, // LIMIT NULL
	runsTieBreak: "id DESC",
	channel:      "(meta::jsonb ->> 'channel')",
	lockWriters:  "SELECT pg_advisory_xact_lock(" + strconv.Itoa(writersLockKey) + ")",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`,
	isForeignKey: func(err error) bool { return pgCode(err, "23503", "") }, // foreign_key_violation
	isActiveRun:  func(err error) bool { return pgCode(err, "23505", "runs_one_active") },
}

// pgCode reports whether err is a PostgreSQL error with SQLSTATE code
// (www.postgresql.org/docs/15/errcodes-appendix.html) and, if constraint is
// not empty, on that constraint.
func pgCode(err error, code, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code && (constraint == "" || pe.ConstraintName == constraint)
}

// rebind rewrites SQLite's placeholders for PostgreSQL: "?" becomes $1,
// $2, ... in order and "?N" becomes $N, outside string literals and quoted
// identifiers. Statements are drbot's own, so this is not a SQL parser:
// it knows quotes, which is all drbot's statements need.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			b.WriteByte(c)
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(query[i+1 : j])
				i = j - 1
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
