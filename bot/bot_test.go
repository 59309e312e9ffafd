package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// People of the example config (examples/drbot.yaml).
const (
	lead       = "U0INCLEAD1" // approver
	comms      = "U0COMMSLD1" // responder
	platform1  = "U0PLATF001" // in the approver group S0PLATFORM
	outsider   = "U0OUTSIDE1" // nobody
	general    = "C0GENERAL1"
	stakeChan  = "C0DRSTAKE1"
	devChan    = "C0DEVELOP1"
	scenario2  = `start scenario-2 service=itt-mentor-services env=staging restore_time=`
	stepsTotal = 27 // steps of scenario-2
)

// harness is the bot wired as drbot serve wires it, against the fake Slack,
// with simulated adapters and a real store.
type harness struct {
	t      testing.TB
	ctx    context.Context
	slack  *slacktest.Server
	store  *store.Store
	outbox *bot.MemOutbox
	sim    *sim.Sim
	bot    *bot.Bot
	eng    *runbook.Engine
}

func newHarness(t testing.TB) *harness { return newHarnessWith(t, sim.Options{}) }

// newHarnessWith builds a harness with simulated adapters set up by
// simOpts; prepare, if given, runs on the fake Slack and the outbox before
// the bot starts (what an earlier drbot left behind).
func newHarnessWith(t testing.TB, simOpts sim.Options, prepare ...func(*slacktest.Server, *bot.MemOutbox)) *harness {
	return newHarnessConfig(t, harnessConfig{sim: simOpts, prepare: prepare})
}

// harnessConfig varies the harness: the simulated world, the clock of the
// engine and the bot (nil: the system clock), the follow-up issues fake,
// and what an earlier drbot left behind (see newHarnessWith).
type harnessConfig struct {
	sim       sim.Options
	clock     runbook.Clock
	followUps handlers.FollowUps
	prepare   []func(*slacktest.Server, *bot.MemOutbox)
}

