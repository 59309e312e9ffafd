package azure

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/runbook"
)

// These tests call a real Azurite blob service through azblob (see
// azuretest.BlobURL: skipped without one, except under CI=true).

// azuriteClient is a Client whose blob clients reach Azurite, with the
// system clock (Azurite stamps blobs with the real time).
func azuriteClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Options{Credential: azuretest.Credential(), Location: london, Logger: zaptest.NewLogger(t), Blob: azuretest.BlobClients(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListBackupsNewestFirst(t *testing.T) {
	c := azuriteClient(t)
	blobs, container := azuretest.Container(t)
	azuretest.Upload(t, blobs, container, "nightly_2026-05-30.sql.gz", 2048)
	azuretest.Upload(t, blobs, container, "notes.txt", 10) // not a backup
	// Last-Modified has a resolution of one second: the next blob is newer.
	time.Sleep(1100 * time.Millisecond)
	azuretest.Upload(t, blobs, container, "a_newer_one.sql.gz", 3_000_000)

	res, err := c.Actions()[runbook.KindBackupsList].Run(t.Context(), (&recorder{}).request("find-backup",
		runbook.Params{"account": azuretest.Account, "container": container}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Remember != "a_newer_one.sql.gz" {
		t.Errorf("remembered %v, want the newest backup", res.Remember)
	}
	for _, want := range []string{
		"2 backups in " + azuretest.Account + "/" + container + ", newest first: a_newer_one.sql.gz (3.0 MB, ",
		"; nightly_2026-05-30.sql.gz (2.0 kB, ",
	} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary %q\nlacks %q", res.Summary, want)
		}
	}
	if strings.Contains(res.Summary, "notes.txt") {
		t.Errorf("summary lists a blob that is not a backup: %q", res.Summary)
	}
}

func TestListBackupsFailures(t *testing.T) {
	c := azuriteClient(t)
	_, empty := azuretest.Container(t)
	tests := []struct {
		name, container, want string
	}{
		{"empty container", empty, "no backups (*.sql.gz) in " + azuretest.Account + "/" + empty},
		{"missing container", "no-such-container", "container no-such-container not found in storage account " + azuretest.Account},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Actions()[runbook.KindBackupsList].Run(t.Context(), (&recorder{}).request("find-backup",
				runbook.Params{"account": azuretest.Account, "container": tt.container}, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckBackup(t *testing.T) {
	c := azuriteClient(t)
	blobs, container := azuretest.Container(t)
	const there = "ittms_stg_dr_ptr_20260601T0900.sql.gz"
	azuretest.Upload(t, blobs, container, there, 5_000_000)
	where := azuretest.Account + "/" + container
	tests := []struct {
		name, blob, expect string
		summary, refuse    string
	}{
		{name: "restore: the backup exists", blob: there, expect: runbook.BackupExists,
			summary: "backup found in " + where + ": " + there + " (5.0 MB, "},
		{name: "restore: the backup is missing", blob: "ittms_stg_dr_ptr_20260601T0901.sql.gz", expect: runbook.BackupExists,
			refuse: "backup ittms_stg_dr_ptr_20260601T0901.sql.gz is not in " + where + "; the newest are " + there + " (5.0 MB, "},
		{name: "backup: the name is free", blob: "ittms_stg_dr_flawed_20260601T0900.sql.gz", expect: runbook.BackupFree,
			summary: "backup name ittms_stg_dr_flawed_20260601T0900.sql.gz is free in " + where},
		{name: "backup: the name is taken", blob: there, expect: runbook.BackupFree,
			refuse: "backup " + there + " already exists in " + where + " (5.0 MB, "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Actions()[runbook.KindBackupsCheck].Run(t.Context(), (&recorder{}).request("check-backup",
				runbook.Params{"account": azuretest.Account, "container": container, "name": tt.blob, "expect": tt.expect}, nil))
			if tt.refuse != "" {
				text, ok := runbook.IsRefusal(err)
				if !ok || !strings.Contains(text, tt.refuse) {
					t.Fatalf("err = %v\nwant a refusal with %q", err, tt.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Summary, tt.summary) {
				t.Errorf("summary %q\nwant %q", res.Summary, tt.summary)
			}
			if tt.expect == runbook.BackupExists && !strings.HasSuffix(res.Summary, " ago)") {
				t.Errorf("summary %q does not give the backup's age", res.Summary)
			}
		})
	}
}

func TestBackupErrorsAreExplained(t *testing.T) {
	// A wrong key is what a missing role looks like from here: 403.
	c, err := New(Options{Credential: azuretest.Credential(), Logger: zaptest.NewLogger(t), Blob: azuretest.BlobClients(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, container := azuretest.Container(t)
	_, err = c.Actions()[runbook.KindBackupsCheck].Run(t.Context(), (&recorder{}).request("check-backup",
		runbook.Params{"account": "otheraccount", "container": container, "name": "x.sql.gz", "expect": runbook.BackupExists}, nil))
	if err == nil || !strings.Contains(err.Error(), "forbidden: Azure refused drbot's identity to read backup x.sql.gz in otheraccount/"+container) ||
		!strings.Contains(err.Error(), "grant it the Storage Blob Data Reader role") {
		t.Errorf("err = %v, want what to grant", err)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{-1, "0 B"}, {0, "0 B"}, {999, "999 B"}, {2000, "2.0 kB"}, {3_000_000, "3.0 MB"},
		{12_345_678, "12 MB"}, {1_500_000_000, "1.5 GB"}, {999_999_999_999_999_999, "1000 PB"},
	}
	for _, tt := range tests {
		if got := byteSize(tt.n); got != tt.want {
			t.Errorf("byteSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
