// Package store persists drbot's runs, steps, timeline events and Slack
// outbox in SQLite (modernc.org/sqlite, pure Go, no cgo; the default, one
// replica) or PostgreSQL (pgx; two or more replicas sharing it).
//
// Every write runs in a transaction that takes the database's write turn
// when it begins (SQLite: BEGIN IMMEDIATE, see DSN; PostgreSQL: a
// transaction-scoped advisory lock, see dialect), so a check-and-set reads
// state no other connection, process or replica can change before it
// commits. Reads are plain statements and never wait for a writer.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"modernc.org/sqlite"
)

// Store is drbot's database. It is safe for concurrent use, and several
// Stores (processes, replicas) may share one file or PostgreSQL database.
type Store struct {
	db  *sql.DB
	dsn string
	d   dialect
	log *zap.Logger
	// writer lets one write transaction of this process run at a time:
	// SQLite has one writer anyway, and queueing here (bounded by each
	// caller's context) rather than in SQLite's busy handler means no
	// amount of concurrent clicks and steps makes a write fail with
	// "database is locked". busy_timeout still covers other processes.
	writer chan struct{}
}

// Option configures Open.
type Option func(*Store)

// WithLogger makes the store log through l (named "store"); the default is
// silent.
func WithLogger(l *zap.Logger) Option {
	return func(s *Store) { s.log = l.Named("store") }
}

// dsnParams are the connection settings every Store uses:
//   - busy_timeout(5000): wait up to 5 s for another writer instead of
//     failing at once with SQLITE_BUSY;
//   - journal_mode(WAL): readers never block the writer, nor it them;
//   - foreign_keys(1): SQLite leaves them off unless asked, per connection;
//   - _txlock=immediate: db.BeginTx issues BEGIN IMMEDIATE, taking the write
//     lock up front, so two claims cannot both read "awaiting_approval" and
//     then collide when upgrading to write.
const dsnParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// uriEscaper escapes what would end or change the path part of an SQLite
// URI filename (https://www.sqlite.org/uri.html).
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// DSN returns the modernc.org/sqlite data source name for the database file
// at path, with drbot's pragmas and _txlock=immediate.
func DSN(path string) string {
	// Clean turns a leading "//" into "/": in a URI it would start an authority.
	return "file:" + uriEscaper.Replace(filepath.Clean(path)) + "?" + dsnParams
}

// Open opens the store at path and applies the migrations it has not seen
// yet. A path of the form postgres://… (or postgresql://…) is a PostgreSQL
// URL; anything else is an SQLite file, created if needed (":memory:" would
// give each pooled connection its own empty database: name a file). Errors
// never carry a password (see Redact).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	s := &Store{log: zap.NewNop(), writer: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	var db *sql.DB
	var err error
	if IsPostgres(path) {
		s.dsn, s.d = path, postgresDialect
		db, err = openPostgres(path)
	} else {
		s.dsn, s.d = DSN(path), sqliteDialect
		db, err = sql.Open("sqlite", s.dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", describe(path), err)
	}
	s.db = db
	if err := s.migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", describe(path), err)
	}
	return s, nil
}

// Ping checks that the database answers (/readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s store: %w", s.d.name, err)
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// write runs fn in a transaction that holds SQLite's write lock from its
// start (see DSN), and commits if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait to write: %w", ctx.Err())
	}
	defer func() { <-s.writer }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if s.d.lockWriters != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockWriters); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("take the write turn: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one worth reporting
		return err
	}
	return tx.Commit()
}

// hasCode reports whether err is an SQLite error with the (extended) result code.
func hasCode(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}
