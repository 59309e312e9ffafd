// Package bench measures drbot under incident load (issue 10): drbot wired as
// `drbot serve` wires it, on the in-project fake Slack, against a bare
// slack-go socket-mode client that only acks, on another instance of the
// same fake, in the same run. See README.md.
package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
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

// The load of issue 10; the defaults are the CI-friendly short mode.
var (
	loadDuration = flag.Duration("load.duration", 3*time.Second, "how long each side is loaded")
	loadRate     = flag.Int("load.rate", 200, "envelopes per second")
	loadRuns     = flag.Int("load.runs", 50, "active runs")
	loadDelay    = flag.Duration("load.delay", 100*time.Millisecond, "base delay of a simulated adapter operation")
	loadWorkers  = flag.Int("load.workers", 16, "drbot's --workers")
)

// People and channels of the example config (examples/drbot.yaml).
const (
	lead      = "U0INCLEAD1" // approver
	platform1 = "U0PLATF001" // approver through the group S0PLATFORM
	general   = "C0GENERAL1"
)

// BenchmarkIncidentLoad runs the load on drbot, then the same
// envelope stream on a bare client that only acks, and reports both.
func BenchmarkIncidentLoad(b *testing.B) {
	for b.Loop() {
		d := startDrbot(b)
		dr := d.load(b)
		m := d.measure(b)
		d.stop() // nothing of drbot's runs on while the bare client is loaded
		bare := loadBare(b)
		report(b, dr, bare, m)
	}
}

// result is what one side's load measured.
type result struct {
	acks            []time.Duration
	refusedClicks   int // unacked, or answered "busy"
	refusedCommands int
	clicks          int
	cpu             time.Duration
	wall            time.Duration
}

// measured is what is read from drbot and the fake after its load.
type measured struct {
	adapter            []time.Duration
	calls, transitions int
	identical          float64
	locked             int // log entries with "database is locked"
}

func (d *drbot) measure(b *testing.B) measured {
	var m measured
	m.calls, m.transitions = d.slackCallsPerTransition(b)
	m.adapter = d.adapterLatencies()
	m.identical = d.identicalUpdates()
	for _, e := range d.logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), "database is locked") {
			m.locked++
		}
	}
	return m
}

func report(b *testing.B, dr, bare result, m measured) {
	p99, bareP99 := pct(dr.acks, 99), pct(bare.acks, 99)
	b.ReportMetric(ms(pct(dr.acks, 50)), "ack-p50-ms")
	b.ReportMetric(ms(p99), "ack-p99-ms")
	b.ReportMetric(ms(pct(bare.acks, 50)), "bare-ack-p50-ms")
	b.ReportMetric(ms(bareP99), "bare-ack-p99-ms")
	b.ReportMetric(float64(p99)/float64(max(bareP99, 1)), "ack-p99-ratio")
	b.ReportMetric(float64(dr.refusedClicks), "clicks-refused")
	b.ReportMetric(float64(dr.refusedCommands), "commands-refused")
	b.ReportMetric(float64(dr.clicks), "clicks")
	lat, calls, transitions := m.adapter, m.calls, m.transitions
	b.ReportMetric(ms(pct(lat, 50)), "click-adapter-p50-ms")
	b.ReportMetric(ms(pct(lat, 99)), "click-adapter-p99-ms")
	b.ReportMetric(float64(len(lat)), "clicks-measured")
	b.ReportMetric(float64(calls)/float64(max(transitions, 1)), "slack-calls/transition")
	b.ReportMetric(m.identical, "identical-updates")
	b.ReportMetric(float64(m.locked), "store-lock-errors")
	b.ReportMetric(dr.cpu.Seconds(), "cpu-s")
	b.ReportMetric(bare.cpu.Seconds(), "bare-cpu-s")
	b.ReportMetric(rssMB(), "rss-MB")
	b.Logf("drbot: %d envelopes in %s, %d clicks, %d Slack calls for %d step transitions; bare: %d envelopes",
		len(dr.acks), dr.wall.Round(time.Millisecond), dr.clicks, calls, transitions, len(bare.acks))
}

// drbot is drbot wired as serve wires it: real store and outbox, the
// engine's default executor, simulated adapters with a delay.
type drbot struct {
	ctx    context.Context
	cancel context.CancelFunc
	slack  *slacktest.Server
	store  *store.Store
	eng    *runbook.Engine
	wg     sync.WaitGroup
	runs   []string // incident channel ids, one per run
	calls0 int      // Web API calls before the load
	steps0 int      // step transitions before the load

	logs *observer.ObservedLogs

	mu        sync.Mutex
	clickedAt map[string]time.Time     // run/step → when its approve was sent
	latency   map[string]time.Duration // run/step → click to adapter call
}

