package handlers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type fixedClock struct{}

func (fixedClock) Now() time.Time { return now }

// fakeEngine records calls and answers with what the test sets.
type fakeEngine struct {
	mu       sync.Mutex
	calls    []string
	checkErr error
	startErr error
	clickErr error
	started  *runbook.StartRequest
	need     *runbook.SkipNeed // what skipping a step would leave unknown
}

func (e *fakeEngine) record(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, s)
}

func (e *fakeEngine) Check(_ context.Context, req runbook.StartRequest) error {
	e.record("check " + req.Runbook.ID)
	return e.checkErr
}

func (e *fakeEngine) Start(_ context.Context, req runbook.StartRequest) (*runbook.Run, error) {
	e.record("start " + req.Runbook.ID + " " + req.Meta["channel"])
	if e.startErr != nil {
		return nil, e.startErr
	}
	e.started = &req
	return &runbook.Run{ID: "dr-1", RunbookID: req.Runbook.ID, Service: req.Service, Env: req.Env}, nil
}

func (e *fakeEngine) Approve(_ context.Context, runID, stepID string, version int, actor string) error {
	e.record("approve " + runID + "/" + stepID + " " + actor)
	return e.clickErr
}

func (e *fakeEngine) Skip(_ context.Context, runID, stepID string, version int, actor, reason string) error {
	e.record("skip " + runID + "/" + stepID + " " + actor)
	return e.clickErr
}

func (e *fakeEngine) SkipNeeds(context.Context, string, string) (*runbook.SkipNeed, error) {
	return e.need, nil
}

func (e *fakeEngine) SkipWithValue(_ context.Context, runID, stepID string, version int, actor, reason, value string) error {
	e.record("skip " + runID + "/" + stepID + " " + actor + " " + value)
	return e.clickErr
}

func (e *fakeEngine) Choices(context.Context, string, string) ([]runbook.Choice, error) {
	return []runbook.Choice{{Value: "b.sql.gz", Label: "b.sql.gz (1 MB)"}}, nil
}

func (e *fakeEngine) Choose(_ context.Context, runID, stepID string, version int, actor, value string) error {
	e.record("choose " + runID + "/" + stepID + " " + actor + " " + value)
	return e.clickErr
}

func (e *fakeEngine) Retry(_ context.Context, runID, stepID string, version int, actor string) error {
	e.record("retry " + runID + "/" + stepID + " " + actor)
	return e.clickErr
}

func (e *fakeEngine) Abort(_ context.Context, runID, actor, reason string) error {
	e.record("abort " + runID + " " + actor)
	return e.clickErr
}

func (e *fakeEngine) Note(_ context.Context, runID, actor, text string) error {
	e.record("note " + runID + " " + text)
	return nil
}

func (e *fakeEngine) View(context.Context, string) (*runbook.RunView, error) {
	return nil, runbook.Refusef("no view in this test")
}

type fakeRuns []*runbook.Run

func (r fakeRuns) Runs(_ context.Context, activeOnly bool, _ int) ([]*runbook.Run, error) {
	var out []*runbook.Run
	for _, run := range r {
		if !activeOnly || run.State == runbook.RunActive {
			out = append(out, run)
		}
	}
	return out, nil
}

func (r fakeRuns) ActiveRunInChannel(_ context.Context, channelID string) (*runbook.Run, error) {
	for _, run := range r {
		if run.State == runbook.RunActive && run.Meta["channel"] == channelID {
			return run, nil
		}
	}
	return nil, runbook.ErrNotFound
}

type fakeIncidents struct {
	openErr   error
	opened    []ChannelRequest
	abandoned []string
	announced []string
}

func (f *fakeIncidents) OpenChannel(_ context.Context, req ChannelRequest) (Channel, error) {
	if f.openErr != nil {
		return Channel{}, f.openErr
	}
	f.opened = append(f.opened, req)
	return Channel{ID: "C0INCIDENT", Name: "dr-20261126-svc-env"}, nil
}

func (f *fakeIncidents) Abandon(_ context.Context, ch Channel, reason string) {
	f.abandoned = append(f.abandoned, ch.ID+": "+reason)
}

func (f *fakeIncidents) Announce(_ context.Context, runID, actor, text string) error {
	f.announced = append(f.announced, runID+" "+text)
	return nil
}

