package azure

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"

	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/runbook"
)

const (
	stateReady        = armpostgresqlflexibleservers.ServerStateReady
	stateStopped      = armpostgresqlflexibleservers.ServerStateStopped
	stateProvisioning = armpostgresqlflexibleservers.ServerStateProvisioning
)

func TestCheckGone(t *testing.T) {
	tests := []struct {
		name    string
		servers map[string]azuretest.Server
		want    string // in the summary
		refuse  string // in the refusal; "" passes
	}{
		{name: "not found", want: "server " + live + " is gone: not found in resource group " + rg + " (checked 2026-06-01 10:00:00 UTC (11:00:00 BST))"},
		{name: "found but stopped", servers: map[string]azuretest.Server{live: {State: stateStopped, Version: "16"}},
			want: "server " + live + " exists but is not usable: Stopped, PostgreSQL 16"},
		{name: "found and ready", servers: map[string]azuretest.Server{live: {State: stateReady, Version: "16"}},
			refuse: "server " + live + " in resource group " + rg + " is Ready (Ready, PostgreSQL 16, checked 2026-06-01 10:00:00 UTC (11:00:00 BST)): it is not lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for name, s := range tt.servers {
				f.servers.Put(rg, name, s)
			}
			res, _, err := f.run(t, runbook.KindPostgresCheckGone, serverParams(live))
			if tt.refuse != "" {
				text, ok := runbook.IsRefusal(err)
				if !ok || !strings.Contains(text, tt.refuse) {
					t.Fatalf("err = %v, want a refusal with %q", err, tt.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Summary, tt.want) {
				t.Errorf("summary %q\nwant it to contain %q", res.Summary, tt.want)
			}
			if got := f.servers.Calls(); !slices.Equal(got, []string{"get " + rg + "/" + live}) {
				t.Errorf("calls %v, want one read of the live server", got)
			}
		})
	}
}