func startDrbot(b *testing.B) *drbot {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &drbot{ctx: ctx, cancel: cancel, slack: slacktest.New(), clickedAt: map[string]time.Time{}, latency: map[string]time.Duration{}}
	d.slack.AddChannel(general, "general")
	d.slack.AddChannel("C0DRSTAKE1", "dr-stakeholders")
	d.slack.AddChannel("C0DEVELOP1", "developers")
	d.slack.SetGroup("S0PLATFORM", platform1, "U0PLATF002")
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		b.Fatal(err)
	}
	if d.store, err = store.Open(ctx, filepath.Join(b.TempDir(), "drbot.db")); err != nil {
		b.Fatal(err)
	}
	// Errors go to the test log; warnings and errors are also kept to count
	// the store's "database is locked".
	var seen zapcore.Core
	seen, d.logs = observer.New(zap.WarnLevel)
	log := zaptest.NewLogger(b, zaptest.Level(zap.ErrorLevel), zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, seen)
	})))
	bt, err := bot.New(bot.Options{
		BotToken: "xoxb-bench", AppToken: "xapp-bench", APIURL: d.slack.URL(), Location: cfg.Location,
		StakeholderChannels: cfg.Slack.StakeholderChannels, DeveloperChannels: cfg.Slack.DeveloperChannels,
		Approvers: bot.Principals(cfg.Slack.Approvers), Responders: bot.Principals(cfg.Slack.Responders),
		ChannelName: cfg.ChannelName, Outbox: storeoutbox.Outbox{S: d.store}, Logger: log, Workers: *loadWorkers,
	})
	if err != nil {
		b.Fatal(err)
	}
	s := sim.New(sim.Options{Delay: *loadDelay})
	actions := runbook.Registry{}
	for kind, act := range s.Only("github.", "kubernetes.", "azure.", "http.") {
		actions[kind] = d.timed(act)
	}
	for kind, act := range bt.Actions() {
		actions[kind] = act
	}
	d.eng = runbook.New(runbook.Options{Store: d.store, Actions: actions, Notifier: bt, Authorizer: bt.Approvers(),
		Logger: log, Guard: cfg.Guard()})
	bt.Bind(d.eng)
	h := handlers.New(handlers.Options{Engine: d.eng, Runs: d.store, Catalog: cat, Scopes: cfg, Incidents: bt,
		Approvers: bt.Approvers(), Notifiers: bt.Notifiers(), Location: cfg.Location, Logger: log})
	d.wg.Go(func() {
		if err := bt.Run(ctx, h); err != nil {
			b.Errorf("bot: %v", err)
		}
	})
	if err := d.slack.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}

	// The active runs: scenario-2 for as many services, each in its own
	// incident channel, as /dr start makes them.
	scope, err := cfg.Scope("itt-mentor-services", "staging")
	if err != nil {
		b.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	restore := time.Now().Add(-time.Hour).In(london).Format("2006-01-02 15:04") + " Europe/London"
	for i := range *loadRuns {
		service := fmt.Sprintf("bench-service-%02d", i)
		ch, err := bt.OpenChannel(ctx, handlers.ChannelRequest{Scenario: "scenario-2", Title: cat["scenario-2"].Title,
			Service: service, Env: "staging", Requester: lead, At: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		_, err = d.eng.Start(ctx, runbook.StartRequest{Runbook: cat["scenario-2"], Service: service, Env: "staging",
			Config: scope, Inputs: map[string]string{"restore_time": restore}, Actor: lead,
			Meta: map[string]string{"channel": ch.ID, "channel_name": ch.Name}})
		if err != nil {
			b.Fatal(err)
		}
		d.runs = append(d.runs, ch.ID)
	}
	for _, ch := range d.runs {
		if _, err := d.slack.WaitMessage(ctx, ch, func(m slacktest.Message) bool { return approveButton(m) != "" }); err != nil {
			b.Fatal(err)
		}
	}
	d.calls0, d.steps0 = len(d.slack.Calls("")), d.transitions(b)
	return d
}

func (d *drbot) stop() {
	d.cancel()
	d.wg.Wait()
	d.eng.Wait()
	d.slack.Close()
	_ = d.store.Close()
}

// envelope kinds of the mix.
const (
	sendStatus = iota
	sendHelp
	sendClick
)

// load sends the mix (a third each of /dr status in a run's channel, /dr
// help, and an Approve click on a run's current step) at loadRate for
// loadDuration, each envelope on its own goroutine as Slack does.
func (d *drbot) load(b *testing.B) result {
	clicked := map[string]bool{} // button values clicked: one click per rendering
	var mu sync.Mutex
	var res result
	send := func(kind int, rnd *rand.Rand) {
		var ack slacktest.Ack
		var err error
		switch kind {
		case sendStatus:
			ack, err = d.slack.SlashCommand(d.ctx, lead, d.runs[rnd.IntN(len(d.runs))], "status")
		case sendHelp:
			ack, err = d.slack.SlashCommand(d.ctx, lead, general, "help")
		case sendClick:
			ch := d.runs[rnd.IntN(len(d.runs))]
			m, action, value, ok := d.clickable(ch, clicked, &mu)
			if !ok { // this run's step is running: ask for its status instead
				ack, err = d.slack.SlashCommand(d.ctx, lead, ch, "status")
				kind = sendStatus
				break
			}
			user := lead
			if v, _ := bot.DecodeValue(value); v.Version%2 == 0 {
				user = platform1 // a step needing two approvers gets a second person
			}
			d.clicking(value)
			ack, err = d.slack.Click(d.ctx, user, m, action)
		}
		mu.Lock()
		defer mu.Unlock()
		if kind == sendClick {
			res.clicks++
		}
		if err != nil || isBusy(ack) {
			if kind == sendClick {
				res.refusedClicks++
			} else {
				res.refusedCommands++
			}
			return
		}
		res.acks = append(res.acks, ack.Latency)
	}
	res.cpu, res.wall = drive(send)
	// A click whose step is still queued or running is not refused: wait
	// for the steps clicked to reach their adapters before measuring.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && d.pendingClicks() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range d.slack.Ephemerals() {
		if strings.Contains(e.Text, "busy") {
			res.refusedClicks++
		}
	}
	return res
}

// drive sends the mix at loadRate for loadDuration and returns the CPU time
// the process used meanwhile.
func drive(send func(kind int, rnd *rand.Rand)) (cpu, wall time.Duration) {
	before, start := cpuTime(), time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*loadRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; time.Since(start) < *loadDuration; i++ {
		<-tick.C
		kind := i % 3
		seed := rnd.Uint64()
		wg.Go(func() { send(kind, rand.New(rand.NewPCG(seed, 0))) })
	}
	wg.Wait()
	return cpuTime() - before, time.Since(start)
}

// clickable finds the newest message of a run's channel with an Approve
// (or Done) button not clicked yet, and marks it clicked.
func (d *drbot) clickable(ch string, clicked map[string]bool, mu *sync.Mutex) (slacktest.Message, string, string, bool) {
	msgs := d.slack.Messages(ch)
	for i := len(msgs) - 1; i >= 0; i-- {
		action := approveButton(msgs[i])
		if action == "" {
			continue
		}
		btn, _ := msgs[i].Button(action)
		mu.Lock()
		seen := clicked[btn.Value]
		clicked[btn.Value] = true
		mu.Unlock()
		if seen {
			return slacktest.Message{}, "", "", false
		}
		return msgs[i], action, btn.Value, true
	}
	return slacktest.Message{}, "", "", false
}

func approveButton(m slacktest.Message) string {
	for _, a := range []handlers.Action{handlers.ActApprove, handlers.ActDone} {
		if _, ok := m.Button(string(a)); ok {
			return string(a)
		}
	}
	return ""
}

func isBusy(a slacktest.Ack) bool { return strings.Contains(string(a.Payload), "busy") }

// clicking notes when an Approve of a step was sent. The last one before
// the step runs counts: a step that needs two people runs on the second
// approval, not the first.
func (d *drbot) clicking(value string) {
	v, err := bot.DecodeValue(value)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := v.RunID + "/" + v.StepID
	if _, ran := d.latency[key]; !ran {
		d.clickedAt[key] = time.Now()
	}
}

// timed wraps an adapter to measure click → adapter call.
func (d *drbot) timed(act runbook.Action) runbook.Action {
	t := timedAction{Action: act, d: d}
	if c, ok := act.(runbook.Chooser); ok {
		return timedChooser{t, c}
	}
	return t
}

type timedAction struct {
	runbook.Action
	d *drbot
}

func (t timedAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	t.d.mu.Lock()
	key := req.RunID + "/" + req.StepID
	if at, ok := t.d.clickedAt[key]; ok {
		if _, done := t.d.latency[key]; !done {
			t.d.latency[key] = time.Since(at)
		}
	}
	t.d.mu.Unlock()
	return t.Action.Run(ctx, req)
}

// Simulated keeps the adapter's SIMULATED marking.
func (t timedAction) Simulated() bool {
	s, ok := t.Action.(runbook.Simulator)
	return ok && s.Simulated()
}

type timedChooser struct {
	timedAction
	c runbook.Chooser
}

func (t timedChooser) Choices(ctx context.Context, req runbook.Request) ([]runbook.Choice, error) {
	return t.c.Choices(ctx, req)
}

// pendingClicks counts approved steps with an adapter that has not been
// called yet (manual steps have none and are not counted).
func (d *drbot) pendingClicks() int {
	views := d.views()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for key := range d.clickedAt {
		if _, ok := d.latency[key]; ok {
			continue
		}
		if s, ok := views[key]; ok && s.State.State == runbook.Running && s.Step.Action != runbook.ManualKind {
			n++
		}
	}
	return n
}

func (d *drbot) views() map[string]runbook.StepView {
	out := map[string]runbook.StepView{}
	runs, _ := d.store.Runs(d.ctx, false, 0)
	for _, r := range runs {
		v, err := d.eng.View(d.ctx, r.ID)
		if err != nil {
			continue
		}
		for _, s := range v.Steps {
			out[r.ID+"/"+s.Step.ID] = s
		}
	}
	return out
}

func (d *drbot) adapterLatencies() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]time.Duration, 0, len(d.latency))
	for _, l := range d.latency {
		out = append(out, l)
	}
	return out
}