func newHarnessConfig(t testing.TB, hc harnessConfig) *harness {
	t.Helper()
	simOpts, prepare := hc.sim, hc.prepare
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	fake := slacktest.New()
	fake.AddChannel(general, "general")
	fake.AddChannel(stakeChan, "dr-stakeholders")
	fake.AddChannel(devChan, "developers")
	fake.SetGroup("S0PLATFORM", platform1, "U0PLATF002")
	outbox := &bot.MemOutbox{}
	for _, p := range prepare {
		p(fake, outbox)
	}

	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	h := &harness{t: t, ctx: ctx, slack: fake, store: st, outbox: outbox, sim: sim.New(simOpts)}
	if hc.clock == nil {
		hc.clock = runbook.SystemClock{}
	}
	h.bot, err = bot.New(bot.Options{
		BotToken: "xoxb-test", AppToken: "xapp-test", APIURL: fake.URL(), Location: cfg.Location,
		StakeholderChannels: cfg.Slack.StakeholderChannels, DeveloperChannels: cfg.Slack.DeveloperChannels,
		Approvers:   bot.Principals(cfg.Slack.Approvers),
		Responders:  bot.Principals(cfg.Slack.Responders),
		ChannelName: cfg.ChannelName, Outbox: h.outbox, Logger: log, SendInterval: 50 * time.Millisecond,
		Clock: hc.clock, P1Contacts: cfg.Comms.P1Contacts, FollowUps: hc.followUps != nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	actions := h.sim.Only("github.", "kubernetes.", "azure.", "http.")
	for k, a := range h.bot.Actions() {
		actions[k] = a
	}
	eng := runbook.New(runbook.Options{Store: st, Actions: actions, Notifier: h.bot, Authorizer: h.bot.Approvers(),
		Logger: log, RetryBackoff: 10 * time.Millisecond, Clock: hc.clock})
	h.bot.Bind(eng)
	h.eng = eng
	hd := handlers.New(handlers.Options{Engine: eng, Runs: st, Catalog: cat, Scopes: cfg, Incidents: h.bot,
		Approvers: h.bot.Approvers(), Notifiers: h.bot.Notifiers(), Location: cfg.Location, Logger: log, Clock: hc.clock,
		FollowUps: hc.followUps, FollowUpRepo: cfg.Comms.FollowUpRepo})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.bot.Run(ctx, hd); err != nil {
			t.Errorf("bot.Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		eng.Wait() // steps on the executor end before the store closes
		fake.Close()
		_ = st.Close()
	})
	if err := fake.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

// restoreTime is a valid restore_time: an hour ago, in London time.
func restoreTime() string {
	london, _ := time.LoadLocation("Europe/London")
	return `"` + time.Now().Add(-time.Hour).In(london).Format("2006-01-02 15:04") + ` Europe/London"`
}

func (h *harness) command(user, channel, text string) slacktest.Ack {
	h.t.Helper()
	ack, err := h.slack.SlashCommand(h.ctx, user, channel, text)
	if err != nil {
		h.t.Fatal(err)
	}
	return ack
}

// ackText is the ephemeral text of a slash command's ack.
func ackText(a slacktest.Ack) string {
	var p struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(a.Payload, &p)
	return p.Text
}

// start starts scenario-2 and returns the incident channel.
func (h *harness) start() slacktest.Channel {
	h.t.Helper()
	ack := h.command(lead, general, scenario2+restoreTime())
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

// stepMessage waits for a step's message in the state wanted ("awaiting
// approval", "done", ...).
func (h *harness) stepMessage(channel string, n int, title, state string) slacktest.Message {
	h.t.Helper()
	prefix := fmt.Sprintf("Step %d/%d %s: ", n, stepsTotal, title)
	m, err := h.slack.WaitMessage(h.ctx, channel, func(m slacktest.Message) bool {
		return strings.Contains(m.Text, prefix+state) && (state != "awaiting approval" || len(m.Buttons()) > 0)
	})
	if err != nil {
		h.t.Fatalf("%v (messages: %v)", err, texts(h.slack.Messages(channel)))
	}
	return m
}

func texts(ms []slacktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func (h *harness) click(user string, m slacktest.Message, action handlers.Action) {
	h.t.Helper()
	if _, err := h.slack.Click(h.ctx, user, m, string(action)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) runs() []*runbook.Run {
	h.t.Helper()
	runs, err := h.store.Runs(h.ctx, false, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return runs
}

func TestStartOpensTheIncident(t *testing.T) {
	h := newHarness(t)
	ch := h.start()
	if !strings.HasPrefix(ch.Name, "dr-"+time.Now().UTC().Format("20060102")+"-itt-mentor-services-staging") {
		t.Errorf("channel name %q", ch.Name)
	}
	if !strings.Contains(ch.Topic, "Loss of data") || !strings.Contains(ch.Purpose, "scenario-2") {
		t.Errorf("topic %q purpose %q", ch.Topic, ch.Purpose)
	}
	for _, u := range []string{lead, comms, platform1} {
		if !contains(ch.Members, u) {
			t.Errorf("%s not invited: %v", u, ch.Members)
		}
	}
	step := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	if b, ok := step.Button(string(handlers.ActApprove)); !ok || b.Style != "primary" {
		t.Errorf("approve button %+v", step.Buttons())
	}
	msgs := h.slack.Messages(ch.ID)
	panel := msgs[0]
	if !strings.Contains(panel.Text, "DR run") || !contains(h.slack.Pins(ch.ID), panel.TS) {
		t.Errorf("first message %q is not the pinned panel (pins %v)", panel.Text, h.slack.Pins(ch.ID))
	}
	if _, ok := panel.Button(string(handlers.ActAbort)); !ok {
		t.Error("panel has no Abort run button")
	}
	if !strings.Contains(panel.AllText(), "SIMULATED") || !strings.Contains(step.AllText(), "SIMULATED") {
		t.Error("a drill's messages are not marked SIMULATED")
	}
	root := msgs[1]
	if !strings.Contains(root.Text, "Timeline") {
		t.Fatalf("second message %q is not the timeline root", root.Text)
	}
	replies, err := h.slack.WaitReplies(h.ctx, ch.ID, root.TS, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(replies[0].Text, "run.started") || !strings.Contains(replies[1].Text, "step.awaiting_approval") {
		t.Errorf("replies %v", texts(replies))
	}
	if runs := h.runs(); len(runs) != 1 || runs[0].Meta["channel"] != ch.ID {
		t.Errorf("runs %+v", runs)
	}
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func TestClicks(t *testing.T) {
	h := newHarness(t)
	ch := h.start()
	step := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")

	// A non-approver is refused, told so, and audited on the timeline.
	h.click(outsider, step, handlers.ActApprove)
	if _, err := h.slack.WaitEphemeral(h.ctx, outsider, "not a configured approver"); err != nil {
		t.Fatal(err)
	}
	root := h.slack.Messages(ch.ID)[1]
	if _, err := h.slack.WaitMessage(h.ctx, ch.ID, func(slacktest.Message) bool {
		for _, r := range h.slack.Replies(ch.ID, root.TS) {
			if strings.Contains(r.Text, "refused") && strings.Contains(r.Text, outsider) {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}

	// A double click runs the step once; the second click is told why not.
	var wg sync.WaitGroup
	for _, u := range []string{lead, platform1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.slack.Click(h.ctx, u, step, string(handlers.ActApprove)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	done := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "done")
	if len(done.Buttons()) != 0 || !strings.Contains(done.AllText(), "✅ done · approved by") {
		t.Errorf("done message %q has buttons %v", done.AllText(), done.Buttons())
	}
	if scaled := h.sim.Count(sim.Call{StepID: "scale-down"}); scaled != 1 {
		t.Errorf("scale-down ran %d times", scaled)
	}
	if _, err := h.slack.WaitMessage(h.ctx, ch.ID, func(slacktest.Message) bool {
		return slices.ContainsFunc(h.slack.Ephemerals(), func(e slacktest.Ephemeral) bool { return strings.Contains(e.Text, "already") })
	}); err != nil {
		t.Fatal(err)
	}
	second := 0
	for _, e := range h.slack.Ephemerals() {
		if (e.User == lead || e.User == platform1) && strings.Contains(e.Text, "already") {
			second++
		}
	}
	if second != 1 {
		t.Errorf("%d 'already …' replies to the double click: %+v", second, h.slack.Ephemerals())
	}
	// The auto steps after it ran: the stakeholder notice and the developer alert.
	if _, err := h.slack.WaitMessage(h.ctx, stakeChan, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), "Data loss incident") }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitMessage(h.ctx, devChan, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), "do not merge") }); err != nil {
		t.Fatal(err)
	}
	h.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval")
	// The refused click's redraw and the coalesced updates changed nothing
	// Slack showed, so none was sent.
	if n := identicalUpdates(h.slack.Messages(ch.ID)); n != 0 {
		t.Errorf("%d chat.update calls sent what the message already showed", n)
	}
}

// identicalUpdates counts message versions whose blocks equal the version
// before (a chat.update that changed nothing).
func identicalUpdates(msgs []slacktest.Message) int {
	n := 0
	for _, m := range msgs {
		for i := 1; i < len(m.History); i++ {
			if bytes.Equal(m.History[i], m.History[i-1]) {
				n++
			}
		}
	}
	return n
}

func TestMissingScopeCreatesNothing(t *testing.T) {
	h := newHarness(t)
	h.slack.Fail("conversations.create", "missing_scope")
	h.command(lead, general, scenario2+restoreTime())
	e, err := h.slack.WaitEphemeral(h.ctx, lead, "channels:manage")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "No run was started") {
		t.Errorf("reply %q", e.Text)
	}
	if runs := h.runs(); len(runs) != 0 {
		t.Errorf("runs were created: %v", runs)
	}
}

func TestTakenNameIsNumbered(t *testing.T) {
	h := newHarness(t)
	name := "dr-" + time.Now().UTC().Format("20060102") + "-itt-mentor-services-staging"
	h.slack.AddChannel("C0OLDINCID", name)
	ch := h.start()
	if ch.Name != name+"-2" {
		t.Errorf("channel %q, want %q", ch.Name, name+"-2")
	}
}

func TestStartForm(t *testing.T) {
	h := newHarness(t)
	if ack := h.command(lead, general, "start"); len(ack.Payload) > 0 && string(ack.Payload) != "null" {
		t.Errorf("ack of a form-opening command carries %s", ack.Payload)
	}
	var view slacktest.View
	if err := pollViews(h, 1, &view); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.SelectInView(h.ctx, lead, view.ID, handlers.FieldScenario, "form.scenario", "scenario-2",
		map[string]map[string]any{handlers.FieldScenario: {"form.scenario": selected("scenario-2")}}); err != nil {
		t.Fatal(err)
	}
	if err := pollViews(h, 2, &view); err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(view.Body); !strings.Contains(string(raw), `"input.restore_time"`) || !strings.Contains(string(raw), "datetimepicker") {
		t.Fatalf("redrawn form has no restore_time picker: %s", raw)
	}
	values := map[string]map[string]any{
		handlers.FieldScenario: {"form.scenario": selected("scenario-2")},
		handlers.FieldTarget:   {"value": selected("itt-mentor-services/staging")},
		handlers.FieldComms:    {"value": map[string]any{"type": "users_select", "selected_user": comms}},
		"input.restore_time":   {"value": map[string]any{"type": "datetimepicker", "selected_date_time": time.Now().Add(-time.Minute).Unix()}},
	}
	ack, err := h.slack.SubmitView(h.ctx, lead, view.ID, values)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), `"response_action":"errors"`) || !strings.Contains(string(ack.Payload), "input.restore_time") {
		t.Errorf("too recent a time: ack %s", ack.Payload)
	}
	values["input.restore_time"]["value"] = map[string]any{"type": "datetimepicker", "selected_date_time": time.Now().Add(-time.Hour).Unix()}
	ack, err = h.slack.SubmitView(h.ctx, lead, view.ID, values)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), `"response_action":"clear"`) {
		t.Errorf("valid form: ack %s", ack.Payload)
	}
	// drbot is not in #general, so the reply comes as a direct message.
	if _, err := h.slack.WaitMessage(h.ctx, lead, func(m slacktest.Message) bool { return strings.Contains(m.Text, "Started run") }); err != nil {
		t.Fatal(err)
	}
	// The comms lead picked in the form is invited and named in the topic.
	ch, err := h.slack.WaitChannel(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ch.Members, comms) || !strings.Contains(ch.Topic, "comms lead <@"+comms+">") {
		t.Errorf("comms lead not in the channel: members %v, topic %q", ch.Members, ch.Topic)
	}
}

func selected(v string) map[string]any {
	return map[string]any{"type": "static_select", "selected_option": map[string]any{"value": v, "text": map[string]any{"type": "plain_text", "text": v}}}
}

func pollViews(h *harness, n int, view *slacktest.View) error {
	for ctx := h.ctx; ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
		if vs := h.slack.Views(); len(vs) >= n {
			*view = vs[n-1]
			return nil
		}
	}
	return h.ctx.Err()
}

func TestNotifyAndAbort(t *testing.T) {
	h := newHarness(t)
	ch := h.start()
	h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	h.command(comms, ch.ID, "notify Restore starts at 10:30")
	if _, err := h.slack.WaitMessage(h.ctx, stakeChan, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), "Restore starts at 10:30") }); err != nil {
		t.Fatal(err)
	}
	panel := h.slack.Messages(ch.ID)[0]
	h.click(lead, panel, handlers.ActAbort)
	if _, err := h.slack.WaitMessage(h.ctx, ch.ID, func(m slacktest.Message) bool { return strings.Contains(m.Text, "was aborted") }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitMessage(h.ctx, stakeChan, func(m slacktest.Message) bool { return strings.Contains(m.Text, "was aborted") }); err != nil {
		t.Fatal(err)
	}
	panel, _ = h.slack.Message(ch.ID, panel.TS)
	if len(panel.Buttons()) != 0 || !strings.Contains(panel.Text, "aborted") {
		t.Errorf("panel after abort: %q %v", panel.Text, panel.Buttons())
	}
}

