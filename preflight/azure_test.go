package preflight_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/preflight"
)

const (
	azRG     = "s189t01-ittms-stg-rg"
	azServer = "s189t01-ittms-stg-pg"
)

var azNow = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// backupsStub answers the backup listing, so the ARM cases need no Azurite.
type backupsStub struct {
	*azure.Client
	backup preflight.BackupInfo
}

func (s backupsStub) NewestBackup(context.Context, string, string) (preflight.BackupInfo, error) {
	return s.backup, nil
}

func newAzure(t *testing.T, servers *azuretest.Servers, perms *azuretest.Permissions, blob func(string) (*azblob.Client, error)) *azure.Client {
	t.Helper()
	opts := azuretest.ClientOptions(servers, nil)
	perms.Next = opts.Transport
	opts.Transport = perms
	o := azure.Options{Credential: azuretest.Credential(), Subscription: azuretest.Subscription, Logger: zaptest.NewLogger(t), ARM: opts}
	if blob != nil {
		o.Blob = blob
	}
	c, err := azure.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runAzure(t *testing.T, az preflight.Azure, target preflight.AzureTarget) []preflight.Check {
	t.Helper()
	res := preflight.Run(context.Background(), preflight.Sources{Azure: az, GitHubSkip: "-", KubeSkip: "-", Now: func() time.Time { return azNow }},
		[]preflight.Target{{Service: "s", Env: "e", Azure: target}}, nil)
	var out []preflight.Check
	for _, c := range res.Tables[0].Checks {
		if c.Family == preflight.FamilyAzure {
			out = append(out, c)
		}
	}
	return out
}

func TestAzureARM(t *testing.T) {
	fresh := preflight.BackupInfo{Lookup: preflight.Found, Count: 7, Name: "ittms_stg_2026-06-01.sql.gz", LastModified: azNow.Add(-7 * time.Hour)}
	target := preflight.AzureTarget{ResourceGroup: azRG, Server: azServer, Account: "s189t01ittmsdbbkpstgsa", Container: "database-backup", Key: "services.s.environments.e"}
	postgresRole := []string{"Microsoft.DBforPostgreSQL/flexibleServers/*", "Microsoft.DBforPostgreSQL/locations/*/read"}
	tests := []struct {
		name   string
		server *azuretest.Server
		perms  *azuretest.Permissions
		backup preflight.BackupInfo
		want   map[string]preflight.Status
		detail map[string]string
	}{
		{
			name:   "ready",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: azNow.Add(-7 * 24 * time.Hour)},
			perms:  &azuretest.Permissions{Actions: postgresRole}, backup: fresh,
			want: map[string]preflight.Status{"server " + azServer: preflight.OK, "earliest restore point": preflight.OK,
				"backups s189t01ittmsdbbkpstgsa/database-backup": preflight.OK, "may delete servers in " + azRG: preflight.OK},
			detail: map[string]string{"earliest restore point": "2026-05-25 10:00 UTC (7d0h ago)", "backups s189t01ittmsdbbkpstgsa/database-backup": "7 backups, newest ittms_stg_2026-06-01.sql.gz, 7h00m old"},
		},
		{
			name:  "missing server",
			perms: &azuretest.Permissions{Actions: []string{"*"}}, backup: fresh,
			want:   map[string]preflight.Status{"server " + azServer: preflight.Fail, "may delete servers in " + azRG: preflight.OK},
			detail: map[string]string{"server " + azServer: "not found in resource group " + azRG},
		},
		{
			name:   "stopped server, old backup",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateStopped},
			perms:  &azuretest.Permissions{Actions: postgresRole},
			backup: preflight.BackupInfo{Lookup: preflight.Found, Count: 3, Name: "old.sql.gz", LastModified: azNow.Add(-30 * time.Hour)},
			want: map[string]preflight.Status{"server " + azServer: preflight.Fail, "earliest restore point": preflight.Warn,
				"backups s189t01ittmsdbbkpstgsa/database-backup": preflight.Warn},
			detail: map[string]string{"server " + azServer: "state Stopped", "backups s189t01ittmsdbbkpstgsa/database-backup": "30h00m old (over 26h00m)"},
		},
		{
			name:   "reader may not delete",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: azNow.Add(-time.Hour)},
			perms:  &azuretest.Permissions{Actions: []string{"*/read"}}, backup: fresh,
			want: map[string]preflight.Status{"may delete servers in " + azRG: preflight.Fail},
		},
		{
			name:   "not actions take delete out",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: azNow.Add(-time.Hour)},
			perms:  &azuretest.Permissions{Actions: []string{"*"}, NotActions: []string{"Microsoft.DBforPostgreSQL/*/delete"}}, backup: fresh,
			want: map[string]preflight.Status{"may delete servers in " + azRG: preflight.Fail},
		},
		{
			name:   "cannot tell",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: azNow.Add(-time.Hour)},
			perms:  &azuretest.Permissions{Status: http.StatusForbidden}, backup: fresh,
			want:   map[string]preflight.Status{"may delete servers in " + azRG: preflight.Warn},
			detail: map[string]string{"may delete servers in " + azRG: "cannot tell"},
		},
		{
			name:   "empty container",
			server: &azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: azNow.Add(-time.Hour)},
			perms:  &azuretest.Permissions{Actions: postgresRole}, backup: preflight.BackupInfo{Lookup: preflight.Found},
			want: map[string]preflight.Status{"backups s189t01ittmsdbbkpstgsa/database-backup": preflight.Fail},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := azuretest.NewServers()
			if tt.server != nil {
				servers.Put(azRG, azServer, *tt.server)
			}
			c := newAzure(t, servers, tt.perms, nil)
			checks := runAzure(t, backupsStub{Client: c, backup: tt.backup}, target)
			for name, st := range tt.want {
				got, ok := status(checks, name)
				if !ok || got.Status != st {
					t.Errorf("%s = %+v, want %s\n%s", name, got, st, dump(checks))
				}
				if d := tt.detail[name]; d != "" && !strings.Contains(got.Detail, d) {
					t.Errorf("%s detail = %q, want %q", name, got.Detail, d)
				}
			}
			for _, call := range servers.Calls() {
				if !strings.HasPrefix(call, "get ") {
					t.Errorf("preflight changed something: %s", call)
				}
			}
		})
	}
}

