package handlers

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/preflight"
)

// fakePreflight answers a fixed result and records the filters asked.
type fakePreflight struct {
	mu      sync.Mutex
	filters []preflight.Filter
	res     preflight.Result
}

func (p *fakePreflight) Run(_ context.Context, f preflight.Filter) preflight.Result {
	p.mu.Lock()
	p.filters = append(p.filters, f)
	p.mu.Unlock()
	return p.res
}

var failingResult = preflight.Result{At: now, Tables: []preflight.Table{{Service: "itt-mentor-services", Env: "staging", Checks: []preflight.Check{
	{Family: "github", Name: "repository DFE-Digital/itt-mentor-services", Status: preflight.OK, Detail: "found"},
	{Family: "github", Name: "workflow deploy.yml", Status: preflight.Fail, Detail: `input environment: drbot would send "production", not among the options [qa, staging]`,
		Fix: "add \"production\" to the options of environment (.github/workflows/deploy.yml line 7)"},
	{Family: "azure", Name: "all checks", Status: preflight.Skip, Detail: "no subscription"},
}}}}

func TestPreflightCommand(t *testing.T) {
	f := newFixture(t)
	p := &fakePreflight{res: failingResult}
	f.h.opts.Preflight = p

	reply, task := f.h.Command(Request{UserID: "U0SOMEONE1", Text: "preflight itt-mentor-services staging"})
	if task == nil || !strings.Contains(reply.Text, "Running preflight") {
		t.Fatalf("ack %q, task %v", reply.Text, task != nil)
	}
	text := task(context.Background()).Text
	for _, want := range []string{"*itt-mentor-services/staging* — 1 fail, 0 warn, 1 ok, 1 skipped", "❌ github: workflow deploy.yml", "→ add \"production\"", "⏭️ azure: all checks — no subscription"} {
		if !strings.Contains(text, want) {
			t.Errorf("reply lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "repository") {
		t.Errorf("an ok check is listed:\n%s", text)
	}
	if got := p.filters; len(got) != 1 || got[0] != (preflight.Filter{Service: "itt-mentor-services", Env: "staging"}) {
		t.Errorf("filters = %+v", got)
	}

	if r, task := f.h.Command(Request{UserID: "U0SOMEONE1", Text: "preflight service=nope"}); task != nil || !strings.Contains(r.Text, `Unknown service "nope"`) {
		t.Errorf("unknown service: %q", r.Text)
	}
	_, task = f.h.Command(Request{UserID: "U0SOMEONE1", Text: "preflight"})
	task(context.Background())
	if last := p.filters[len(p.filters)-1]; last != (preflight.Filter{Slack: true}) {
		t.Errorf("bare /dr preflight filter = %+v, want everything and Slack", last)
	}
}

// TestStartCarriesPreflightWarnings: a failed check is a warning in the
// start's reply; the run starts all the same.
func TestStartCarriesPreflightWarnings(t *testing.T) {
	f := newFixture(t)
	f.h.opts.Preflight = &fakePreflight{res: failingResult}
	_, task := f.h.Command(Request{UserID: "U0INCLEAD1", Text: "start scenario-2 service=itt-mentor-services env=staging " + restore})
	text := task(context.Background()).Text
	want := `⚠️ preflight: itt-mentor-services/staging github: workflow deploy.yml (fail): input environment: drbot would send "production"`
	if !strings.Contains(text, "Started run dr-1") || !strings.Contains(text, want) {
		t.Errorf("reply:\n%s\nwant it started with %q", text, want)
	}
	if last := f.engine.calls[len(f.engine.calls)-1]; !strings.HasPrefix(last, "note dr-1 preflight at the start: 1 fail, 0 warn, 1 ok, 1 skipped") {
		t.Errorf("the run's record lacks the preflight: calls %q", f.engine.calls)
	}
}
