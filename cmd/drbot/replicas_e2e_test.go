package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make and read the test schema

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
)

// postgresSchemaURL is a URL of a new schema on the PostgreSQL at
// DRBOT_TEST_POSTGRES_URL (scripts/test.sh starts one), dropped after the
// test. Without it the test skips, and fails under CI=true.
func postgresSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("DRBOT_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: DRBOT_TEST_POSTGRES_URL is not set; scripts/test.sh starts a PostgreSQL (scripts/postgres-test-env.sh)")
		}
		t.Skip("DRBOT_TEST_POSTGRES_URL not set: run scripts/test.sh, or scripts/postgres-test-env.sh start")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// replicaLease is the lease of the two-replica test: the time a survivor
// waits before it re-attaches a dead replica's step, and sends its
// messages.
const replicaLease = 2 * time.Second

// TestServeTwoReplicasOnPostgres is issue 12's failover test: two drbot
// serve processes on one PostgreSQL, one fake Slack that spreads envelopes
// over both sockets (and delivers some twice, to the other replica, as
// Slack's retries may), GitHub's fake for the workflows. Scenario 2 runs
// end to end; in the middle of the followed PTR workflow the replica that
// follows it is killed (SIGKILL), and the other re-attaches within the
// lease. Every workflow is dispatched once, every step claimed once, every
// timeline event posted (at most one reply twice, for the kill).
func TestServeTwoReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("about 30 s: two drbot processes and scenario 2 with a failover")
	}
	pg := postgresSchemaURL(t)
	gh := githubtest.New(t, githubtest.Config{Token: faultToken})
	gh.SetReviewCount(liveRepo, "main", 1)
	for _, file := range []string{"maintenance.yml", "database-backup.yml", "postgres-restore.yml"} {
		gh.SetWorkflow(liveRepo, file, githubtest.Workflow{Conclusion: "success"})
	}
	// The PTR workflow runs for an hour of the fake's clock, which stands
	// still until the test moves it: its follower is killed mid-run.
	gh.SetWorkflow(liveRepo, "postgres-ptr.yml", githubtest.Workflow{Conclusion: "success", RunFor: time.Hour})

	fake := newFakeSlack(slacktest.WithPingInterval(time.Second), slacktest.Spread())
	cfg := strings.Replace(string(examples.Config), "poll_interval: 10s", "poll_interval: 50ms\n  dispatch_search: 300ms", 1)
	a := newServed(t, fake, []byte(cfg), 150*time.Second, map[string]string{
		"GITHUB_TOKEN": faultToken, "GITHUB_API_URL": gh.URL(),
		"DRBOT_DB": pg, "DRBOT_LEASE": replicaLease.String(),
	})
	a.db = pg
	bin := drbotBinary(t)
	launchProcess(a, bin)
	b := *a
	b.stop = nil
	launchProcess(&b, bin)
	t.Cleanup(func() {
		if b.stop != nil {
			b.stop()
		}
	})
	if n := fake.LiveConnections(); n != 2 {
		t.Fatalf("%d sockets open, want one per replica", n)
	}

	steps := scenarioSteps(t, "scenario-2")
	a.command(lead, general, `start scenario-2 service=itt-mentor-services env=staging restore_time="`+restoreTime()+`"`)
	ch, err := fake.WaitChannel(a.ctx)
	if err != nil {
		t.Fatal(err)
	}
	redelivered := 0
	// approve clicks a step's button; every other click Slack delivers
	// again, with retry_attempt 1, most likely to the other replica.
	approve := func(id string) {
		t.Helper()
		m := a.stepMessage(ch.ID, steps[id], "awaiting approval", "")
		a.click(lead, m, actionOf(m))
		if redelivered%2 == 0 {
			acks := fake.Acks()
			if _, err := fake.Redeliver(a.ctx, acks[len(acks)-1].EnvelopeID, "timeout"); err != nil {
				t.Errorf("redeliver: %v", err)
			}
		}
		redelivered++
	}
	for _, id := range []string{"scale-down", "freeze-merges", "enable-maintenance", "maintenance-message", "backup-flawed"} {
		approve(id)
		a.stepMessage(ch.ID, steps[id], "done", "")
	}

	// The PTR workflow: once it is dispatched and followed, kill the
	// replica that holds the step's lease.
	approve("ptr")
	st := a.openStore()
	var owner string
	for owner == "" {
		if dispatchedPTR(gh) {
			owner = stepLeaseOwner(t, pg, "ptr")
		}
		if a.ctx.Err() != nil {
			t.Fatal("the PTR workflow was never dispatched and leased")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := ownerPID(t, owner)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill replica %s: %v", owner, err)
	}
	runID := runIDPattern.FindString(fmt.Sprint(fake.Messages(ch.ID)))
	var reattachedAt time.Time
	for reattachedAt.IsZero() {
		events, err := st.Events(a.ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.StepID == "ptr" && ev.Kind == runbook.EventNote && strings.Contains(ev.Text, "re-attaching") {
				reattachedAt = time.Now()
			}
		}
		if a.ctx.Err() != nil {
			t.Fatal("no replica re-attached the PTR step")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failover := reattachedAt.Sub(killedAt)
	gh.Clock().Advance(2 * time.Hour) // the PTR workflow run completes
	a.stepMessage(ch.ID, steps["ptr"], "done", "")
	doneAt := time.Now()
	if failover > 2*replicaLease+time.Second {
		t.Errorf("re-attached %s after the kill, want within the lease (%s) and one renewal period", failover, replicaLease)
	}
	if n := fake.LiveConnections(); n != 1 {
		t.Errorf("%d sockets open after the kill, want the survivor's", n)
	}

	for _, id := range []string{"backup-ptr", "inspect-ptr"} {
		approve(id)
		a.stepMessage(ch.ID, steps[id], "done", "")
	}
	restore := a.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "")
	a.click(lead, restore, "step.approve")
	restore = a.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "1 of 2")
	a.click(platform1, restore, "step.approve")
	a.stepMessage(ch.ID, steps["restore-live"], "done", "")
	for _, id := range []string{"scale-up", "check-app", "confirm-data", "disable-maintenance", "unfreeze-merges", "delete-ptr"} {
		approve(id)
		a.stepMessage(ch.ID, steps[id], "done", "")
	}
	a.message(ch.ID, "finished")

	// Every step claimed once: one step.running event each, and attempt 1.
	events, err := st.Events(a.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]int{}
	for _, ev := range events {
		if ev.Kind == runbook.EventStepRunning {
			running[ev.StepID]++
		}
	}
	stored, err := st.Steps(a.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stored {
		if running[s.StepID] > 1 || s.Attempt > 1 {
			t.Errorf("step %s: claimed %d times, attempt %d", s.StepID, running[s.StepID], s.Attempt)
		}
	}
	sent := checkFaultRun(t, a, gh, runID)

	// Every step's message, the panel and the stakeholder notice posted
	// once: one replica sends each outbox message.
	posts := map[string]int{}
	for _, m := range fake.Messages(ch.ID) {
		title, _, _ := strings.Cut(m.Text, ":")
		posts[title]++
	}
	for title, n := range posts {
		if n > 1 {
			t.Errorf("%q posted %d times", title, n)
		}
	}
	stake := map[string]int{}
	for _, m := range fake.Messages(stakeChan) {
		if stake[m.Text]++; stake[m.Text] > 1 {
			t.Errorf("posted to the stakeholders %d times: %.200s", stake[m.Text], m.Text)
		}
	}
	if len(stake) == 0 {
		t.Error("nothing reached the stakeholders")
	}

	// Each click delivered twice was acted on once: dropped by the replica
	// that had it (from memory) or by the other (from the store).
	logs := a.logs.String()
	sameReplica := strings.Count(logs, "redelivered envelope dropped")
	otherReplica := strings.Count(logs, "envelope acted on before a restart; redelivery dropped")
	if twice := (redelivered + 1) / 2; sameReplica+otherReplica != twice {
		t.Errorf("%d redeliveries dropped (%d by the same replica, %d by the other), want %d", sameReplica+otherReplica, sameReplica, otherReplica, twice)
	}
	t.Logf("failover: replica %s killed with SIGKILL mid-workflow; the other re-attached the PTR step after %s (lease %s) and it was done %s after the kill; %d clicks delivered twice, dropped by the same replica %d times and by the other %d times; %d posts, each once",
		owner, failover.Round(time.Millisecond), replicaLease, doneAt.Sub(killedAt).Round(time.Millisecond), (redelivered+1)/2, sameReplica, otherReplica, sent)
}

// dispatchedPTR reports whether the PTR workflow has been dispatched.
func dispatchedPTR(gh *githubtest.Server) bool {
	for _, d := range gh.Dispatches() {
		if d.Workflow == "postgres-ptr.yml" {
			return true
		}
	}
	return false
}

// stepLeaseOwner reads who holds a step's lease ("" if nobody).
func stepLeaseOwner(t *testing.T, pg, stepID string) string {
	t.Helper()
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var owner string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, `SELECT lease_owner FROM steps WHERE step_id = $1 AND state = 'running'`, stepID).Scan(&owner); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return owner
}

// ownerPID is the process id in a lease owner (host-pid-random).
func ownerPID(t *testing.T, owner string) int {
	t.Helper()
	parts := strings.Split(owner, "-")
	if len(parts) < 3 {
		t.Fatalf("lease owner %q is not host-pid-random", owner)
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		t.Fatalf("lease owner %q: %v", owner, err)
	}
	return pid
}