// access allows the listed users; cold makes Cached answer "unknown".
type access struct {
	users map[string]bool
	cold  bool
}

func (a access) MayAct(_ context.Context, user string) (bool, error) { return a.users[user], nil }
func (a access) Cached(user string) (bool, bool)                     { return a.users[user], !a.cold }

type fixture struct {
	h         *Handler
	engine    *fakeEngine
	incidents *fakeIncidents
}

func newFixture(t *testing.T, runs ...*runbook.Run) fixture {
	t.Helper()
	cfg, err := config.Parse("examples/drbot.yaml", examples.Config, func(string) string { return "" })
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatalf("runbooks: %v", err)
	}
	f := fixture{engine: &fakeEngine{}, incidents: &fakeIncidents{}}
	approvers := access{users: map[string]bool{"U0INCLEAD1": true}}
	f.h = New(Options{
		Engine: f.engine, Runs: fakeRuns(runs), Catalog: cat, Scopes: cfg, Incidents: f.incidents,
		Approvers: approvers, Notifiers: approvers, Clock: fixedClock{}, Location: cfg.Location,
	})
	return f
}

const restore = `restore_time="2026-11-26 09:30 Europe/London"`

func TestCommandAnswersInTheAck(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		text     string
		wantText string // in the ack reply
		wantForm bool
		wantTask bool
	}{
		{"help", "U0INCLEAD1", "help", "/dr start <scenario>", false, false},
		{"parse error", "U0INCLEAD1", "start scenario-2 staging", `unexpected "staging"`, false, false},
		{"unknown scenario", "U0INCLEAD1", "start scenario-9 service=itt-mentor-services env=staging", `unknown scenario "scenario-9"; known: scenario-1, scenario-2`, false, false},
		{"unknown service", "U0INCLEAD1", "start scenario-2 service=nope env=staging " + restore, `Unknown service "nope". Configured services: claim-additional-payments-for-teaching, itt-mentor-services`, false, false},
		{"unknown env", "U0INCLEAD1", "start scenario-2 service=itt-mentor-services env=qa " + restore, `has no environment "qa". Configured: production, staging`, false, false},
		{"bad time", "U0INCLEAD1", `start scenario-2 service=itt-mentor-services env=staging restore_time="2026-11-26 09:30"`, "has no time zone", false, false},
		{"time too recent", "U0INCLEAD1", `start scenario-2 service=itt-mentor-services env=staging restore_time="2026-11-26 09:58 UTC"`, "only 2m0s ago", false, false},
		{"unknown input", "U0INCLEAD1", "start scenario-2 service=itt-mentor-services env=staging colour=red " + restore, `unknown input "colour"`, false, false},
		{"not allowed", "U0SOMEONE1", "start scenario-2 service=itt-mentor-services env=staging " + restore, "not allowed to start a run", false, false},
		{"bare start opens the form", "U0INCLEAD1", "start", "", true, false},
		{"missing env opens the form", "U0INCLEAD1", "start scenario-2 service=itt-mentor-services " + restore, "", true, false},
		{"missing time opens the form", "U0INCLEAD1", "start scenario-2 service=itt-mentor-services env=staging", "", true, false},
		{"valid start", "U0INCLEAD1", "start scenario-2 service=itt-mentor-services env=staging " + restore, "Starting scenario-2", false, true},
		{"status", "U0INCLEAD1", "status", "", false, true},
		{"notify not allowed", "U0SOMEONE1", "notify hi", "not allowed to post stakeholder updates", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			reply, task := f.h.Command(Request{UserID: tt.user, ChannelID: "C0GENERAL", Text: tt.text})
			if !strings.Contains(reply.Text, tt.wantText) {
				t.Errorf("reply %q, want it to contain %q", reply.Text, tt.wantText)
			}
			if (reply.Form != nil) != tt.wantForm {
				t.Errorf("form = %v, want %v", reply.Form != nil, tt.wantForm)
			}
			if (task != nil) != tt.wantTask {
				t.Errorf("task = %v, want %v", task != nil, tt.wantTask)
			}
			if len(f.engine.calls)+len(f.incidents.opened) > 0 {
				t.Errorf("deciding made calls: %v %v", f.engine.calls, f.incidents.opened)
			}
		})
	}
}

