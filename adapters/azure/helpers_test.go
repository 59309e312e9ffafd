package azure

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/runbook"
)

// Names of the test environments (examples/drbot.yaml's staging and
// production of itt-mentor-services).
const (
	rg         = "s189t01-ittms-stg-rg"
	live       = "s189t01-ittms-stg-pg"
	liveProd   = "s189p01-ittms-pd-pg"
	ptr        = "s189t01-ittms-stg-pg-ptr"
	sub        = azuretest.Subscription
	otherSubID = "11111111-2222-3333-4444-555555555555"
)

// now is the tests' fixed clock: 2026-06-01 10:00 UTC (11:00 BST).
var now = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// london is the display zone of the tests, as in drbot.yaml.
var london = mustZone("Europe/London")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// fixture is a Client on the fake servers, with injected failures.
type fixture struct {
	servers *azuretest.Servers
	inject  *azuretest.Inject
	client  *Client
}

func newFixture(t *testing.T, failures ...azuretest.Failure) *fixture {
	t.Helper()
	f := &fixture{servers: azuretest.NewServers(), inject: &azuretest.Inject{Responses: failures}}
	c, err := New(Options{
		Credential:   azuretest.Credential(),
		Subscription: sub,
		Protected:    []string{live, liveProd},
		Location:     london,
		Logger:       zaptest.NewLogger(t),
		Clock:        fixedClock{now},
		PollInterval: time.Millisecond,
		ARM:          azuretest.ClientOptions(f.servers, f.inject),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

// recorder keeps what a step reported and saved.
type recorder struct {
	mu          sync.Mutex
	progress    []string
	checkpoints []map[string]string
}

func (r *recorder) request(kind string, params runbook.Params, checkpoint map[string]string) runbook.Request {
	return runbook.Request{
		RunID: "dr-20260601-1000-ab12", StepID: kind, Attempt: 1, Actor: "U0INCLEAD1", Params: params, Checkpoint: checkpoint,
		Save: func(_ context.Context, cp map[string]string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.checkpoints = append(r.checkpoints, cp)
			return nil
		},
		Progress: func(_ context.Context, text string, _ ...runbook.Link) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.progress = append(r.progress, text)
		},
	}
}

// run runs kind's real action with params.
func (f *fixture) run(t *testing.T, kind string, params runbook.Params) (runbook.Result, *recorder, error) {
	t.Helper()
	rec := &recorder{}
	res, err := f.client.Actions()[kind].Run(context.Background(), rec.request(kind, params, nil))
	return res, rec, err
}

func serverParams(server string) runbook.Params {
	return runbook.Params{"resource_group": rg, "server": server, "subscription": ""}
}
