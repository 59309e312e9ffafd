package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// People and channels of examples/drbot.yaml, which the test serves with.
const (
	lead      = "U0INCLEAD1" // approver
	comms     = "U0COMMSLD1" // responder
	platform1 = "U0PLATF001" // approver through the group S0PLATFORM
	outsider  = "U0OUTSIDE1" // nobody
	general   = "C0GENERAL1"
	stakeChan = "C0DRSTAKE1"
	devChan   = "C0DEVELOP1"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is `drbot serve --simulate` running in-process against a fake Slack.
type served struct {
	t     *testing.T
	ctx   context.Context
	slack *slacktest.Server
	db    string
	env   map[string]string
	logs  *syncBuffer
	stop  func() // stops the running server
}

// startServe starts drbot serve on a new fake Slack and database.
func startServe(t *testing.T) *served {
	t.Helper()
	s := newServed(t, newFakeSlack(), examples.Config, 60*time.Second, nil)
	s.launch()
	return s
}

// newFakeSlack is the serve tests' workspace: the general, stakeholder and
// developer channels and the platform user group.
func newFakeSlack(opts ...slacktest.Option) *slacktest.Server {
	fake := slacktest.New(opts...)
	fake.AddChannel(general, "general")
	fake.AddChannel(stakeChan, "dr-stakeholders")
	fake.AddChannel(devChan, "developers")
	// drbot was invited to them, so it can read back what it posted there.
	fake.AddMembers(stakeChan, slacktest.BotUserID)
	fake.AddMembers(devChan, slacktest.BotUserID)
	fake.SetGroup("S0PLATFORM", platform1, "U0PLATF002")
	return fake
}

// newServed is a harness for drbot serve on fake, with config written to a
// new folder beside its database and extra added to its environment; drbot
// is not started. Its cleanup stops drbot and the fake, and prints drbot's
// logs when the test failed.
func newServed(t *testing.T, fake *slacktest.Server, config []byte, timeout time.Duration, extra map[string]string) *served {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "drbot.yaml")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	s := &served{t: t, ctx: ctx, slack: fake, db: filepath.Join(dir, "drbot.db"), logs: &syncBuffer{}}
	s.env = map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-e2e-test", "SLACK_APP_TOKEN": "xapp-e2e-test", "SLACK_API_URL": fake.URL(),
		"DRBOT_CONFIG": cfg, "DRBOT_DB": s.db, "DRBOT_SIM_DELAY": "5ms",
	}
	maps.Copy(s.env, extra)
	t.Cleanup(func() {
		if s.stop != nil {
			s.stop()
		}
		cancel()
		fake.Close()
		if t.Failed() {
			t.Logf("drbot logs:\n%s", s.logs.String())
		}
	})
	return s
}

