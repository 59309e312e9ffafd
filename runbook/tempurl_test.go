package runbook_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/runbook"
)

// configuredTempURL is examples/drbot.yaml's temp_url of itt-mentor-services
// staging: the fallback.
const configuredTempURL = "https://track-and-pay-temp.test.teacherservices.cloud"

// maintenanceRun wraps the simulated github.workflow and keeps the real
// adapter's contract for the temporary URL: with capture_url set, the step
// remembers what the run reported ("" when nothing matched); without it,
// nothing.
type maintenanceRun struct {
	next     runbook.Action
	reported string

	mu       sync.Mutex
	captures map[string]any // step id -> the capture_url it was given
}

func (m *maintenanceRun) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	m.mu.Lock()
	if c, ok := req.Params["capture_url"]; ok {
		m.captures[req.StepID] = c
	}
	m.mu.Unlock()
	res, err := m.next.Run(ctx, req)
	if err != nil {
		return res, err
	}
	if req.Params.StringOr("capture_url", "") != "" {
		res.Remember = m.reported
	}
	return res, nil
}

// checkRecorder records the URL each http.check step was given.
type checkRecorder struct {
	next runbook.Action
	mu   sync.Mutex
	urls map[string]any // step id -> url
}

func (c *checkRecorder) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	c.mu.Lock()
	c.urls[req.StepID] = req.Params["url"]
	c.mu.Unlock()
	return c.next.Run(ctx, req)
}

func TestRememberedTempURLWinsOverConfig(t *testing.T) {
	const reported = "https://itt-mentor-services-temp.test.teacherservices.cloud"
	tests := []struct {
		name       string
		configured bool   // temp_url_from_maintenance
		reported   string // what the maintenance run's annotations gave
		skip       bool   // a person skips enable-maintenance
		want       string
	}{
		{name: "the URL the maintenance run reported wins", configured: true, reported: reported, want: reported},
		{name: "nothing reported: drbot.yaml's URL", configured: true, reported: "", want: configuredTempURL},
		{name: "not configured: drbot.yaml's URL", configured: false, reported: reported, want: configuredTempURL},
		{name: "enable-maintenance skipped: drbot.yaml's URL", configured: true, reported: reported, skip: true, want: configuredTempURL},
	}
	scenarios := []struct {
		id     string
		inputs map[string]string
	}{
		{"scenario-1", nil},
		{"scenario-2", map[string]string{"restore_time": "2026-11-26 09:00 Europe/London"}},
	}
	for _, sc := range scenarios {
		for _, tt := range tests {
			t.Run(sc.id+"/"+tt.name, func(t *testing.T) {
				workflow := &maintenanceRun{reported: tt.reported, captures: map[string]any{}}
				check := &checkRecorder{urls: map[string]any{}}
				f := newFixture(t, func(o *runbook.Options) {
					workflow.next, o.Actions["github.workflow"] = o.Actions["github.workflow"], workflow
					check.next, o.Actions["http.check"] = o.Actions["http.check"], check
				})
				svc := f.cfg.Services["itt-mentor-services"]
				env := svc.Environments["staging"]
				env.TempURLFromMaintenance = tt.configured
				svc.Environments["staging"] = env

				ctx := context.Background()
				run, err := f.eng.Start(ctx, f.request(t, sc.id, sc.inputs))
				if err != nil {
					t.Fatal(err)
				}
				if tt.skip {
					f.approveUntil(t, run.ID, "enable-maintenance")
					st := f.step(t, run.ID, "enable-maintenance")
					if err := f.eng.Skip(ctx, run.ID, st.StepID, st.Version, "U1", "maintenance page already on"); err != nil {
						t.Fatal(err)
					}
				}
				approveThrough(t, f, run.ID, "check-app")

				if st := f.step(t, run.ID, "check-app"); st.State != runbook.Done {
					t.Fatalf("check-app is %s: %s", st.State, st.Error)
				}
				if got := check.urls["check-app"]; got != tt.want {
					t.Errorf("http.check url = %v, want %s", got, tt.want)
				}
				v, err := f.eng.View(ctx, run.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range v.Steps {
					if s.Step.ID == "confirm-data" && !strings.Contains(s.Params.StringOr("instructions", ""), "Open "+tt.want+" and") {
						t.Errorf("confirm-data instructions = %q, want them to open %s", s.Params["instructions"], tt.want)
					}
				}

				wantCapture := ""
				if tt.configured {
					wantCapture = config.TempURLPattern
				}
				if got, ok := workflow.captures["enable-maintenance"]; !tt.skip && (!ok || got != wantCapture) {
					t.Errorf("enable-maintenance capture_url = %#v, want %q", got, wantCapture)
				}
				remembered, ok := v.Run.Remembered["maintenance_temp_url"]
				switch {
				case tt.configured && !tt.skip && (!ok || remembered != tt.reported):
					t.Errorf("remembered maintenance_temp_url = %#v, want %q", remembered, tt.reported)
				case (!tt.configured || tt.skip) && ok:
					t.Errorf("remembered maintenance_temp_url = %#v, want nothing", remembered)
				}
			})
		}
	}
}

// approveThrough approves every step up to and including stepID, with a
// second approver where a step needs one.
func approveThrough(t *testing.T, f *fixture, runID, stepID string) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		if f.step(t, runID, stepID).State.Terminal() {
			return
		}
		v, err := f.eng.View(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := v.Current()
		if !ok {
			t.Fatalf("the run ended before %s", stepID)
		}
		if cur.State.State != runbook.AwaitingApproval {
			t.Fatalf("step %s is %s: %s", cur.Step.ID, cur.State.State, cur.State.Error)
		}
		actor := "U0APPROVER1"
		if len(cur.State.Approvers) > 0 {
			actor = "U0APPROVER2"
		}
		if err := f.eng.Approve(ctx, runID, cur.Step.ID, cur.State.Version, actor); err != nil {
			t.Fatalf("approve %s: %v", cur.Step.ID, err)
		}
	}
	t.Fatalf("%s not reached in 100 clicks", stepID)
}