// slackCallsPerTransition counts the Web API writes about runs (posts and
// updates in channels, threads included) made since the load began, and
// the step transitions (step events on the timelines) in that time.
// Replies to commands (ephemeral, response_url) are answers, not run
// messages, and are not counted.
func (d *drbot) slackCallsPerTransition(b *testing.B) (calls, transitions int) {
	// Let the outbox deliver what the load caused.
	time.Sleep(2 * time.Second)
	all := d.slack.Calls("")
	for _, c := range all[d.calls0:] {
		if c.Method == "chat.postMessage" || c.Method == "chat.update" {
			calls++
		}
	}
	return calls, d.transitions(b) - d.steps0
}

// transitions counts the step events on every run's timeline.
func (d *drbot) transitions(b *testing.B) (n int) {
	runs, err := d.store.Runs(d.ctx, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range runs {
		evs, err := d.store.Events(d.ctx, r.ID)
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			switch ev.Kind {
			case runbook.EventStepWaiting, runbook.EventStepApproved, runbook.EventStepRunning,
				runbook.EventStepDone, runbook.EventStepFailed, runbook.EventStepSkipped:
				n++
			}
		}
	}
	return n
}

// identicalUpdates counts message versions whose blocks equal the version
// before: a chat.update (after the post or another update) that changed
// nothing Slack showed.
func (d *drbot) identicalUpdates() float64 {
	n := 0
	for _, ch := range d.slack.Channels() {
		for _, m := range d.slack.Messages(ch.ID) {
			for i := 1; i < len(m.History); i++ {
				if bytes.Equal(m.History[i], m.History[i-1]) {
					n++
				}
			}
		}
	}
	return float64(n)
}