func TestPreparePTR(t *testing.T) {
	earliest := now.Add(-7 * 24 * time.Hour)
	restore := now.Add(-2 * time.Hour).Format(time.RFC3339)
	params := func(restoreTime, wanted string) runbook.Params {
		return runbook.Params{"resource_group": rg, "server": live, "ptr_server": wanted, "restore_time": restoreTime}
	}
	tests := []struct {
		name     string
		params   runbook.Params
		servers  []string // existing servers besides the live one
		noLive   bool
		earliest time.Time
		remember string
		summary  []string
		refuse   []string
	}{
		{name: "name free, time inside the window", params: params(restore, ptr), earliest: earliest, remember: ptr,
			summary: []string{"restore time 2026-06-01 08:00:00 UTC (09:00:00 BST) is inside the restore window of " + live +
				" (2026-05-25 10:00:00 UTC (11:00:00 BST) to 2026-06-01 09:55:00 UTC (10:55:00 BST))", "PTR server name " + ptr + " is free"}},
		{name: "name taken: the next is proposed", params: params(restore, ptr), servers: []string{ptr}, earliest: earliest, remember: ptr + "2",
			summary: []string{"PTR server name " + ptr + " (Ready) is taken; using " + ptr + "2 instead"}},
		{name: "two taken", params: params(restore, ptr), servers: []string{ptr, ptr + "2"}, earliest: earliest, remember: ptr + "3",
			summary: []string{"using " + ptr + "3 instead"}},
		{name: "a rerun's ptr2 taken: ptr3", params: params(restore, ptr+"2"), servers: []string{ptr + "2"}, earliest: earliest, remember: ptr + "3"},
		{name: "no earliest restore point: the seed's 7 days", params: params(restore, ptr), remember: ptr,
			summary: []string{"Azure reported no earliest restore point"}},
		{name: "before the earliest restore point", params: params(now.Add(-3*time.Hour).Format(time.RFC3339), ptr), earliest: now.Add(-150 * time.Minute),
			refuse: []string{"restore time 2026-06-01 07:00:00 UTC (08:00:00 BST) is outside the restore window of " + live +
				": 2026-06-01 07:30:00 UTC (08:30:00 BST) to 2026-06-01 09:55:00 UTC (10:55:00 BST)"}},
		{name: "less than 5 minutes ago", params: params("2026-06-01 10:57 Europe/London", ptr), earliest: earliest,
			refuse: []string{"restore time 2026-06-01 09:57:00 UTC (10:57:00 BST) is outside the restore window", "to 2026-06-01 09:55:00 UTC (10:55:00 BST)"}},
		{name: "live server missing", params: params(restore, ptr), noLive: true,
			refuse: []string{"the live server " + live + " is not in resource group " + rg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if !tt.noLive {
				f.servers.Put(rg, live, azuretest.Server{State: stateReady, Version: "16", Earliest: tt.earliest})
			}
			for _, s := range tt.servers {
				f.servers.Put(rg, s, azuretest.Server{State: stateReady})
			}
			res, _, err := f.run(t, runbook.KindPostgresPreparePTR, tt.params)
			if len(tt.refuse) > 0 {
				text, ok := runbook.IsRefusal(err)
				if !ok {
					t.Fatalf("err = %v, want a refusal", err)
				}
				for _, want := range tt.refuse {
					if !strings.Contains(text, want) {
						t.Errorf("refusal %q\nlacks %q", text, want)
					}
				}
				if f.servers.Count("get "+strings.ToLower(rg+"/"+ptr)) != 0 {
					t.Error("names were looked up after the refusal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Remember != tt.remember {
				t.Errorf("remembered %v, want %s", res.Remember, tt.remember)
			}
			for _, want := range tt.summary {
				if !strings.Contains(res.Summary, want) {
					t.Errorf("summary %q\nlacks %q", res.Summary, want)
				}
			}
		})
	}
}

func TestPreparePTRNeverProposesALiveServer(t *testing.T) {
	f := newFixture(t)
	// A live server of another environment is named like this one's copy.
	f.client.protected = append(f.client.protected, ptr+"2")
	f.servers.Put(rg, live, azuretest.Server{State: stateReady})
	f.servers.Put(rg, ptr, azuretest.Server{State: stateReady})
	res, _, err := f.run(t, runbook.KindPostgresPreparePTR, runbook.Params{
		"resource_group": rg, "server": live, "ptr_server": ptr, "restore_time": now.Add(-time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Remember != ptr+"3" || !strings.Contains(res.Summary, ptr+"2 (a live server)") {
		t.Errorf("remembered %v (%s), want %s3 past the live %s2", res.Remember, res.Summary, ptr, ptr)
	}
}

func TestWaitPollsUntilReady(t *testing.T) {
	f := newFixture(t)
	f.servers.Put(rg, ptr, azuretest.Server{AppearAfter: 2, Version: "16",
		States: []armpostgresqlflexibleservers.ServerState{stateProvisioning, stateProvisioning, stateProvisioning, stateReady}})
	res, rec, err := f.run(t, runbook.KindPostgresWait, serverParams(ptr))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Summary, "server "+ptr+" is Ready (Ready, PostgreSQL 16) after ") {
		t.Errorf("summary %q", res.Summary)
	}
	want := []string{
		"server " + ptr + " in " + rg + ": not found yet; waiting for Ready",
		"server " + ptr + " in " + rg + ": Provisioning; waiting for Ready",
	}
	if !slices.Equal(rec.progress, want) {
		t.Errorf("progress (each state once):\n  %s\nwant:\n  %s", strings.Join(rec.progress, "\n  "), strings.Join(want, "\n  "))
	}
	if n := f.servers.Count("get "); n != 6 {
		t.Errorf("%d reads, want 6 (2 not found, 3 provisioning, 1 ready)", n)
	}
	if len(res.Links) != 1 || !strings.Contains(res.Links[0].URL, "/subscriptions/"+sub+"/resourceGroups/"+rg+"/providers/Microsoft.DBforPostgreSQL/flexibleServers/"+ptr) {
		t.Errorf("links %v, want the server's portal page", res.Links)
	}
}

func TestWaitEndsWithTheStep(t *testing.T) {
	f := newFixture(t)
	f.servers.Put(rg, ptr, azuretest.Server{State: stateProvisioning})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec := &recorder{}
	_, err := f.client.Actions()[runbook.KindPostgresWait].Run(ctx, rec.request("wait-ptr", serverParams(ptr), nil))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "server "+ptr+" not Ready after") || !strings.Contains(err.Error(), "(last: Provisioning)") {
		t.Errorf("err = %v, want the timeout with the last state", err)
	}
	if runbook.IsRetryable(err) {
		t.Error("a step that timed out is not retryable by itself")
	}
}

func TestSubscriptionPerStep(t *testing.T) {
	f := newFixture(t)
	f.client.subscription = ""
	_, _, err := f.run(t, runbook.KindPostgresCheckGone, serverParams(live))
	if err == nil || !strings.Contains(err.Error(), "set AZURE_SUBSCRIPTION_ID, or postgres.subscription_id") {
		t.Fatalf("err = %v, want what to set", err)
	}
	p := serverParams(live)
	p["subscription"] = otherSubID
	if _, _, err := f.run(t, runbook.KindPostgresCheckGone, p); err != nil {
		t.Fatalf("with the step's subscription: %v", err)
	}
	if _, ok := f.client.servers[otherSubID]; !ok {
		t.Error("no client was built for the step's subscription")
	}
	p["subscription"] = "not-a-guid"
	if _, _, err := f.run(t, runbook.KindPostgresCheckGone, p); err == nil || !strings.Contains(err.Error(), `parameter "subscription"`) {
		t.Errorf("err = %v, want the parameter refused", err)
	}
}
