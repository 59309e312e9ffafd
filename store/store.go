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
	// writes queue for the one writer goroutine (writeLoop): SQLite has one
	// writer anyway, and queueing here rather than in SQLite's busy handler
	// means no amount of concurrent clicks and steps makes a write fail
	// with "database is locked" (busy_timeout still covers other
	// processes). The writer commits what queued up meanwhile together: one
	// fsync for the group instead of one per write.
	writes  chan writeReq
	closing chan struct{}
	stopped chan struct{}
}

// writeReq is one write waiting for the writer.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error // buffered: the writer never waits on it
}

// maxIdleConns is how many SQLite connections stay open between uses.
const maxIdleConns = 16

// openSQLite opens the SQLite database of dsn on connections that keep their
// prepared statements (stmtcache.go).
func openSQLite(dsn string) (*sql.DB, error) {
	connector, err := newCachingConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	// Keep the connections a busy bot uses open, and their statements
	// prepared: database/sql keeps 2 by default, and opening one parses the
	// schema again.
	db.SetMaxIdleConns(maxIdleConns)
	return db, nil
}

// maxGroup bounds the writes committed together, so one commit stays short.
const maxGroup = 64

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
	var db *sql.DB
	var err error
	var dsn string
	d := sqliteDialect
	if IsPostgres(path) {
		dsn, d = path, postgresDialect
		db, err = openPostgres(path)
	} else {
		dsn = DSN(path)
		db, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", describe(path), err)
	}
	s := withWriter(db, dsn, d, opts...)
	if err := s.migrate(ctx, migrations); err != nil {
		_ = s.Close()
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

// withWriter makes a Store of db and starts its writer.
func withWriter(db *sql.DB, dsn string, d dialect, opts ...Option) *Store {
	s := &Store{db: db, dsn: dsn, d: d, log: zap.NewNop(), writes: make(chan writeReq), closing: make(chan struct{}), stopped: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	go s.writeLoop()
	return s
}

// errClosed answers writes after Close.
var errClosed = errors.New("store closed")

// Close stops the writer and closes the database.
func (s *Store) Close() error {
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	<-s.stopped
	return s.db.Close()
}

// write runs fn in a transaction that holds SQLite's write lock from its
// start (see DSN); fn's changes are committed if it returns nil, and undone
// (and its error returned) if not. Other writes may share the transaction,
// each in its own savepoint, so fn sees their changes as if they ran just
// before it.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	req := writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return fmt.Errorf("wait to write: %w", ctx.Err())
	case <-s.closing:
		return errClosed
	}
	// Taken: the writer answers, and the answer says whether it committed.
	return <-req.done
}

// writeLoop is the one writer: it takes a write, and with it the others
// that queued up meanwhile, and commits them together.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	for {
		var group []writeReq
		select {
		case r := <-s.writes:
			group = append(group, r)
		case <-s.closing:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break more
			}
		}
		s.commit(group)
	}
}

// commit runs a group of writes in one transaction, each in a savepoint so
// a failing one is undone alone, and answers each.
func (s *Store) commit(group []writeReq) {
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err == nil && s.d.lockWriters != "" {
		// PostgreSQL: this replica's turn among the writers of all
		// replicas (see dialect.lockWriters), for the whole group.
		if _, err = tx.Exec(s.d.lockWriters); err != nil {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		for _, r := range group {
			r.done <- fmt.Errorf("begin write: %w", err)
		}
		return
	}
	var ran []writeReq
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("wait to write: %w", err)
			continue
		}
		if err := savepoint(tx, r.fn); err != nil {
			var broken *brokenTx
			if errors.As(err, &broken) {
				// The transaction cannot go on: nothing in it commits.
				_ = tx.Rollback()
				for _, o := range append(ran, group[i:]...) {
					o.done <- fmt.Errorf("write: %w", broken.err)
				}
				return
			}
			r.done <- err
			continue
		}
		ran = append(ran, r)
	}
	err = tx.Commit()
	for _, r := range ran {
		r.done <- err
	}
}

// brokenTx is a savepoint that could not be set, released or rolled back.
type brokenTx struct{ err error }

func (b *brokenTx) Error() string { return b.err.Error() }

// savepoint runs fn inside a savepoint of tx: kept if fn returns nil, rolled
// back if not (fn's error is returned).
func savepoint(tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	if _, err := tx.Exec(`SAVEPOINT write`); err != nil {
		return &brokenTx{err}
	}
	if err := fn(tx); err != nil {
		if _, rerr := tx.Exec(`ROLLBACK TO write`); rerr != nil {
			return &brokenTx{fmt.Errorf("%w (undoing it: %v)", err, rerr)}
		}
		if _, rerr := tx.Exec(`RELEASE write`); rerr != nil {
			return &brokenTx{rerr}
		}
		return err
	}
	if _, err := tx.Exec(`RELEASE write`); err != nil {
		return &brokenTx{err}
	}
	return nil
}

// hasCode reports whether err is an SQLite error with the (extended) result code.
func hasCode(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}
