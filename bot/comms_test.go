package bot_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// settableClock is the injected clock of the reminder tests: it stands
// still until the test moves it.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newGitHub is the real GitHub adapter on the GitHub fake: follow-ups
// become issues there.
func newGitHub(t *testing.T) (*github.Client, *githubtest.Server) {
	t.Helper()
	srv := githubtest.New(t, githubtest.Config{Token: "ghp_comms"})
	c, err := github.New(github.Options{BaseURL: srv.URL(), Token: "ghp_comms", HTTPClient: srv.Client(), Clock: srv.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// startWith starts scenario-2 with extra /dr start arguments and returns
// the incident channel.
func (h *harness) startWith(args string) slacktest.Channel {
	h.t.Helper()
	ack := h.command(lead, general, scenario2+restoreTime()+" "+args)
	if !strings.Contains(ackText(ack), "Starting scenario-2") {
		h.t.Fatalf("ack %s", ack.Payload)
	}
	if _, err := h.slack.WaitEphemeral(h.ctx, lead, "Started run dr-"); err != nil {
		h.t.Fatalf("%v; replies: %+v", err, h.slack.Ephemerals())
	}
	ch, err := h.slack.WaitChannel(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return ch
}

// waitText waits for a top-level message of channel whose text or blocks
// contain text.
func (h *harness) waitText(channel, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx, channel, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), text) })
	if err != nil {
		h.t.Fatalf("%v (messages: %v)", err, texts(h.slack.Messages(channel)))
	}
	return m
}

