package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the admin connection
)

// postgresURLEnv names a PostgreSQL server the store's tests may create
// schemas on (scripts/test.sh starts one: scripts/postgres-test-env.sh).
const postgresURLEnv = "DRBOT_TEST_POSTGRES_URL"

// backend is a database the store's test suite runs on.
type backend struct {
	name string
	// path returns the path (SQLite) or URL (PostgreSQL) of a new, empty
	// database that lives as long as the test.
	path func(t testing.TB) string
}

// newStore opens a store on a new database of the backend.
func (b backend) newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, b.path(t))
}

var sqliteBackend = backend{name: "sqlite", path: func(t testing.TB) string {
	return filepath.Join(t.TempDir(), "drbot.db")
}}

// schemaSeq numbers the schemas of one test binary.
var schemaSeq atomic.Int64

// postgresBackend gives each test its own schema on the server at
// DRBOT_TEST_POSTGRES_URL (faster than a database each), dropped after the
// test. Without the variable the PostgreSQL half of each test is skipped,
// and fails under CI=true, where scripts/test.sh must have started one.
func postgresBackend() backend {
	return backend{name: "postgres", path: func(t testing.TB) string {
		t.Helper()
		base := os.Getenv(postgresURLEnv)
		if base == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI: %s is not set; scripts/test.sh starts a PostgreSQL (scripts/postgres-test-env.sh)", postgresURLEnv)
			}
			t.Skipf("%s not set: run scripts/test.sh, or scripts/postgres-test-env.sh start", postgresURLEnv)
		}
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		schema := fmt.Sprintf("t%d_%d", time.Now().UnixNano(), schemaSeq.Add(1))
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			admin, err := sql.Open("pgx", base)
			if err != nil {
				return
			}
			defer admin.Close()
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}}
}

// forEachBackend runs fn as a subtest on SQLite and on PostgreSQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range []backend{sqliteBackend, postgresBackend()} {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// execOn runs a statement on s's database, for tests that look behind
// the store's back.
func execOn(t testing.TB, s *Store, query string, args ...any) {
	t.Helper()
	if _, err := s.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