// waitConnected waits for a socket connection after the before-th, failing
// if drbot exits first.
func waitConnected[T any](s *served, before int, exited <-chan T) {
	s.t.Helper()
	for s.slack.Connections() == before {
		select {
		case v := <-exited:
			s.t.Fatalf("drbot serve exited (%v) before connecting:\n%s", v, s.logs.String())
		case <-s.ctx.Done():
			s.t.Fatalf("drbot serve never connected:\n%s", s.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// launch runs `drbot serve --simulate` until stop, and waits for it to
// connect.
func (s *served) launch() {
	s.t.Helper()
	before := s.slack.Connections()
	runCtx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(runCtx, []string{"drbot", "serve", "--simulate"}, func(k string) string { return s.env[k] },
			strings.NewReader(""), &syncBuffer{}, s.logs)
	}()
	s.stop = func() {
		s.stop = nil
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				s.t.Errorf("drbot serve exited %d", code)
			}
		case <-time.After(10 * time.Second):
			s.t.Error("drbot serve did not stop within 10s of its context ending")
		}
	}
	waitConnected(s, before, exit)
}

// command types /dr text and returns the ack's ephemeral text.
func (s *served) command(user, channel, text string) (string, slacktest.Ack) {
	s.t.Helper()
	ack, err := s.slack.SlashCommand(s.ctx, user, channel, text)
	if err != nil {
		s.t.Fatal(err)
	}
	var p struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(ack.Payload, &p)
	return p.Text, ack
}

// restoreTime is an hour ago in London time: inside the 5 min–7 day window.
func restoreTime() string {
	london, _ := time.LoadLocation("Europe/London")
	return time.Now().Add(-time.Hour).In(london).Format("2006-01-02 15:04") + " Europe/London"
}

// step is a step of a scenario as its message names it.
type step struct {
	n, of int
	title string
}

func scenarioSteps(t *testing.T, scenario string) map[string]step {
	t.Helper()
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	steps := cat[scenario].Steps
	out := map[string]step{}
	for i, s := range steps {
		out[s.ID] = step{n: i + 1, of: len(steps), title: s.Title}
	}
	return out
}

// stepMessage waits for a step's message whose text says state and whose
// blocks contain extra; a step awaiting approval must show its buttons (not
// "in progress…" while a click is handled).
func (s *served) stepMessage(channel string, st step, state, extra string) slacktest.Message {
	s.t.Helper()
	prefix := fmt.Sprintf("Step %d/%d %s: %s", st.n, st.of, st.title, state)
	m, err := s.slack.WaitMessage(s.ctx, channel, func(m slacktest.Message) bool {
		return strings.Contains(m.Text, prefix) && strings.Contains(m.AllText(), extra) &&
			(state != "awaiting approval" || len(m.Buttons()) > 0)
	})
	if err != nil {
		var texts []string
		for _, m := range s.slack.Messages(channel) {
			texts = append(texts, m.Text)
		}
		s.t.Fatalf("%v\nmessages:\n%s", err, strings.Join(texts, "\n"))
	}
	return m
}

func (s *served) click(user string, m slacktest.Message, action handlers.Action) {
	s.t.Helper()
	ack, err := s.slack.Click(s.ctx, user, m, string(action))
	if err != nil {
		s.t.Fatal(err)
	}
	if ack.Latency > 3*time.Second {
		s.t.Errorf("click acked after %s", ack.Latency)
	}
}

// view waits for the n-th view drbot opened or updated.
func (s *served) view(n int) slacktest.View {
	s.t.Helper()
	for s.ctx.Err() == nil {
		if vs := s.slack.Views(); len(vs) >= n {
			return vs[n-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("no view %d: %v", n, s.ctx.Err())
	return slacktest.View{}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *served) ephemeral(user, text string) {
	s.t.Helper()
	if _, err := s.slack.WaitEphemeral(s.ctx, user, text); err != nil {
		s.t.Fatalf("%v\nephemerals: %+v", err, s.slack.Ephemerals())
	}
}

func (s *served) message(channel, text string) slacktest.Message {
	s.t.Helper()
	m, err := s.slack.WaitMessage(s.ctx, channel, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), text) })
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// openStore reads the served database alongside the server (SQLite WAL).
func (s *served) openStore() *store.Store {
	s.t.Helper()
	st, err := store.Open(s.ctx, s.db)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = st.Close() })
	return st
}

var runIDPattern = regexp.MustCompile(`dr-\d{8}-\d{4}-[0-9a-f]{4}`)

