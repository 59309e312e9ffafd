package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
)

// faultToken is the GitHub token of the fault test; no log line or Slack
// message may show it.
const faultToken = "ghp_drbotfaulttest0123456789"

// startFaultServe starts `drbot serve` with the real GitHub adapter against
// githubtest (everything else simulated) on a fake Slack, both injecting
// faults drawn from seed.
func startFaultServe(t *testing.T, seed uint64) (*served, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t, githubtest.Config{Token: faultToken})
	gh.SetReviewCount(liveRepo, "main", 1)
	for _, file := range []string{"maintenance.yml", "database-backup.yml", "postgres-ptr.yml", "postgres-restore.yml"} {
		gh.SetWorkflow(liveRepo, file, githubtest.Workflow{Conclusion: "success"})
	}
	// 20 % of requests answered 502, half of those after the request was
	// handled (a dispatch that did start a run, its answer lost), and 2 %
	// hit a secondary rate limit (Retry-After: 1).
	gh.SetFaults(githubtest.Faults{Seed: seed, ServerErrors: 0.2, Handled: 0.5, RateLimits: 0.02, RetryAfter: time.Second})

	fake := newFakeSlack(slacktest.WithPingInterval(time.Second))
	// A quarter of Slack's writes answered 429 (Retry-After: 1, Slack's
	// smallest), and 5 % carried out with the answer lost (HTTP 503).
	fake.SetFaults(slacktest.Faults{Seed: int64(seed), RateLimited: 0.25, RetryAfter: time.Second, Lost: 0.05})

	cfg := strings.Replace(string(examples.Config), "poll_interval: 10s", "poll_interval: 20ms\n  dispatch_search: 300ms", 1)
	if cfg == string(examples.Config) {
		t.Fatal("the example config no longer sets github.poll_interval: 10s")
	}
	s := newServed(t, fake, []byte(cfg), 120*time.Second, map[string]string{"GITHUB_TOKEN": faultToken, "GITHUB_API_URL": gh.URL()})
	relaunch(s)
	return s, gh
}

// relaunch starts drbot serve again on the same database, as a process of
// its own that s.stop kills with SIGKILL.
func relaunch(s *served) {
	s.t.Helper()
	launchProcess(s, drbotBinary(s.t))
}

// drbotBinary builds drbot once per test binary, for tests that kill it.
var drbotBinary = func() func(t *testing.T) string {
	var (
		once sync.Once
		bin  string
		err  error
		out  []byte
	)
	return func(t *testing.T) string {
		t.Helper()
		once.Do(func() {
			dir, derr := os.MkdirTemp("", "drbot-bin-")
			if derr != nil {
				err = derr
				return
			}
			bin = filepath.Join(dir, "drbot")
			out, err = exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		})
		if err != nil {
			t.Fatalf("build drbot: %v\n%s", err, out)
		}
		return bin
	}
}()

// launchProcess runs `drbot serve --simulate=kubernetes,azure,http` as a
// process of its own; s.stop kills it with SIGKILL (no cleanup, no goodbye),
// as a crashed node would.
func launchProcess(s *served, bin string) {
	s.t.Helper()
	before := s.slack.Connections()
	cmd := exec.Command(bin, "serve", "--simulate=kubernetes,azure,http")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.stop = func() {
		s.stop = nil
		_ = cmd.Process.Kill()
		<-exited
	}
	waitConnected(s, before, exited)
}