func TestFormIsPrefilled(t *testing.T) {
	f := newFixture(t)
	reply, _ := f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "C0GENERAL", Text: "start scenario-2 service=itt-mentor-services"})
	form := reply.Form
	if form == nil {
		t.Fatal("no form")
	}
	if form.Scenario != "scenario-2" || form.Service != "itt-mentor-services" || form.Env != "" || form.ChannelID != "C0GENERAL" {
		t.Errorf("form selection = %q %q/%q in %q", form.Scenario, form.Service, form.Env, form.ChannelID)
	}
	if len(form.Targets) != 2 || len(form.Scenarios) != 2 {
		t.Errorf("choices: %d targets, %d scenarios", len(form.Targets), len(form.Scenarios))
	}
	if len(form.Inputs) != 3 || form.Inputs[0].Name != "restore_time" {
		t.Errorf("inputs = %+v", form.Inputs)
	}
	if !strings.Contains(form.Note, "restore_time") {
		t.Errorf("note = %q", form.Note)
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name         string
		checkErr     error
		openErr      error
		startErr     error
		wantText     string
		wantCalls    []string
		wantOpened   int
		wantAbandons int
	}{
		{"started", nil, nil, nil, "Started run dr-1 (scenario-2) for itt-mentor-services/staging in <#C0INCIDENT>",
			[]string{"check scenario-2", "start scenario-2 C0INCIDENT"}, 1, 0},
		{"check refuses: nothing is created", runbook.Refusef("run dr-0 is already active for itt-mentor-services/staging; finish or abort it first"), nil, nil,
			"already active", []string{"check scenario-2"}, 0, 0},
		{"channel refused: no run", nil, runbook.Refusef("the Slack app lacks the channels:manage scope"), nil,
			"lacks the channels:manage scope\nNo run was started.", []string{"check scenario-2"}, 0, 0},
		{"channel failure: no run", nil, errors.New("connection reset"), nil,
			"could not create the incident channel: connection reset. No run was started", []string{"check scenario-2"}, 0, 0},
		{"start refused after the channel: explained there", nil, nil, runbook.Refusef("run dr-0 is already active"),
			"The run did not start: run dr-0 is already active. <#C0INCIDENT> was created but holds no run.",
			[]string{"check scenario-2", "start scenario-2 C0INCIDENT"}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.engine.checkErr, f.engine.startErr, f.incidents.openErr = tt.checkErr, tt.startErr, tt.openErr
			_, task := f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "C0GENERAL",
				Text: "start scenario-2 service=itt-mentor-services env=staging " + restore})
			if task == nil {
				t.Fatal("no task")
			}
			reply := task(context.Background())
			if !strings.Contains(reply.Text, tt.wantText) {
				t.Errorf("reply %q, want %q", reply.Text, tt.wantText)
			}
			if strings.Join(f.engine.calls, "|") != strings.Join(tt.wantCalls, "|") {
				t.Errorf("engine calls %q, want %q", f.engine.calls, tt.wantCalls)
			}
			if len(f.incidents.opened) != tt.wantOpened || len(f.incidents.abandoned) != tt.wantAbandons {
				t.Errorf("opened %d abandoned %d, want %d %d", len(f.incidents.opened), len(f.incidents.abandoned), tt.wantOpened, tt.wantAbandons)
			}
		})
	}
}

func TestStartPassesScopeAndInputs(t *testing.T) {
	f := newFixture(t)
	_, task := f.h.Command(Request{UserID: "U0INCLEAD1", Text: "start scenario-2 service=itt-mentor-services env=staging " + restore})
	task(context.Background())
	got := f.engine.started
	if got == nil {
		t.Fatal("not started")
	}
	if got.Actor != "U0INCLEAD1" || got.Inputs["restore_time"] != "2026-11-26 09:30 Europe/London" || got.Meta["channel_name"] != "dr-20261126-svc-env" {
		t.Errorf("start request %+v", got)
	}
	if _, ok := got.Config["workflows"]; !ok {
		t.Errorf("config scope missing workflows: %v", runbook.SortedKeys(got.Config))
	}
	if req := f.incidents.opened[0]; req.Service != "itt-mentor-services" || req.Env != "staging" || req.Requester != "U0INCLEAD1" || !req.At.Equal(now) {
		t.Errorf("channel request %+v", req)
	}
}