// waitView waits for the n-th view opened.
func (h *harness) waitView(n int) slacktest.View {
	h.t.Helper()
	var v slacktest.View
	if err := pollViews(h, n, &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func textValue(s string) map[string]any {
	return map[string]any{"value": map[string]any{"type": "plain_text_input", "value": s}}
}

// TestDeclarationReachesTopicPanelAndNotice starts a P1 without a comms lead
// from the command line: the declaration is on the topic, the panel and the
// notice; the notice mentions the P1 contacts and tells the stakeholders
// nothing meant for the team; the comms lead is asked for in the incident
// channel, named with /dr roles, and the stage changes are posted.
func TestDeclarationReachesTopicPanelAndNotice(t *testing.T) {
	h := newHarness(t)
	ch := h.startWith(`priority=P1 tech=<@` + platform1 + `> description="Orders since 09:00 are lost"`)
	for _, want := range []string{"P1 DR incident", "tech lead <@" + platform1 + ">", "Orders since 09:00 are lost", "incident lead <@" + lead + ">"} {
		if !strings.Contains(ch.Topic, want) {
			t.Errorf("topic %q lacks %q", ch.Topic, want)
		}
	}
	panel := h.waitText(ch.ID, "stage *investigating*")
	for _, want := range []string{"*P1 incident*", "stage *investigating*", "*Tech lead* <@" + platform1 + ">", "*Comms lead* to be named", "Orders since 09:00 are lost"} {
		if !strings.Contains(panel.AllText(), want) {
			t.Errorf("panel lacks %q:\n%s", want, panel.AllText())
		}
	}
	ask := h.waitText(ch.ID, "no comms lead is named")
	if !strings.Contains(ask.AllText(), "<@"+lead+">") || !strings.Contains(ask.AllText(), "/dr roles comms=@someone") {
		t.Errorf("comms lead request: %s", ask.AllText())
	}

	step := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	h.click(lead, step, handlers.ActApprove)
	notice := h.waitText(stakeChan, "DR incident: Loss of data")
	all := notice.AllText()
	for _, want := range []string{"P1 DR incident", "<!subteam^S0P1ONCALL>", "*Priority* P1", "*Comms lead* to be named", "*Tech lead* <@" + platform1 + ">", "Orders since 09:00 are lost", "<#" + ch.ID + ">"} {
		if !strings.Contains(all, want) {
			t.Errorf("notice lacks %q:\n%s", want, all)
		}
	}
	for _, instruction := range []string{"/dr", "`/", "comms=", "name one"} {
		if strings.Contains(all, instruction) {
			t.Errorf("the stakeholder notice holds an instruction for the team (%q):\n%s", instruction, all)
		}
	}
	// The first recovery step started: the stakeholders hear the stage,
	// and the channel's topic shows it.
	h.waitText(stakeChan, "investigating → recovering")
	waitTopic(t, h, ch.ID, "stage recovering")

	// The tech lead named now is in no responder group: only /dr roles invites him.
	if c := channelByID(h, ch.ID); contains(c.Members, "U0TECHLD01") {
		t.Fatal("U0TECHLD01 is in the channel already")
	}
	h.command(lead, ch.ID, "roles comms=<@"+comms+"> tech=<@U0TECHLD01>")
	if _, err := h.slack.WaitEphemeral(h.ctx, lead, "Named the leads"); err != nil {
		t.Fatal(err)
	}
	if c := channelByID(h, ch.ID); !contains(c.Members, "U0TECHLD01") {
		t.Errorf("the tech lead named later was not invited: %v", c.Members)
	}
	if _, err := h.slack.WaitMessage(h.ctx, ch.ID, func(m slacktest.Message) bool {
		return m.TS == panel.TS && strings.Contains(m.AllText(), "*Comms lead* <@"+comms+">")
	}); err != nil {
		t.Fatal(err)
	}

	// The comms lead sets the stage from the panel; the stakeholders and
	// the timeline hear it.
	panel, _ = h.slack.Message(ch.ID, panel.TS)
	if _, err := h.slack.Select(h.ctx, comms, panel, string(handlers.ActStage), "monitoring"); err != nil {
		t.Fatal(err)
	}
	h.waitText(stakeChan, "recovering → monitoring (set by hand)")
	waitTopic(t, h, ch.ID, "stage monitoring", "comms lead <@"+comms+">", "tech lead <@U0TECHLD01>")
	run := h.runs()[0]
	events, err := h.store.Events(h.ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, ev := range events {
		if ev.Kind == runbook.EventStage {
			stages = append(stages, ev.Text)
		}
	}
	if len(stages) != 2 || run.Incident.Stage != runbook.StageMonitoring {
		t.Errorf("stage events %v, stage %s", stages, run.Incident.Stage)
	}
}

// TestReminderPostsAPrefilledUpdate moves the injected clock past a P1's
// 30-minute cadence: the comms lead is reminded in the incident channel,
// the Post update button opens a form drafted with the stage, the steps
// done and the next step, and submitting it reaches the stakeholders and
// the timeline and restarts the cadence.
func TestReminderPostsAPrefilledUpdate(t *testing.T) {
	clock := &settableClock{now: time.Now().UTC()}
	h := newHarnessConfig(t, harnessConfig{clock: clock})
	ch := h.startWith(`priority=P1 comms=<@` + comms + `>`)
	step := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	h.click(lead, step, handlers.ActApprove)
	h.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval")

	clock.Add(29 * time.Minute)
	if n, err := h.eng.RemindDue(h.ctx); n != 0 || err != nil {
		t.Fatalf("reminded %d (%v) before the update was due", n, err)
	}
	clock.Add(2 * time.Minute)
	if n, err := h.eng.RemindDue(h.ctx); n != 1 || err != nil {
		t.Fatalf("reminded %d (%v) when due", n, err)
	}
	reminder := h.waitText(ch.ID, "a stakeholder update is due")
	if !strings.Contains(reminder.AllText(), "<@"+comms+">") {
		t.Errorf("the reminder does not mention the comms lead: %s", reminder.AllText())
	}
	h.click(comms, reminder, handlers.ActPostUpdate)
	view := h.waitView(1)
	body, _ := json.Marshal(view.Body)
	for _, want := range []string{"Stage: recovering.", "Stop the web app and workers", "Next: Set required PR approvers to 6."} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the update form is not pre-filled with %q: %s", want, body)
		}
	}
	if _, err := h.slack.SubmitView(h.ctx, comms, view.ID, map[string]map[string]any{"body": textValue("Stage: recovering. The app is stopped; the restore comes next.")}); err != nil {
		t.Fatal(err)
	}
	h.waitText(stakeChan, "The app is stopped; the restore comes next.")
	// The update is recorded after it is queued for the stakeholders.
	for h.ctx.Err() == nil && !h.runs()[0].Incident.LastUpdate.Equal(clock.Now()) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.runs()[0].Incident.LastUpdate; !got.Equal(clock.Now()) {
		t.Errorf("last update %s, want %s", got, clock.Now())
	}
	clock.Add(10 * time.Minute)
	if n, _ := h.eng.RemindDue(h.ctx); n != 0 {
		t.Error("reminded again right after an update")
	}
}

// TestReportDrillAndFollowUpAtTheEnd ends a DR test: the incident report is
// uploaded with files upload v2 and linked from the closing message to the
// stakeholders; the closing message records the test's result and raises a
// follow-up issue, linked on the timeline.
func TestReportDrillAndFollowUpAtTheEnd(t *testing.T) {
	gh, ghFake := newGitHub(t)
	h := newHarnessConfig(t, harnessConfig{followUps: gh})
	ch := h.startWith(`kind=test comms=<@` + comms + `>`)
	h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	panel := h.slack.Messages(ch.ID)[0]
	h.click(lead, panel, handlers.ActAbort)

	f, err := h.slack.WaitFile(h.ctx, "-report.md")
	if err != nil {
		t.Fatal(err)
	}
	if f.Channel != ch.ID || !strings.Contains(string(f.Content), "# Incident report: Loss of data") {
		t.Errorf("report %s in %s:\n%s", f.Name, f.Channel, f.Content)
	}
	for _, m := range []string{"files.getUploadURLExternal", "files.completeUploadExternal"} {
		if len(h.slack.Calls(m)) == 0 {
			t.Errorf("%s was not called", m)
		}
	}
	run := h.runs()[0]
	events, err := h.store.Events(h.ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if !strings.Contains(string(f.Content), string(ev.Kind)) {
			t.Errorf("the report lacks event %d %s", ev.Seq, ev.Kind)
		}
	}
	linked := h.waitText(stakeChan, "-report.md")
	if !strings.Contains(linked.AllText(), "was aborted") || !strings.Contains(linked.AllText(), f.ID) {
		t.Errorf("stakeholder closing message does not link the report: %s", linked.AllText())
	}

	closing := h.waitText(ch.ID, "DR test result")
	h.click(comms, closing, handlers.ActDrillPass)
	view := h.waitView(1)
	if _, err := h.slack.SubmitView(h.ctx, comms, view.ID, map[string]map[string]any{"body": textValue("restored in time")}); err != nil {
		t.Fatal(err)
	}
	h.waitText(ch.ID, "DR test result: *pass*")
	if d := h.runs()[0].Incident.Drill; d == nil || !d.Passed || d.Note != "restored in time" || d.By != comms {
		t.Errorf("drill result %+v", d)
	}

	closing, _ = h.slack.Message(ch.ID, closing.TS)
	h.click(comms, closing, handlers.ActFollowUp)
	view = h.waitView(2)
	if _, err := h.slack.SubmitView(h.ctx, comms, view.ID, map[string]map[string]any{
		"title": textValue("Script the data check"), "body": textValue("It took 20 minutes by hand.")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitEphemeral(h.ctx, comms, "issues/1"); err != nil {
		t.Fatal(err)
	}
	issues := ghFake.Issues()
	if len(issues) != 1 || issues[0].Repo != "DFE-Digital/itt-mentor-services" || issues[0].Title != "Script the data check" ||
		!strings.HasPrefix(issues[0].Body, "It took 20 minutes by hand.") || !strings.Contains(issues[0].Body, slacktest.TeamURL+"archives/"+ch.ID+"/p") {
		t.Errorf("issues on the GitHub fake %+v", issues)
	}
	events, _ = h.store.Events(h.ctx, run.ID)
	last := events[len(events)-1]
	if last.Kind != runbook.EventFollowUp || len(last.Links) != 1 || last.Links[0].URL != ghFake.WebURL()+"DFE-Digital/itt-mentor-services/issues/1" {
		t.Errorf("last event %+v", last)
	}

	// /dr report uploads a fresh one.
	h.command(lead, ch.ID, "report")
	if err := pollFiles(h, 2); err != nil {
		t.Fatal(err)
	}
}

func pollFiles(h *harness, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		done := 0
		for _, f := range h.slack.Files() {
			if f.Completed {
				done++
			}
		}
		if done >= n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return context.DeadlineExceeded
}

// TestReminderSurvivesARestart: the update falls due while drbot is down;
// the next process reminds of it once (it is stored, not a timer), its
// button posts the update, and an ended run is not reminded of.
func TestReminderSurvivesARestart(t *testing.T) {
	clock := &settableClock{now: time.Now().UTC()}
	r := newRestartableAt(t, clock)
	ch := r.startWith(`comms=<@` + comms + `>`)
	r.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")

	r.stop()
	clock.Add(61 * time.Minute) // P2: every 60 minutes
	r.launch()
	if n, err := r.eng.RemindDue(r.ctx); n != 1 || err != nil {
		t.Fatalf("reminded %d (%v) after the restart", n, err)
	}
	if n, _ := r.eng.RemindDue(r.ctx); n != 0 {
		t.Errorf("reminded %d more times", n)
	}
	reminder := r.waitText(ch.ID, "a stakeholder update is due")
	r.click(comms, reminder, handlers.ActPostUpdate)
	view := r.waitView(1)
	if _, err := r.slack.SubmitView(r.ctx, comms, view.ID, map[string]map[string]any{"body": textValue("Still investigating.")}); err != nil {
		t.Fatal(err)
	}
	r.waitText(stakeChan, "Still investigating.")

	panel := r.slack.Messages(ch.ID)[0]
	r.click(lead, panel, handlers.ActAbort)
	r.waitText(ch.ID, "was aborted")
	clock.Add(3 * time.Hour)
	if n, _ := r.eng.RemindDue(r.ctx); n != 0 {
		t.Errorf("an aborted run was reminded of %d times", n)
	}
}

// TestStartFormDeclaration fills the playbook's fields in the start form:
// they reach the topic, the panel and the stakeholder notice.
func TestStartFormDeclaration(t *testing.T) {
	h := newHarness(t)
	h.command(lead, general, "start scenario-2 service=itt-mentor-services env=staging")
	view := h.waitView(1)
	raw, _ := json.Marshal(view.Body)
	for _, field := range []string{handlers.FieldPriority, handlers.FieldKind, handlers.FieldTech, handlers.FieldDescription} {
		if !strings.Contains(string(raw), `"block_id":"`+field+`"`) {
			t.Errorf("the form has no %s field", field)
		}
	}
	ack, err := h.slack.SubmitView(h.ctx, lead, view.ID, map[string]map[string]any{
		handlers.FieldScenario:    {"form.scenario": selected("scenario-2")},
		handlers.FieldTarget:      {"value": selected("itt-mentor-services/staging")},
		handlers.FieldComms:       {"value": map[string]any{"type": "users_select", "selected_user": comms}},
		handlers.FieldTech:        {"value": map[string]any{"type": "users_select", "selected_user": platform1}},
		handlers.FieldPriority:    {"value": selected("P1")},
		handlers.FieldKind:        {"value": selected("test")},
		handlers.FieldDescription: textValue("Yearly DR test of the restore"),
		"input.restore_time":      {"value": map[string]any{"type": "datetimepicker", "selected_date_time": time.Now().Add(-time.Hour).Unix()}},
	})
	if err != nil || !strings.Contains(string(ack.Payload), `"response_action":"clear"`) {
		t.Fatalf("submit: %v %s", err, ack.Payload)
	}
	// The reply comes once the channel is set up (drbot is not in #general: a direct message).
	if _, err := h.slack.WaitMessage(h.ctx, lead, func(m slacktest.Message) bool { return strings.Contains(m.Text, "Started run") }); err != nil {
		t.Fatal(err)
	}
	ch, err := h.slack.WaitChannel(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"P1 DR test", "comms lead <@" + comms + ">", "tech lead <@" + platform1 + ">", "Yearly DR test of the restore"} {
		if !strings.Contains(ch.Topic, want) {
			t.Errorf("topic %q lacks %q", ch.Topic, want)
		}
	}
	panel := h.waitText(ch.ID, "*P1 DR test*")
	if !strings.Contains(panel.AllText(), "*Tech lead* <@"+platform1+">") || !strings.Contains(panel.AllText(), "Yearly DR test of the restore") {
		t.Errorf("panel: %s", panel.AllText())
	}
	h.click(lead, h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval"), handlers.ActApprove)
	notice := h.waitText(stakeChan, "P1 DR test: Loss of data")
	for _, want := range []string{"*Comms lead* <@" + comms + ">", "*Tech lead* <@" + platform1 + ">", "Yearly DR test of the restore", "<!subteam^S0P1ONCALL>"} {
		if !strings.Contains(notice.AllText(), want) {
			t.Errorf("notice lacks %q:\n%s", want, notice.AllText())
		}
	}
	if strings.Contains(notice.AllText(), "/dr") {
		t.Errorf("the notice holds a command for the team:\n%s", notice.AllText())
	}
	if run := h.runs()[0]; run.Incident.Kind != runbook.KindTest || run.Vars["inputs"].(map[string]any)["dr_test"] != true {
		t.Errorf("a DR test started as %s with inputs %v", run.Incident.Kind, run.Vars["inputs"])
	}
}

func channelByID(h *harness, id string) slacktest.Channel {
	for _, c := range h.slack.Channels() {
		if c.ID == id {
			return c
		}
	}
	return slacktest.Channel{}
}

// waitTopic waits until a channel's topic holds every one of want.
func waitTopic(t *testing.T, h *harness, channel string, want ...string) {
	t.Helper()
	for h.ctx.Err() == nil {
		topic := channelByID(h, channel).Topic
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(topic, w)
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("topic %q lacks one of %q", channelByID(h, channel).Topic, want)
}
