package azure

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/runbook"
)

func TestDeleteRefusesEveryLiveServer(t *testing.T) {
	// Even when a runbook asks for it: every live server of every
	// environment, whatever the case of the configured name, before any
	// call to Azure.
	for _, name := range []string{live, liveProd, "s189t01-ittms-qa-pg"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.client.protected = append(f.client.protected, "S189T01-ITTMS-QA-PG")
			f.servers.Put(rg, name, azuretest.Server{State: stateReady})
			_, rec, err := f.run(t, runbook.KindPostgresDelete, runbook.Params{"resource_group": rg, "server": name})
			text, ok := runbook.IsRefusal(err)
			if !ok || !strings.Contains(text, name+" is the live server of an environment in drbot.yaml; drbot never deletes a live server") {
				t.Fatalf("err = %v, want the refusal", err)
			}
			if n := f.inject.Seen(); n != 0 {
				t.Errorf("%d requests reached Azure", n)
			}
			if len(rec.checkpoints) != 0 {
				t.Errorf("checkpoints saved: %v", rec.checkpoints)
			}
			if !f.servers.Exists(rg, name) {
				t.Error("the live server is gone")
			}
		})
	}
}

func TestDeleteFollowsTheOperation(t *testing.T) {
	f := newFixture(t)
	f.servers.DeletePolls = 3
	f.servers.Put(rg, ptr, azuretest.Server{State: stateReady})
	res, rec, err := f.run(t, runbook.KindPostgresDelete, serverParams(ptr))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Summary, "server "+ptr+" deleted from resource group "+rg) {
		t.Errorf("summary %q", res.Summary)
	}
	if f.servers.Exists(rg, ptr) || f.servers.Count("delete ") != 1 {
		t.Errorf("server exists %v after %d deletions", f.servers.Exists(rg, ptr), f.servers.Count("delete "))
	}
	// The name before the DELETE, then the resume token once it is accepted.
	if len(rec.checkpoints) != 2 || rec.checkpoints[0]["deleting"] != ptr || rec.checkpoints[0]["resume_token"] != "" ||
		rec.checkpoints[1]["resume_token"] == "" {
		t.Errorf("checkpoints %v, want the name, then the name and a resume token", rec.checkpoints)
	}
	if len(rec.progress) != 1 || !strings.Contains(rec.progress[0], "deleting server "+ptr) {
		t.Errorf("progress %v", rec.progress)
	}
}

func TestDeleteReattachesWithTheResumeToken(t *testing.T) {
	f := newFixture(t)
	f.servers.DeletePolls = 3
	f.servers.Put(rg, ptr, azuretest.Server{State: stateReady})

	// The first process stops right after saving the token (a crash; here
	// the save itself ends the run).
	var saved map[string]string
	crash := errors.New("crashed")
	req := (&recorder{}).request("delete-ptr", serverParams(ptr), nil)
	req.Save = func(_ context.Context, cp map[string]string) error {
		if cp["resume_token"] == "" {
			return nil
		}
		saved = cp
		return crash
	}
	if _, err := f.client.Actions()[runbook.KindPostgresDelete].Run(context.Background(), req); !errors.Is(err, crash) {
		t.Fatalf("first run: %v, want it stopped", err)
	}
	if saved == nil {
		t.Fatal("no resume token saved")
	}

	// The next process re-attaches: no second DELETE, no read first.
	rec := &recorder{}
	res, err := f.client.Actions()[runbook.KindPostgresDelete].Run(context.Background(), rec.request("delete-ptr", serverParams(ptr), saved))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.servers.Count("delete "); n != 1 {
		t.Errorf("%d deletions started, want 1", n)
	}
	if n := f.servers.Count("get "); n != 1 {
		t.Errorf("%d reads, want only the first run's", n)
	}
	if !strings.Contains(res.Summary, "deleted") {
		t.Errorf("summary %q", res.Summary)
	}
}

func TestDeleteOfAServerAlreadyGone(t *testing.T) {
	f := newFixture(t)
	res, rec, err := f.run(t, runbook.KindPostgresDelete, serverParams(ptr))
	if err != nil {
		t.Fatalf("already gone is not a failure: %v", err)
	}
	if want := "server " + ptr + " is already gone from resource group " + rg + "; nothing to delete"; res.Summary != want {
		t.Errorf("summary %q, want %q", res.Summary, want)
	}
	if f.servers.Count("delete ") != 0 || len(rec.checkpoints) != 0 {
		t.Errorf("a deletion was started (%v) or saved (%v)", f.servers.Calls(), rec.checkpoints)
	}
}