func TestColdAccessIsCheckedOnTheWorker(t *testing.T) {
	f := newFixture(t)
	f.h.opts.Approvers = access{users: map[string]bool{}, cold: true}
	reply, task := f.h.Command(Request{UserID: "U0SOMEONE1", Text: "start scenario-2 service=itt-mentor-services env=staging " + restore})
	if task == nil {
		t.Fatalf("cold cache refused in the ack: %q", reply.Text)
	}
	if got := task(context.Background()).Text; !strings.Contains(got, "not allowed to start a run") {
		t.Errorf("worker reply %q", got)
	}
	if len(f.engine.calls) != 0 {
		t.Errorf("engine called: %v", f.engine.calls)
	}
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		values FormValues
		want   map[string]string // field → part of the problem
	}{
		{"valid", "U0INCLEAD1", FormValues{Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging",
			Inputs: map[string]string{"restore_time": "2026-11-26T09:00:00Z"}}, nil},
		{"no target, bad time", "U0INCLEAD1", FormValues{Scenario: "scenario-2", Inputs: map[string]string{"restore_time": "2026-11-10T09:00:00Z"}},
			map[string]string{FieldTarget: "Pick the service", InputField("restore_time"): "only reaches back 7d0h"}},
		{"missing time", "U0INCLEAD1", FormValues{Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging"},
			map[string]string{InputField("restore_time"): "input restore_time is required"}},
		{"bad bool", "U0INCLEAD1", FormValues{Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging",
			Inputs: map[string]string{"restore_time": "2026-11-26T09:00:00Z", "dr_test": "maybe"}},
			map[string]string{InputField("dr_test"): "not true or false"}},
		{"PTR copy named as the live server", "U0INCLEAD1", FormValues{Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging",
			Inputs: map[string]string{"restore_time": "2026-11-26T09:00:00Z", "ptr_server": "s189t01-ittms-stg-pg"}},
			map[string]string{InputField("ptr_server"): "is the live server of itt-mentor-services/staging"}},
		{"unknown scenario", "U0INCLEAD1", FormValues{Scenario: "x"}, map[string]string{FieldScenario: "unknown scenario"}},
		{"not allowed", "U0SOMEONE1", FormValues{Scenario: "scenario-2"}, map[string]string{FieldScenario: "not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			problems, task := f.h.Submit(tt.user, tt.values)
			if (task != nil) != (tt.want == nil) {
				t.Fatalf("task %v with problems %v", task != nil, problems)
			}
			if len(problems) != len(tt.want) {
				t.Errorf("problems %v, want %v", problems, tt.want)
			}
			for field, want := range tt.want {
				if !strings.Contains(problems[field], want) {
					t.Errorf("problem on %s = %q, want %q", field, problems[field], want)
				}
			}
		})
	}
}

func TestClick(t *testing.T) {
	tests := []struct {
		name     string
		click    Click
		err      error
		wantCall string
		wantText string
		need     *runbook.SkipNeed
	}{
		{name: "skip of a step a later one depends on", click: Click{Action: ActSkip, RunID: "dr-1", StepID: "scale-down", UserID: "U1"},
			need:     &runbook.SkipNeed{Name: "previous_replicas", UsedBy: []string{"Start again"}, Help: "deployment=count pairs", Current: "web=2 worker=1"},
			wantText: "To skip it, give the value: `/dr skip scale-down previous_replicas=\"web=2 worker=1\"`"},
		{"approve", Click{Action: ActApprove, RunID: "dr-1", StepID: "scale-down", Version: 2, UserID: "U1"}, nil, "approve dr-1/scale-down U1", "", nil},
		{"mark done approves", Click{Action: ActDone, RunID: "dr-1", StepID: "inspect-ptr", Version: 2, UserID: "U1"}, nil, "approve dr-1/inspect-ptr U1", "", nil},
		{"skip", Click{Action: ActSkip, RunID: "dr-1", StepID: "s", UserID: "U1"}, nil, "skip dr-1/s U1", "", nil},
		{"retry", Click{Action: ActRetry, RunID: "dr-1", StepID: "s", UserID: "U1"}, nil, "retry dr-1/s U1", "", nil},
		{"abort", Click{Action: ActAbort, RunID: "dr-1", UserID: "U1"}, nil, "abort dr-1 U1", "", nil},
		{"refused", Click{Action: ActApprove, RunID: "dr-1", StepID: "s", UserID: "U9"}, runbook.Refusef("you are not a configured approver"), "approve dr-1/s U9", "not a configured approver", nil},
		{"failure", Click{Action: ActApprove, RunID: "dr-1", StepID: "s", UserID: "U1"}, errors.New("disk full"), "approve dr-1/s U1", "Something went wrong", nil},
		{"unknown action", Click{Action: "x.y", RunID: "dr-1"}, nil, "", "not one drbot knows", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.engine.clickErr = tt.err
			f.engine.need = tt.need
			reply := f.h.Click(context.Background(), tt.click)
			if got := strings.Join(f.engine.calls, "|"); got != tt.wantCall {
				t.Errorf("calls %q, want %q", got, tt.wantCall)
			}
			if !strings.Contains(reply.Text, tt.wantText) || (tt.wantText == "" && reply.Text != "") {
				t.Errorf("reply %q, want %q", reply.Text, tt.wantText)
			}
		})
	}
}

