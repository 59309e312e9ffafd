package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// The live environment's Azure names (testdata/live/drbot.yaml).
const (
	liveRG     = "s189t01-ittms-stg-rg"
	liveServer = "s189t01-ittms-stg-pg"
	liveBackup = "s189t01ittmsdbbkpstgsa" // the storage account
	livePTR    = "s189t01-ittms-stg-pg-ptr"
)

// TestLiveScenario2WithRealAzure runs `drbot rehearse scenario-2 --live`
// with the real Azure adapter: ARM is the SDK's fake flexible servers
// (azuretest), blob storage a real Azurite. A copy named like this run's
// PTR server is left over from an earlier run, so prepare-ptr proposes
// …-ptr2, and every later step uses it. The test plays the workflows'
// effects: the PTR workflow creates the copy (Provisioning, then Ready), the
// backup workflow writes its blob. GitHub is githubtest's fake; Kubernetes is
// simulated here (TestLiveScenario2OnFakes runs it for real).
func TestLiveScenario2WithRealAzure(t *testing.T) {
	blobs := azuretest.BlobClients(t)
	servers := azuretest.NewServers()
	servers.DeletePolls = 2
	servers.Put(liveRG, liveServer, azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Version: "16",
		Earliest: time.Now().UTC().Add(-7 * 24 * time.Hour)})
	servers.Put(liveRG, livePTR, azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Version: "16"})
	blobClient, container := azuretest.Container(t)
	setAzureTestOptions(t, func(o azure.Options) azure.Options {
		o.Credential = azuretest.Credential()
		o.ARM = azuretest.ClientOptions(servers, nil)
		o.PollInterval = 5 * time.Millisecond
		o.Blob = func(string) (*azblob.Client, error) { return blobs(azuretest.Account) }
		return o
	})

	gh := githubtest.New(t, githubtest.Config{Token: "ghp_drbotlivetest"})
	gh.SetReviewCount(liveRepo, "main", 1)
	for _, file := range []string{"maintenance.yml", "deploy.yml", "database-backup.yml", "postgres-ptr.yml", "postgres-restore.yml"} {
		gh.SetWorkflow(liveRepo, file, githubtest.Workflow{Conclusion: "success", InProgressPolls: 3})
	}
	playWorkflows(t, gh, servers, blobClient, container)

	dir := t.TempDir()
	cfg := writeLiveConfig(t, dir, "bat-staging", "http://127.0.0.1:1")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The backups live in the test's container; the temporary URL is not
	// checked here (http is simulated).
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), "container: database-backup", "container: "+container, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "r.db")
	env := map[string]string{
		"DRBOT_SIM_DELAY": "0s", "USER": "ana",
		"GITHUB_TOKEN": "ghp_drbotlivetest", "GITHUB_API_URL": gh.URL(),
		"AZURE_SUBSCRIPTION_ID": azuretest.Subscription,
	}
	restoreTime := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	start := time.Now()
	// A person approves each step at the prompt; bob is the second person
	// of the two-person restore.
	code, out, errOut := runCLIAnswering(t, env, approveAll("bob"), "rehearse", "scenario-2", "--live", "--simulate=kubernetes,http",
		"--db", db, "--config", cfg, "--service", "itt-mentor-services", "--env", "staging",
		"--var", "restore_time="+restoreTime.Format("2006-01-02 15:04")+" UTC")
	t.Logf("rehearsal took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	run := storedRun(t, db)
	stamp := run.StartedAt.UTC().Format("20060102T1504")
	timeline := stepTimeline(t, db, run.ID)

	for _, tt := range []struct{ step, want string }{
		{"check-flawed-backup-name", "backup name ittms_stg_dr_flawed_" + stamp + ".sql.gz is free in " + liveBackup + "/" + container},
		{"prepare-ptr", "restore time " + runbook.FormatUTC(restoreTime)},
		{"prepare-ptr", "is inside the restore window of " + liveServer},
		{"prepare-ptr", "PTR server name " + livePTR + " (Ready) is taken; using " + livePTR + "2 instead"},
		{"wait-ptr", "server " + livePTR + "2 in " + liveRG + ": Provisioning; waiting for Ready"},
		{"wait-ptr", "server " + livePTR + "2 is Ready (Ready, PostgreSQL 16) after "},
		{"check-ptr-backup-name", "backup name ittms_stg_dr_ptr_" + stamp + ".sql.gz is free"},
		{"check-ptr-backup", "backup found in " + liveBackup + "/" + container + ": ittms_stg_dr_ptr_" + stamp + ".sql.gz (4.1 kB, "},
		{"delete-ptr", "server " + livePTR + "2 deleted from resource group " + liveRG},
	} {
		if !strings.Contains(timeline[tt.step], tt.want) {
			t.Errorf("timeline of %s lacks %q:\n%s", tt.step, tt.want, timeline[tt.step])
		}
		if strings.Contains(timeline[tt.step], "SIMULATED") {
			t.Errorf("timeline of %s says SIMULATED:\n%s", tt.step, timeline[tt.step])
		}
	}

	ptrInputs := ""
	for _, d := range gh.Dispatches() {
		if d.Workflow == "postgres-ptr.yml" {
			ptrInputs = d.Inputs["new-db-server"]
		}
	}
	if ptrInputs != livePTR+"2" {
		t.Errorf("PTR workflow dispatched with new-db-server=%q, want the proposed %s2", ptrInputs, livePTR)
	}
	if !servers.Exists(liveRG, liveServer) || !servers.Exists(liveRG, livePTR) || servers.Exists(liveRG, livePTR+"2") {
		t.Errorf("after the run: live %v, old copy %v, this run's copy %v; want only this run's copy deleted",
			servers.Exists(liveRG, liveServer), servers.Exists(liveRG, livePTR), servers.Exists(liveRG, livePTR+"2"))
	}
	if deletes := servers.Count("delete "); deletes != 1 {
		t.Errorf("%d deletions, want 1: %v", deletes, servers.Calls())
	}
	if banner := strings.Split(errOut, "\n"); strings.Contains(errOut, "azure.") {
		t.Errorf("an Azure step is announced as simulated:\n%s", strings.Join(banner, "\n"))
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// setAzureTestOptions puts edit behind the real Azure adapter for the test.
func setAzureTestOptions(t *testing.T, edit func(azure.Options) azure.Options) {
	t.Helper()
	azureTestOptions = edit
	t.Cleanup(func() { azureTestOptions = nil })
}

// playWorkflows plays what the fake GitHub's workflows do to Azure: a PTR
// run creates its new server (Provisioning for two reads, then Ready), a
// backup run writes <backup-file>.sql.gz (4 kB) in the container.
func playWorkflows(t *testing.T, gh *githubtest.Server, servers *azuretest.Servers, blobs *azblob.Client, container string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		played := 0
		for ctx.Err() == nil {
			ds := gh.Dispatches()
			for _, d := range ds[played:] {
				switch d.Workflow {
				case "postgres-ptr.yml":
					servers.Put(liveRG, d.Inputs["new-db-server"], azuretest.Server{Version: "16",
						States: []armpostgresqlflexibleservers.ServerState{armpostgresqlflexibleservers.ServerStateProvisioning,
							armpostgresqlflexibleservers.ServerStateProvisioning, armpostgresqlflexibleservers.ServerStateReady}})
				case "database-backup.yml":
					if _, err := blobs.UploadBuffer(ctx, container, d.Inputs["backup-file"]+runbook.BackupSuffix, make([]byte, 4096), nil); err != nil {
						t.Errorf("backup workflow: %v", err)
					}
				}
			}
			played = len(ds)
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// stepTimeline returns each step's timeline texts, one per line.
func stepTimeline(t *testing.T, db, runID string) map[string]string {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.Events(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ev := range events {
		out[ev.StepID] += ev.Text + "\n"
	}
	return out
}

func TestPlanMarksAzureSimulatedOnlyWhenAsked(t *testing.T) {
	restore := "restore_time=" + time.Now().Add(-2*time.Hour).UTC().Format("2006-01-02 15:04") + " UTC"
	for _, tt := range []struct {
		simulate  string
		simulated bool
	}{{"", false}, {"azure", true}} {
		t.Run("simulate="+tt.simulate, func(t *testing.T) {
			args := []string{"plan", "scenario-2", "--config", "../../examples/drbot.yaml", "--var", restore}
			if tt.simulate != "" {
				args = append(args, "--simulate="+tt.simulate)
			}
			code, out, errOut := runCLI(t, nil, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			// Each step is a header line (with its marks) and the call.
			azureLines, marked := 0, 0
			lines := strings.Split(out, "\n")
			for i := 1; i < len(lines); i++ {
				header, call := lines[i-1], strings.TrimSpace(lines[i])
				isAzure := strings.HasPrefix(call, "azure.")
				if isAzure {
					azureLines++
				}
				switch {
				case isAzure && strings.Contains(header, "SIMULATED"):
					marked++
				case !isAzure && strings.Contains(header, "SIMULATED") && strings.Contains(call, ": "):
					t.Errorf("a step that is not Azure's is marked: %q / %q", header, call)
				}
			}
			if azureLines == 0 {
				t.Fatalf("no Azure step in the plan:\n%s", out)
			}
			if want := map[bool]int{true: azureLines, false: 0}[tt.simulated]; marked != want {
				t.Errorf("%d of %d Azure steps marked SIMULATED, want %d:\n%s", marked, azureLines, want, out)
			}
		})
	}
}

func TestLiveAzureNeedsASubscription(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "r.db")
	cfg := writeLiveConfig(t, dir, "bat-staging", "http://127.0.0.1:1")
	code, out, errOut := runCLIAnswering(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, approveAll("bob"),
		"rehearse", "scenario-2", "--live", "--simulate=github,kubernetes,http", "--db", db, "--config", cfg,
		"--var", "restore_time="+time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04")+" UTC")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"AZURE_SUBSCRIPTION_ID", "postgres.subscription_id", "--simulate=azure"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not name %s:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "run id") {
		t.Errorf("a run was started:\n%s", out)
	}
	assertNoRuns(t, db)
}
