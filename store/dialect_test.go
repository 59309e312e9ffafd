package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRebind(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "SELECT 1", "SELECT 1"},
		{"in order", "UPDATE t SET a = ?, b = ? WHERE id = ?", "UPDATE t SET a = $1, b = $2 WHERE id = $3"},
		{"numbered", "SELECT ?1, ?2 FROM e WHERE run_id = ?1", "SELECT $1, $2 FROM e WHERE run_id = $1"},
		{"in a literal", "SELECT '?' , \"a?\" FROM t WHERE x = ?", "SELECT '?' , \"a?\" FROM t WHERE x = $1"},
		{"json path kept", "WHERE json_extract(meta, '$.channel') = ?", "WHERE json_extract(meta, '$.channel') = $1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rebind(tt.in); got != tt.want {
				t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"drbot.db", "drbot.db"},
		{"/var/lib/drbot/drbot.db", "/var/lib/drbot/drbot.db"},
		{"postgres://drbot:s3cret@db.internal:5432/drbot?sslmode=require", "postgres://drbot:xxxxx@db.internal:5432/drbot?sslmode=require"},
		{"postgresql://drbot@db/drbot", "postgresql://drbot@db/drbot"},
		{"postgres://db/drbot?user=drbot&password=s3cret", "postgres://db/drbot?password=xxxxx&user=drbot"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestOpenErrorHidesPassword: a PostgreSQL that cannot be reached is
// reported without the password of its URL.
func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback: refused at once.
	_, err := Open(ctx, "postgres://drbot:s3cret-pw@127.0.0.1:1/drbot?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("open of an unreachable PostgreSQL succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error shows the password: %v", err)
	}
	_, err = Open(ctx, "postgres://drbot:s3cret-pw@%zz/drbot")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("bad URL: err = %v, want an error without the password", err)
	}
}