func TestFindRun(t *testing.T) {
	a := &runbook.Run{ID: "dr-a", Service: "s", Env: "e1", State: runbook.RunActive, Meta: map[string]string{"channel": "CA"}}
	b := &runbook.Run{ID: "dr-b", Service: "s", Env: "e2", State: runbook.RunActive, Meta: map[string]string{"channel": "CB"}}
	old := &runbook.Run{ID: "dr-old", State: runbook.RunDone, Meta: map[string]string{}}
	tests := []struct {
		name    string
		runs    []*runbook.Run
		channel string
		runID   string
		want    string // run id, or part of the refusal
	}{
		{"channel's run", []*runbook.Run{a, b}, "CB", "", "dr-b"},
		{"only active run", []*runbook.Run{a, old}, "CZ", "", "dr-a"},
		{"named, even if done", []*runbook.Run{a, old}, "", "dr-old", "dr-old"},
		{"ambiguous", []*runbook.Run{a, b}, "CZ", "", "2 runs are active"},
		{"none", []*runbook.Run{old}, "", "", "there is no active run"},
		{"unknown id", []*runbook.Run{a}, "", "dr-x", "there is no run dr-x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.runs...)
			run, err := f.h.findRun(context.Background(), tt.channel, tt.runID)
			got := ""
			if run != nil {
				got = run.ID
			} else if text, ok := runbook.IsRefusal(err); ok {
				got = text
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("findRun = %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestNotifyAndAbort(t *testing.T) {
	run := &runbook.Run{ID: "dr-a", State: runbook.RunActive, Meta: map[string]string{"channel": "CA"}}
	f := newFixture(t, run)
	_, task := f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "CA", Text: "notify Restore is running"})
	if got := task(context.Background()).Text; !strings.Contains(got, "Posted your update on dr-a") {
		t.Errorf("notify reply %q", got)
	}
	if len(f.incidents.announced) != 1 || f.incidents.announced[0] != "dr-a Restore is running" {
		t.Errorf("announced %v", f.incidents.announced)
	}
	_, task = f.h.Command(Request{UserID: "U0INCLEAD1", ChannelID: "CA", Text: "abort wrong time"})
	if got := task(context.Background()).Text; got != "Run dr-a is aborted." {
		t.Errorf("abort reply %q", got)
	}
	want := "update dr-a U0INCLEAD1 Restore is running|abort dr-a U0INCLEAD1"
	if got := strings.Join(f.engine.calls, "|"); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestChooseOpensTheChoiceForm(t *testing.T) {
	f := newFixture(t)
	reply := f.h.Click(context.Background(), Click{Action: ActChoose, RunID: "dr-1", StepID: "find-backup", Version: 3, UserID: "U0INCLEAD1"})
	if reply.Choice == nil || len(reply.Choice.Options) != 1 || reply.Choice.Version != 3 {
		t.Fatalf("reply %+v, want the choice form", reply)
	}
	reply = f.h.Choose(context.Background(), "U0INCLEAD1", *reply.Choice, "b.sql.gz")
	if got := strings.Join(f.engine.calls, "|"); got != "choose dr-1/find-backup U0INCLEAD1 b.sql.gz" || !strings.Contains(reply.Text, "Chose b.sql.gz") {
		t.Errorf("calls %q, reply %q", got, reply.Text)
	}
}