// drop closes the socket and waits for drbot to connect again.
func (s *served) drop() {
	s.t.Helper()
	before := s.slack.Connections()
	s.slack.Drop()
	for s.slack.Connections() == before {
		select {
		case <-s.ctx.Done():
			s.t.Fatal("drbot did not reconnect after the socket dropped")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// afterCrash waits for a step clicked just before a SIGKILL to finish. A
// click the killed process acked but never acted on is lost (Slack does not
// redeliver an acked envelope); the restarted drbot gives the buttons back
// and the person clicks again, which afterCrash reports.
func (s *served) afterCrash(channel string, st step, user string) (clickedAgain bool) {
	s.t.Helper()
	prefix := fmt.Sprintf("Step %d/%d %s: ", st.n, st.of, st.title)
	m, err := s.slack.WaitMessage(s.ctx, channel, func(m slacktest.Message) bool {
		return strings.Contains(m.Text, prefix+"done") || (strings.Contains(m.Text, prefix+"awaiting approval") && len(m.Buttons()) > 0)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	if strings.Contains(m.Text, prefix+"done") {
		return false
	}
	s.click(user, m, actionOf(m))
	s.stepMessage(channel, st, "done", "")
	return true
}

// TestServeScenario2UnderFaults drives scenario-2 through Slack with the
// real GitHub adapter while GitHub answers 20 % of requests with 502 (half
// of them after acting), Slack rate-limits a quarter of the writes, the
// socket drops twice and the drbot serve process is killed with SIGKILL
// five times at points drawn from the seed — from right after a click,
// before it is acted on, to the middle of the step's workflow run — and
// started again on the same database. Every workflow runs once for the step
// that dispatched it, the timeline has every event in order, and the
// approvals are restored.
func TestServeScenario2UnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute: Slack's smallest Retry-After is 1 s, and a quarter of ~250 writes get one")
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, gh := startFaultServe(t, seed)
			steps := scenarioSteps(t, "scenario-2")
			s.command(lead, general, `start scenario-2 service=itt-mentor-services env=staging restore_time="`+restoreTime()+`"`)
			ch, err := s.slack.WaitChannel(s.ctx)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{"scale-down", "freeze-merges", "enable-maintenance", "maintenance-message", "backup-flawed", "ptr", "backup-ptr", "inspect-ptr"}
			rng := rand.New(rand.NewPCG(seed, 7))
			kills := rng.Perm(len(ids))[:5]
			var delays []time.Duration
			clickedAgain := 0
			for i, id := range ids {
				if i == 2 || i == 6 {
					s.drop()
				}
				if !slices.Contains(kills, i) {
					s.approve(ch.ID, steps[id], lead)
					continue
				}
				m := s.stepMessage(ch.ID, steps[id], "awaiting approval", "")
				s.click(lead, m, actionOf(m))
				// The stop lands anywhere from before the click is acted on
				// to the middle of the step's workflow run.
				delay := time.Duration(rng.IntN(400)) * time.Millisecond
				delays = append(delays, delay)
				time.Sleep(delay)
				s.stop() // SIGKILL
				relaunch(s)
				if s.afterCrash(ch.ID, steps[id], lead) {
					clickedAgain++
				}
			}
			restore := s.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "")
			s.click(lead, restore, "step.approve")
			restore = s.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "1 of 2")
			s.click(platform1, restore, "step.approve")
			s.stepMessage(ch.ID, steps["restore-live"], "done", "")
			for _, id := range []string{"scale-up", "check-app", "confirm-data", "disable-maintenance", "unfreeze-merges", "delete-ptr"} {
				s.approve(ch.ID, steps[id], lead)
			}
			closing := s.message(ch.ID, "finished")
			runID := runIDPattern.FindString(closing.Text)
			s.stop()
			posts := checkFaultRun(t, s, gh, runID)
			found := strings.Count(s.logs.String(), "post found in Slack; not posting it again")
			t.Logf("seed %d: SIGKILLs %v after the clicks on steps %v; %d clicks lost with a killed process and made again; %d Slack posts, none shown twice (%d found in Slack instead of posted again)", seed, delays, kills, clickedAgain, posts, found)
			t.Logf("seed %d: %s; GitHub faults %v; Slack faults %v; longest wait after a dispatch with no answer %s",
				seed, time.Since(start).Round(time.Millisecond), gh.FaultCounts(), s.slack.Injected(), longestDispatchWait(t, s.logs.String()))
		})
	}
}

