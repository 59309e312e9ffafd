package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStorePath(t *testing.T) {
	dir := t.TempDir()
	url := filepath.Join(dir, "database-url")
	if err := os.WriteFile(url, []byte("postgres://drbot:pw@db:5432/drbot\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"default", nil, "drbot.db", false},
		{"DRBOT_DB", map[string]string{"DRBOT_DB": "/data/drbot.db", "DRBOT_DB_FILE": url}, "/data/drbot.db", false},
		{"DRBOT_DB_FILE", map[string]string{"DRBOT_DB_FILE": url}, "postgres://drbot:pw@db:5432/drbot", false},
		{"missing file", map[string]string{"DRBOT_DB_FILE": filepath.Join(dir, "nope")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{getenv: func(k string) string { return tt.env[k] }}
			got, err := a.storePath()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("storePath() = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