// TestServeScenario2EndToEnd drives scenario-2 from /dr start to its last
// step through the buttons, as Slack sends them, with every adapter
// simulated.
func TestServeScenario2EndToEnd(t *testing.T) {
	s := startServe(t)
	steps := scenarioSteps(t, "scenario-2")

	text, ack := s.command(lead, general, `start scenario-2 service=itt-mentor-services env=staging comms=<@`+comms+`|comms> restore_time="`+restoreTime()+`"`)
	if !strings.Contains(text, "Starting scenario-2") || ack.Latency > 3*time.Second {
		t.Fatalf("ack %q after %s", text, ack.Latency)
	}
	s.ephemeral(lead, "Started run dr-")
	ch, err := s.slack.WaitChannel(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "dr-" + time.Now().UTC().Format("20060102") + "-itt-mentor-services-staging"; ch.Name != want {
		t.Errorf("channel %q, want %q", ch.Name, want)
	}
	for _, u := range []string{lead, comms, platform1} {
		if !slices.Contains(ch.Members, u) {
			t.Errorf("%s was not invited (members %v)", u, ch.Members)
		}
	}
	if !strings.Contains(ch.Topic, "itt-mentor-services/staging") || !strings.Contains(ch.Topic, "comms lead <@"+comms+">") {
		t.Errorf("topic %q", ch.Topic)
	}

	// Someone who is not an approver is refused, told so, and audited.
	scaleDown := s.stepMessage(ch.ID, steps["scale-down"], "awaiting approval", "")
	s.click(outsider, scaleDown, handlers.ActApprove)
	s.ephemeral(outsider, "you are not a configured approver")

	s.click(lead, scaleDown, handlers.ActApprove)
	s.stepMessage(ch.ID, steps["scale-down"], "done", "approved by <@"+lead+">")
	// The automatic steps after it: the stakeholder notice and the developer alert.
	notice := s.message(stakeChan, "DR incident: Loss of data")
	for _, want := range []string{"itt-mentor-services", "staging", "*Incident lead* <@" + lead + ">", "*Comms lead* <@" + comms + ">", "<#" + ch.ID + ">", "SIMULATED"} {
		if !strings.Contains(notice.AllText(), want) {
			t.Errorf("stakeholder notice lacks %q:\n%s", want, notice.AllText())
		}
	}
	s.message(devChan, "do not merge")

	// A double click runs the step once.
	freeze := s.stepMessage(ch.ID, steps["freeze-merges"], "awaiting approval", "")
	var wg sync.WaitGroup
	for _, u := range []string{lead, platform1} {
		wg.Go(func() { s.click(u, freeze, handlers.ActApprove) })
	}
	wg.Wait()
	s.stepMessage(ch.ID, steps["freeze-merges"], "done", "")

	for _, id := range []string{"enable-maintenance", "maintenance-message", "backup-flawed", "ptr", "backup-ptr", "inspect-ptr"} {
		s.approve(ch.ID, steps[id], lead)
	}

	// The destructive restore needs two different people.
	restore := s.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "")
	s.click(lead, restore, handlers.ActApprove)
	restore = s.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "1 of 2")
	s.click(lead, restore, handlers.ActApprove)
	s.ephemeral(lead, "it needs a second person")
	restore = s.stepMessage(ch.ID, steps["restore-live"], "awaiting approval", "1 of 2")
	s.click(platform1, restore, handlers.ActApprove)
	s.stepMessage(ch.ID, steps["restore-live"], "done", "<@"+lead+"> + <@"+platform1+">")

	for _, id := range []string{"scale-up", "check-app", "confirm-data", "disable-maintenance", "unfreeze-merges", "delete-ptr"} {
		s.approve(ch.ID, steps[id], lead)
	}

	closing := s.message(ch.ID, "finished")
	for _, want := range []string{"0 failed", "time to recover", "Schedule an incident retro meeting", "SIMULATED"} {
		if !strings.Contains(closing.AllText(), want) {
			t.Errorf("closing message lacks %q", want)
		}
	}
	runID := runIDPattern.FindString(closing.Text)
	// The incident report is uploaded into the channel (files upload v2)
	// and the stakeholders' closing message links it.
	report, err := s.slack.WaitFile(s.ctx, runID+"-report.md")
	if err != nil {
		t.Fatal(err)
	}
	if report.Channel != ch.ID || !strings.Contains(string(report.Content), "| Time to recover | **") {
		t.Errorf("report in %s:\n%s", report.Channel, report.Content)
	}
	s.message(stakeChan, runID+"-report.md")

	st := s.openStore()
	run, err := st.Run(s.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != runbook.RunDone {
		t.Errorf("run %s is %s", runID, run.State)
	}
	stored, err := st.Steps(s.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range stored {
		want := runbook.Done
		if ss.StepID == "retro" || ss.StepID == "incident-report" || ss.StepID == "follow-up-cards" {
			want = runbook.Skipped // dr_test=false
		}
		if ss.State != want {
			t.Errorf("step %s is %s, want %s", ss.StepID, ss.State, want)
		}
	}

	// The panel is one message, pinned, updated in place.
	msgs := s.slack.Messages(ch.ID)
	panel := msgs[0]
	if !strings.Contains(panel.Text, runID+" (scenario-2) for itt-mentor-services/staging: done") {
		t.Errorf("panel now says %q", panel.Text)
	}
	if panel.Updates < 10 || !slices.Contains(s.slack.Pins(ch.ID), panel.TS) {
		t.Errorf("panel updated %d times, pins %v", panel.Updates, s.slack.Pins(ch.ID))
	}
	panels := 0
	for _, m := range msgs {
		if strings.Contains(m.Text, "for itt-mentor-services/staging: ") {
			panels++
		}
	}
	if panels != 1 {
		t.Errorf("%d panels in the channel", panels)
	}

	// The timeline: one reply per stored event, in order, including the
	// refusals and exactly one run of the double-clicked step.
	events, err := st.Events(s.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	root := msgs[1]
	replies, err := s.slack.WaitReplies(s.ctx, ch.ID, root.TS, len(events))
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != len(events) {
		t.Fatalf("%d timeline replies for %d events", len(replies), len(events))
	}
	refusals, freezeRuns := 0, 0
	for i, ev := range events {
		if !strings.Contains(replies[i].Text, string(ev.Kind)) || !strings.Contains(replies[i].Text, ev.Text) {
			t.Errorf("reply %d is %q, want event %s %q", i, replies[i].Text, ev.Kind, ev.Text)
		}
		if !strings.Contains(replies[i].AllText(), " UTC (") {
			t.Errorf("reply %d lacks UTC and local time: %q", i, replies[i].AllText())
		}
		if ev.Kind == runbook.EventRefused {
			refusals++
		}
		if ev.Kind == runbook.EventStepRunning && ev.StepID == "freeze-merges" {
			freezeRuns++
		}
	}
	if freezeRuns != 1 {
		t.Errorf("the double-clicked step ran %d times", freezeRuns)
	}
	// The outsider, the same approver twice, and possibly the second of the
	// double click (when it came before the first had claimed the step it is
	// refused as stale, after it as already running or done).
	if refusals < 2 {
		t.Errorf("%d refusals on the timeline", refusals)
	}
	if !strings.Contains(strings.Join(texts(replies), "\n"), "refused: you are not a configured approver") {
		t.Error("the outsider's refusal is not on the timeline")
	}
}

// TestServeScenario1EndToEnd drives scenario-1 (loss of the database
// server) from /dr start through every button to the closing notice.
func TestServeScenario1EndToEnd(t *testing.T) {
	s := startServe(t)
	steps := scenarioSteps(t, "scenario-1")
	text, _ := s.command(lead, general, "start scenario-1 service=itt-mentor-services env=staging dr_test=true")
	if !strings.Contains(text, "Starting scenario-1") {
		t.Fatalf("ack %q", text)
	}
	ch, err := s.slack.WaitChannel(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.message(stakeChan, "P2 DR test: Loss of database server") // dr_test=true declares a DR test
	for _, id := range []string{"freeze-merges", "enable-maintenance", "maintenance-message", "deploy-branch", "deploy"} {
		s.approve(ch.ID, steps[id], lead)
	}
	// wait-server runs by itself. At find-backup the lead chooses the
	// second-newest backup from the list in a modal instead of the newest.
	find := s.stepMessage(ch.ID, steps["find-backup"], "awaiting approval", "")
	s.click(lead, find, handlers.ActChoose)
	view := s.view(1)
	second := "nightly_" + time.Now().UTC().Add(-48*time.Hour).Format("2006-01-02") + ".sql.gz"
	if !strings.Contains(string(mustJSON(t, view.Body)), second) {
		t.Fatalf("choice form lacks %s: %s", second, mustJSON(t, view.Body))
	}
	if _, err := s.slack.SubmitView(s.ctx, lead, view.ID, map[string]map[string]any{"choice": {"value": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": second}}}}); err != nil {
		t.Fatal(err)
	}
	s.stepMessage(ch.ID, steps["find-backup"], "done", "chose "+second)
	// The restore needs two people, and restores the chosen backup.
	restore := s.stepMessage(ch.ID, steps["restore"], "awaiting approval", "backup-file: "+second)
	s.click(lead, restore, handlers.ActApprove)
	restore = s.stepMessage(ch.ID, steps["restore"], "awaiting approval", "1 of 2")
	s.click(platform1, restore, handlers.ActApprove)
	s.stepMessage(ch.ID, steps["restore"], "done", "")
	for _, id := range []string{"check-app", "confirm-data", "disable-maintenance", "unfreeze-merges", "retro", "incident-report", "follow-up-cards"} {
		s.approve(ch.ID, steps[id], lead)
	}
	closing := s.message(ch.ID, "finished")
	if !strings.Contains(closing.AllText(), "22 done, 0 skipped, 0 failed") {
		t.Errorf("closing message: %s", closing.AllText())
	}
	s.message(stakeChan, "finished")
	run, err := s.openStore().Run(s.ctx, runIDPattern.FindString(closing.Text))
	if err != nil || run.State != runbook.RunDone {
		t.Fatalf("run %v: %v", run, err)
	}
}

// approve waits for a step's Approve (or Mark done) and clicks it, then waits
// for the step to be done.
func (s *served) approve(channel string, st step, user string) {
	s.t.Helper()
	m := s.stepMessage(channel, st, "awaiting approval", "")
	s.click(user, m, actionOf(m))
	s.stepMessage(channel, st, "done", "")
}

// actionOf is the button that approves a step's message: Mark done for a
// manual step, else Approve.
func actionOf(m slacktest.Message) handlers.Action {
	if _, ok := m.Button(string(handlers.ActDone)); ok {
		return handlers.ActDone
	}
	return handlers.ActApprove
}

func texts(ms []slacktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// TestServeRefusesBadCommandsInTheAck checks that mistakes are answered in
// the ack, within Slack's 3 seconds, and create nothing.
func TestServeRefusesBadCommandsInTheAck(t *testing.T) {
	s := startServe(t)
	valid := `restore_time="` + restoreTime() + `"`
	tests := []struct {
		name, user, text, want string
	}{
		{"unknown scenario", lead, "start scenario-9 service=itt-mentor-services env=staging " + valid, `unknown scenario "scenario-9"; known: scenario-1, scenario-2`},
		{"unknown service", lead, "start scenario-2 service=itt-mentors env=staging " + valid, `Unknown service "itt-mentors". Configured services:`},
		{"unknown env", lead, "start scenario-2 service=itt-mentor-services env=qa " + valid, `has no environment "qa"`},
		{"time without zone", lead, `start scenario-2 service=itt-mentor-services env=staging restore_time="2026-11-26 09:30"`, "has no time zone"},
		{"time out of window", lead, `start scenario-2 service=itt-mentor-services env=staging restore_time="2020-01-01 09:30 UTC"`, "only reaches back 7d0h"},
		{"not allowed", outsider, "start scenario-2 service=itt-mentor-services env=staging " + valid, "not allowed to start a run"},
		{"PTR copy named as the live server", lead, "start scenario-2 service=itt-mentor-services env=staging ptr_server=s189t01-ittms-stg-pg " + valid,
			`input ptr_server: "s189t01-ittms-stg-pg" is the live server of itt-mentor-services/staging`},
		{"shell in the PTR name", lead, `start scenario-2 service=itt-mentor-services env=staging ptr_server="x; rm -rf /" ` + valid,
			`is not a flexible server name`},
		{"unclosed quote", lead, `start scenario-2 restore_time="2026`, "a quote is not closed"},
		{"unknown verb", lead, "begin", `unknown command "begin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ack := s.command(tt.user, general, tt.text)
			if !strings.Contains(text, tt.want) {
				t.Errorf("ack %q, want %q", text, tt.want)
			}
			if ack.Latency > 3*time.Second {
				t.Errorf("acked after %s", ack.Latency)
			}
		})
	}
	for _, c := range s.slack.Channels() {
		if c.Created {
			t.Errorf("channel %s was created", c.Name)
		}
	}
	if runs, err := s.openStore().Runs(s.ctx, false, 0); err != nil || len(runs) != 0 {
		t.Errorf("runs %v, %v", runs, err)
	}
}

// TestServeResumesAfterRestart stops drbot mid-run and starts it again on
// the same database: the buttons posted before still work, and the panel and
// the timeline go on in the same messages.
func TestServeResumesAfterRestart(t *testing.T) {
	s := startServe(t)
	steps := scenarioSteps(t, "scenario-2")
	s.command(lead, general, `start scenario-2 service=itt-mentor-services env=staging restore_time="`+restoreTime()+`"`)
	s.ephemeral(lead, "Started run dr-")
	ch, err := s.slack.WaitChannel(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.approve(ch.ID, steps["scale-down"], lead)
	freeze := s.stepMessage(ch.ID, steps["freeze-merges"], "awaiting approval", "")

	s.stop()
	s.launch()

	s.click(platform1, freeze, handlers.ActApprove)
	s.stepMessage(ch.ID, steps["freeze-merges"], "done", "approved by <@"+platform1+">")
	s.stepMessage(ch.ID, steps["enable-maintenance"], "awaiting approval", "")
	msgs := s.slack.Messages(ch.ID)
	roots, panels := 0, 0
	for _, m := range msgs {
		if strings.Contains(m.Text, "Timeline of DR run") {
			roots++
		}
		if strings.Contains(m.Text, "for itt-mentor-services/staging: ") {
			panels++
		}
	}
	if roots != 1 || panels != 1 {
		t.Errorf("%d timeline roots and %d panels after a restart", roots, panels)
	}
	if !strings.Contains(msgs[0].Text, "5 of 27 steps done") {
		t.Errorf("panel after restart: %q", msgs[0].Text)
	}
}