// TestAzureBackupsAzurite lists a real container in Azurite (scripts/test.sh
// starts it): the newest of its backups, and a missing container.
func TestAzureBackupsAzurite(t *testing.T) {
	blob, container := azuretest.Container(t)
	azuretest.Upload(t, blob, container, "ittms_stg_2026-05-31.sql.gz", 2000)
	azuretest.Upload(t, blob, container, "ittms_stg_2026-06-01.sql.gz", 3000)
	azuretest.Upload(t, blob, container, "notes.txt", 10)
	servers := azuretest.NewServers()
	servers.Put(azRG, azServer, azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: time.Now().Add(-time.Hour)})
	c := newAzure(t, servers, &azuretest.Permissions{Actions: []string{"*"}}, azuretest.BlobClients(t))
	res := preflight.Run(context.Background(), preflight.Sources{Azure: c, GitHubSkip: "-", KubeSkip: "-"}, []preflight.Target{
		{Service: "s", Env: "ok", Azure: preflight.AzureTarget{ResourceGroup: azRG, Server: azServer, Account: azuretest.Account, Container: container}},
		{Service: "s", Env: "gone", Azure: preflight.AzureTarget{ResourceGroup: azRG, Server: azServer, Account: azuretest.Account, Container: "no-such-container"}},
	}, nil)
	name := "backups " + azuretest.Account + "/"
	// Both blobs may carry the same Last-Modified second; either is newest.
	if got, _ := status(res.Tables[0].Checks, name+container); got.Status != preflight.OK || !strings.Contains(got.Detail, "2 backups, newest ittms_stg_2026-0") {
		t.Errorf("backups = %+v", got)
	}
	if got, _ := status(res.Tables[1].Checks, name+"no-such-container"); got.Status != preflight.Fail || !strings.Contains(got.Detail, "not found") {
		t.Errorf("missing container = %+v", got)
	}
}
