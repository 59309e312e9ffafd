package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgres reports whether dsn names a PostgreSQL database
// (postgres://… or postgresql://…) rather than an SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn fit for logs, errors and a run's recorded setup: a
// PostgreSQL URL without its password (user:xxxxx@host), any other
// text as is. A URL that does not parse is replaced entirely.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// openPostgres opens the PostgreSQL database dsn through pgx's
// database/sql driver, with placeholders rewritten (rebindConnector), so
// that the store has one code path for both databases.
func openPostgres(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the URL: say only what it is.
		return nil, errors.New("parse PostgreSQL URL: check its syntax (postgres://user:password@host:5432/db?sslmode=…)")
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	// Writes take turns (one at a time per process, see Store.writer);
	// reads are short. A few connections per replica are plenty, and a
	// shared server is not crowded by drbot's replicas.
	db.SetMaxOpenConns(maxPostgresConns)
	db.SetMaxIdleConns(maxPostgresConns / 2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// maxPostgresConns bounds one Store's connections to PostgreSQL.
const maxPostgresConns = 8

// rebindConnector hands out connections that rewrite every statement's
// placeholders with rebind: the one place where the store's SQLite-style
// "?" meets PostgreSQL's "$1".
type rebindConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(pgxConn)}, nil
}

// pgxConn is what stdlib.Conn implements and rebindConn forwards.
type pgxConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.NamedValueChecker
}

var _ pgxConn = (*stdlib.Conn)(nil)

// rebindConn is a pgx connection whose statements are rebound first.
type rebindConn struct{ pgxConn }

var _ pgxConn = rebindConn{}

// Prepare implements driver.Conn.
func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.pgxConn.Prepare(rebind(query))
}

// PrepareContext implements driver.ConnPrepareContext.
func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.pgxConn.PrepareContext(ctx, rebind(query))
}

// ExecContext implements driver.ExecerContext.
func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.pgxConn.ExecContext(ctx, rebind(query), args)
}

// QueryContext implements driver.QueryerContext.
func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.pgxConn.QueryContext(ctx, rebind(query), args)
}

// describe names the database for errors and logs, without secrets.
func describe(dsn string) string {
	if IsPostgres(dsn) {
		return fmt.Sprintf("PostgreSQL %s", Redact(dsn))
	}
	return dsn
}
