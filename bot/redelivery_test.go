package bot_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/bot/storeoutbox"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// restartable is a harness whose bot can be stopped and started again on
// the same database and fake Slack, as after a crash.
type restartable struct {
	*harness
	clock runbook.Clock // of every bot and engine started; nil: the system clock
	stop  func()
	logs  *observer.ObservedLogs // info and above, of every bot started
	core  zapcore.Core
}

func newRestartable(t *testing.T) *restartable { return newRestartableAt(t, nil) }

// newRestartableAt is newRestartable with the bots and engines on clock.
func newRestartableAt(t *testing.T, clock runbook.Clock) *restartable {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	fake := slacktest.New()
	fake.AddChannel(general, "general")
	fake.AddChannel(stakeChan, "dr-stakeholders")
	fake.AddChannel(devChan, "developers")
	fake.SetGroup("S0PLATFORM", platform1, "U0PLATF002")
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	obs, logs := observer.New(zap.InfoLevel)
	r := &restartable{harness: &harness{t: t, ctx: ctx, slack: fake, store: st, sim: sim.New(sim.Options{})}, logs: logs,
		core: zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core(), obs), clock: clock}
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
		cancel()
		fake.Close()
		_ = st.Close()
	})
	r.launch()
	return r
}

// launch starts a new bot, engine and handlers on the harness's store, and
// waits for its socket.
func (r *restartable) launch() {
	t := r.t
	t.Helper()
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	log := zap.New(r.core)
	b, err := bot.New(bot.Options{
		BotToken: "xoxb-test", AppToken: "xapp-test", APIURL: r.slack.URL(), Location: cfg.Location,
		StakeholderChannels: cfg.Slack.StakeholderChannels, DeveloperChannels: cfg.Slack.DeveloperChannels,
		Approvers: bot.Principals(cfg.Slack.Approvers), Responders: bot.Principals(cfg.Slack.Responders),
		ChannelName: cfg.ChannelName, Outbox: storeoutbox.Outbox{S: r.store}, Logger: log, SendInterval: 20 * time.Millisecond,
		Clock: r.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	actions := r.sim.Only("github.", "kubernetes.", "azure.", "http.")
	for k, a := range b.Actions() {
		actions[k] = a
	}
	eng := runbook.New(runbook.Options{Store: r.store, Actions: actions, Notifier: b, Authorizer: b.Approvers(),
		Logger: log, RetryBackoff: 10 * time.Millisecond, Clock: r.clock})
	b.Bind(eng)
	hd := handlers.New(handlers.Options{Engine: eng, Runs: r.store, Catalog: cat, Scopes: cfg, Incidents: b,
		Approvers: b.Approvers(), Notifiers: b.Notifiers(), Location: cfg.Location, Logger: log, Clock: r.clock})
	r.bot, r.eng = b, eng

	before := r.slack.Connections()
	ctx, cancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Run(ctx, hd); err != nil {
			t.Errorf("bot.Run: %v", err)
		}
	})
	wg.Go(func() { _ = eng.Resume(ctx) }) // as drbot serve does: runs of the process before go on
	r.stop = func() {
		r.stop = nil
		cancel()
		wg.Wait()
		eng.Wait() // steps on the executor end before the store closes
	}
	for r.slack.Connections() == before {
		select {
		case <-r.ctx.Done():
			t.Fatal("the bot never connected")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// restart stops the bot and starts a new one on the same database.
func (r *restartable) restart() {
	r.t.Helper()
	r.stop()
	r.launch()
}

func (r *restartable) redeliver(ack slacktest.Ack, reason string) slacktest.Ack {
	r.t.Helper()
	again, err := r.slack.Redeliver(r.ctx, ack.EnvelopeID, reason)
	if err != nil {
		r.t.Fatal(err)
	}
	return again
}

// events counts a run's timeline events by kind and step.
func (r *restartable) events(runID string) map[string]int {
	r.t.Helper()
	evs, err := r.store.Events(r.ctx, runID)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		out[string(ev.Kind)+" "+ev.StepID]++
	}
	return out
}

// TestRedeliveriesAreHandledOnce sends each kind of envelope that has an
// effect a second time, as Slack does when our ack was lost (same
// envelope_id, retry_attempt 1), and again after a restart of the bot on
// the same database (retry_attempt 2): each is acted on once.
func TestRedeliveriesAreHandledOnce(t *testing.T) {
	r := newRestartable(t)

	// /dr start: one run, one channel, one "Started run".
	start := r.command(lead, general, scenario2+restoreTime())
	if _, err := r.slack.WaitEphemeral(r.ctx, lead, "Started run dr-"); err != nil {
		t.Fatal(err)
	}
	ch, err := r.slack.WaitChannel(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again := r.redeliver(start, "timeout"); ackText(again) != ackText(start) {
		t.Errorf("the redelivery was acked %q, the delivery %q", ackText(again), ackText(start))
	}

	// A click: the step runs once and no refusal reaches the timeline.
	scaleDown := r.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	click, err := r.slack.Click(r.ctx, lead, scaleDown, string(handlers.ActApprove))
	if err != nil {
		t.Fatal(err)
	}
	r.stepMessage(ch.ID, 1, "Stop the web app and workers", "done")
	r.redeliver(click, "timeout")

	// A form submission: /dr start without arguments opens the form; its
	// submission would start a second run for another environment.
	formCmd := r.command(lead, general, "start")
	view := waitView(t, r.harness)
	submit, err := r.slack.SubmitView(r.ctx, lead, view.ID, map[string]map[string]any{
		handlers.FieldScenario: {"form.scenario": selected("scenario-2")},
		handlers.FieldTarget:   {"value": selected("itt-mentor-services/production")},
		"input.restore_time":   {"value": map[string]any{"type": "datetimepicker", "selected_date_time": time.Now().Add(-time.Hour).Unix()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.slack.WaitMessage(r.ctx, lead, func(m slacktest.Message) bool { return strings.Contains(m.Text, "Started run") }); err != nil {
		t.Fatal(err)
	}
	r.redeliver(submit, "timeout")
	r.redeliver(formCmd, "timeout")

	r.restart()
	for _, a := range []slacktest.Ack{start, click, submit, formCmd} {
		r.redeliver(a, "http_timeout")
	}
	// A new click is handled as usual: the bot is not just deaf.
	freeze := r.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval")
	r.click(lead, freeze, handlers.ActApprove)
	r.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "done")
	r.stop() // wait for every worker: what a redelivery would have done is done now

	// Each redelivery was dropped: by the receive loop's memory before the
	// restart, by the store's record after it.
	for msg, want := range map[string]int{"redelivered envelope dropped": 4, "envelope acted on before a restart; redelivery dropped": 4} {
		if got := r.logs.FilterMessage(msg).Len(); got != want {
			t.Errorf("%d log lines %q, want %d", got, msg, want)
		}
	}
	for _, e := range r.logs.FilterMessage("redelivered envelope dropped").All() {
		if e.ContextMap()["retry_attempt"] != int64(1) || e.ContextMap()["retry_reason"] != "timeout" {
			t.Errorf("a dropped redelivery is logged without Slack's retry: %v", e.ContextMap())
		}
	}

	runs := r.runs()
	if len(runs) != 2 {
		t.Errorf("%d runs, want 2 (one started by command, one by the form)", len(runs))
	}
	created := 0
	for _, c := range r.slack.Channels() {
		if c.Created {
			created++
		}
	}
	if created != 2 {
		t.Errorf("%d incident channels, want 2", created)
	}
	started := 0
	for _, e := range r.slack.Ephemerals() {
		if strings.Contains(e.Text, "Started run dr-") {
			started++
		}
	}
	for _, m := range r.slack.Messages(lead) { // the form's reply: drbot is not in #general
		if strings.Contains(m.Text, "Started run dr-") {
			started++
		}
	}
	if started != 2 {
		t.Errorf("%d \"Started run\" replies, want 2", started)
	}
	if opened := len(viewsOpened(r.slack)); opened != 1 {
		t.Errorf("the start form was opened %d times, want 1", opened)
	}
	for _, run := range runs {
		ev := r.events(run.ID)
		if n := ev[string(runbook.EventRefused)+" scale-down"]; n != 0 {
			t.Errorf("run %s: %d refusals of scale-down on the timeline", run.ID, n)
		}
		if n := ev[string(runbook.EventStepRunning)+" scale-down"]; run.Service == "itt-mentor-services" && run.Env == "staging" && n != 1 {
			t.Errorf("run %s: scale-down ran %d times", run.ID, n)
		}
	}
}

func viewsOpened(s *slacktest.Server) []slacktest.View {
	var out []slacktest.View
	for _, v := range s.Views() {
		if v.Method == "views.open" {
			out = append(out, v)
		}
	}
	return out
}

func waitView(t *testing.T, h *harness) slacktest.View {
	t.Helper()
	for {
		if v := viewsOpened(h.slack); len(v) > 0 {
			return v[len(v)-1]
		}
		select {
		case <-h.ctx.Done():
			t.Fatal("the start form was never opened")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