// checkFaultRun checks what a run under faults left behind.
func checkFaultRun(t *testing.T, s *served, gh *githubtest.Server, runID string) (posts int) {
	t.Helper()
	st := s.openStore()
	run, err := st.Run(s.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != runbook.RunDone {
		t.Errorf("run %s is %s", runID, run.State)
	}

	// Each workflow dispatched once, and its run claimed by the step whose
	// inputs it carries.
	owner := func(d githubtest.Dispatch) string {
		switch {
		case d.Workflow == "maintenance.yml" && d.Inputs["mode"] == "enable":
			return "enable-maintenance"
		case d.Workflow == "maintenance.yml":
			return "disable-maintenance"
		case d.Workflow == "database-backup.yml" && strings.Contains(d.Inputs["backup-file"], "_flawed_"):
			return "backup-flawed"
		case d.Workflow == "database-backup.yml":
			return "backup-ptr"
		case d.Workflow == "postgres-ptr.yml":
			return "ptr"
		case d.Workflow == "postgres-restore.yml":
			return "restore-live"
		}
		return "?"
	}
	perStep := map[string]int{}
	for _, d := range gh.Dispatches() {
		step := owner(d)
		perStep[step]++
		c, err := st.ClaimOf(s.ctx, fmt.Sprintf("github-run:%s:%d", strings.ToLower(liveRepo), d.RunID))
		if err != nil {
			t.Errorf("run %d of %s (%s) is claimed by no step: %v", d.RunID, d.Workflow, step, err)
			continue
		}
		if c.StepID != step || c.RunID != runID {
			t.Errorf("run %d of %s for %s was adopted by %s/%s", d.RunID, d.Workflow, step, c.RunID, c.StepID)
		}
	}
	for _, step := range []string{"enable-maintenance", "backup-flawed", "ptr", "backup-ptr", "restore-live", "disable-maintenance"} {
		if perStep[step] != 1 {
			t.Errorf("%s dispatched %d times, want 1 (all: %v)", step, perStep[step], perStep)
		}
	}
	if n, _ := gh.ReviewCount(liveRepo, "main"); n != 1 {
		t.Errorf("required approvals at the end = %d, want the remembered 1", n)
	}

	// The timeline: every stored event once, in order, although Slack lost
	// some answers and drbot was killed between posts and their records.
	events, err := st.Events(s.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	roots := 0
	var root slacktest.Message
	for _, m := range s.slack.Messages(run.Meta["channel"]) {
		if strings.Contains(m.Text, "Timeline of DR run") {
			root = m
			roots++
		}
	}
	if roots != 1 {
		t.Errorf("%d timeline roots, want 1", roots)
	}
	replies := s.slack.Replies(run.Meta["channel"], root.TS)
	for i, ev := range events {
		if i >= len(replies) {
			t.Errorf("%d of %d events reached the timeline; the first missing is %q", len(replies), len(events), ev.Text)
			break
		}
		if !strings.Contains(replies[i].Text, ev.Text) {
			t.Errorf("timeline reply %d is %q, want event %q", i+1, replies[i].Text, ev.Text)
			break
		}
	}
	if len(replies) > len(events) {
		t.Errorf("%d timeline replies for %d events", len(replies), len(events))
	}
	// Every message in every channel shown once.
	for key, n := range s.slack.PostCounts("drbot_message", "key") {
		posts += n
		switch {
		case key == "":
			t.Errorf("%d messages without drbot's key", n)
		case n > 1:
			t.Errorf("%s shown %d times", key, n)
		}
	}

	// No secret in any log line or Slack message.
	var seen []string
	for _, c := range s.slack.Channels() {
		for _, m := range s.slack.Messages(c.ID) {
			seen = append(seen, m.AllText())
			for _, r := range s.slack.Replies(c.ID, m.TS) {
				seen = append(seen, r.AllText())
			}
		}
	}
	for _, e := range s.slack.Ephemerals() {
		seen = append(seen, e.Text)
	}
	seen = append(seen, s.logs.String())
	for _, secret := range []string{faultToken, "xoxb-e2e-test", "xapp-e2e-test"} {
		for _, text := range seen {
			if strings.Contains(text, secret) {
				t.Errorf("%q shown in: %.300s", secret, text)
			}
		}
	}
	return posts
}

// longestDispatchWait reads the logs for the longest time from a dispatch
// whose answer was lost to the step's run being known (found, or dispatched
// again).
func longestDispatchWait(t *testing.T, logs string) time.Duration {
	t.Helper()
	lost := map[string]time.Time{}
	var longest time.Duration
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			TS   string `json:"ts"`
			Msg  string `json:"msg"`
			Step string `json:"step_id"`
			Run  string `json:"run_id"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err != nil {
			continue
		}
		key := l.Run + "/" + l.Step
		switch {
		case l.Msg == "dispatch outcome unknown, looking for the run":
			if _, ok := lost[key]; !ok {
				lost[key] = at
			}
		case l.Msg == "workflow run status" || strings.HasPrefix(l.Msg, "workflow dispatched"):
			if from, ok := lost[key]; ok {
				longest = max(longest, at.Sub(from))
				delete(lost, key)
			}
		}
	}
	return longest
}
