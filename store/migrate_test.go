package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkVersions checks that schema_migrations records versions 1..n once each.
func checkVersions(t *testing.T, s *Store, n int) {
	t.Helper()
	rows, err := s.db.Query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, timeField{&at}); err != nil {
			t.Fatal(err)
		}
		if at.IsZero() {
			t.Errorf("version %d has no applied_at", v)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != n {
		t.Fatalf("recorded versions %v, want 1..%d", versions, n)
	}
	for i, v := range versions {
		if v != i+1 {
			t.Errorf("recorded versions %v, want 1..%d", versions, n)
		}
	}
}

func TestOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drbot.db")
	s := openStore(t, path)
	checkVersions(t, s, len(migrations))
	create(t, s, "r1", "svc", "staging", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Migration 1 would fail on its existing tables if it ran again.
	s = openStore(t, path)
	checkVersions(t, s, len(migrations))
	if _, err := s.Run(context.Background(), "r1"); err != nil {
		t.Errorf("run lost on reopen: %v", err)
	}
}

func TestMigrateAppliesOnlyNew(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	next := append(append([]string(nil), migrations...),
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT`,
		`INSERT INTO notes (text) VALUES ('added by the newest migration')`,
	)
	for range 2 { // the second pass must change nothing
		if err := s.migrate(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	checkVersions(t, s, len(next))
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM notes`).Scan(&n); err != nil || n != 1 {
		t.Errorf("notes rows = %d (%v), want 1: each migration applied once", n, err)
	}
}

func TestMigrateRollsBackFailedMigration(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	next := append(append([]string(nil), migrations...),
		`CREATE TABLE half (id INTEGER PRIMARY KEY); INSERT INTO nowhere VALUES (1)`,
	)
	want := fmt.Sprintf("migrate to version %d", len(next))
	if err := s.migrate(ctx, next); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	checkVersions(t, s, len(migrations))
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("half-applied migration left table 'half' (%v)", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drbot.db")
	s := openStore(t, path)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, '2030-01-01T00:00:00.000000000Z')`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open = %v, want a refusal of the newer schema", err)
	}
}