func TestRateLimitIsHonoured(t *testing.T) {
	h := newHarness(t)
	h.slack.RateLimit("chat.postMessage", time.Second)
	begin := time.Now()
	ch := h.start()
	h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	if took := time.Since(begin); took < time.Second {
		t.Errorf("messages arrived %s after a 1s Retry-After", took)
	}
	postponed := false
	for _, m := range h.outbox.All() {
		postponed = postponed || m.Attempts > 0
	}
	if !postponed {
		t.Error("no message was postponed")
	}
}

func TestReconnects(t *testing.T) {
	h := newHarness(t)
	h.slack.Drop()
	var ack slacktest.Ack
	var err error
	for ctx := h.ctx; ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		if ack, err = h.slack.SlashCommand(h.ctx, lead, general, "help"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ackText(ack), "Usage") || h.slack.Connections() < 2 {
		t.Errorf("after a drop: ack %q, %d connections", ackText(ack), h.slack.Connections())
	}
}

func TestFailedStepOffersRetryAndSkip(t *testing.T) {
	h := newHarnessWith(t, sim.Options{FailWorkflow: []string{"maintenance.yml"}})
	ch := h.start()
	h.click(lead, h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval"), handlers.ActApprove)
	h.click(lead, h.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval"), handlers.ActApprove)
	h.click(lead, h.stepMessage(ch.ID, 6, "Enable maintenance", "awaiting approval"), handlers.ActApprove)

	failed := h.stepMessage(ch.ID, 6, "Enable maintenance", "failed")
	var actions []string
	for _, b := range failed.Buttons() {
		actions = append(actions, b.ActionID)
	}
	if !slices.Equal(actions, []string{string(handlers.ActRetry), string(handlers.ActSkip)}) {
		t.Fatalf("buttons after a failure: %v", actions)
	}
	if !strings.Contains(failed.AllText(), "concluded failure") || !strings.Contains(failed.AllText(), "attempt 1") {
		t.Errorf("failure not shown: %s", failed.AllText())
	}
	h.click(lead, failed, handlers.ActRetry)
	failed, err := h.slack.WaitMessage(h.ctx, ch.ID, func(m slacktest.Message) bool {
		return strings.Contains(m.AllText(), "failed (attempt 2)") && len(m.Buttons()) == 2
	})
	if err != nil {
		t.Fatal(err)
	}
	h.click(lead, failed, handlers.ActSkip)
	h.stepMessage(ch.ID, 6, "Enable maintenance", "skipped")
	h.stepMessage(ch.ID, 7, "Update the maintenance page message if needed", "awaiting approval")
}

func TestScenario1StartsWithItsAutomaticSteps(t *testing.T) {
	h := newHarness(t)
	h.command(lead, general, "start scenario-1 service=itt-mentor-services env=staging")
	if _, err := h.slack.WaitEphemeral(h.ctx, lead, "Started run dr-"); err != nil {
		t.Fatal(err)
	}
	ch, err := h.slack.WaitChannel(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitMessage(h.ctx, stakeChan, func(m slacktest.Message) bool { return strings.Contains(m.AllText(), "database server") }); err != nil {
		t.Fatal(err)
	}
	prefix := "Set required PR approvers to 6: awaiting approval"
	if _, err := h.slack.WaitMessage(h.ctx, ch.ID, func(m slacktest.Message) bool { return strings.Contains(m.Text, prefix) }); err != nil {
		t.Fatal(err)
	}
	if n := len(h.slack.Channels()); n != 4 {
		t.Errorf("%d channels; the create_channel step must reuse the incident channel", n)
	}
}

// Creating the incident channel waits out Slack's 429s (Retry-After)
// instead of failing /dr start.
func TestChannelCreationWaitsOutRateLimits(t *testing.T) {
	h := newHarness(t)
	h.slack.SetFaults(slacktest.Faults{Seed: 8, RateLimited: 0.6, Methods: []string{"conversations.create"}})
	ch := h.start()
	if ch.ID == "" {
		t.Fatal("no incident channel")
	}
	if n := h.slack.Injected()[slacktest.FaultRateLimited]; n == 0 {
		t.Fatal("no 429 was injected; the test proves nothing with this seed")
	}
}