// loadBare sends the same envelope stream to a bare slack-go socket-mode
// client that acks every envelope and does nothing else.
func loadBare(b *testing.B) result {
	b.Helper()
	fake := slacktest.New()
	defer fake.Close()
	fake.AddChannel(general, "general")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	api := slack.New("xoxb-bare", slack.OptionAppLevelToken("xapp-bare"), slack.OptionAPIURL(fake.URL()))
	sm := socketmode.New(api)
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					_ = sm.Ack(*evt.Request)
				}
			}
		}
	})
	if err := fake.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	// The same envelopes: the bare client has no buttons of its own, so a
	// click is a block_actions envelope on a message it did not post.
	m := slacktest.Message{Channel: general, TS: "1.000001", Text: "step",
		Blocks: []byte(`[{"type":"actions","block_id":"b","elements":[{"type":"button","action_id":"step.approve","value":"v1|dr-x|s|1","text":{"type":"plain_text","text":"Approve"}}]}]`)}
	var mu sync.Mutex
	var res result
	send := func(kind int, _ *rand.Rand) {
		var ack slacktest.Ack
		var err error
		switch kind {
		case sendClick:
			ack, err = fake.Click(ctx, lead, m, "step.approve")
		default:
			ack, err = fake.SlashCommand(ctx, lead, general, "help")
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.refusedCommands++
			return
		}
		res.acks = append(res.acks, ack.Latency)
	}
	res.cpu, res.wall = drive(send)
	return res
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB is the process's resident set now (Linux), in MB.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
