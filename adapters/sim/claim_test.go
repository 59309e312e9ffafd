package sim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// claimingRequest is request with the engine's claim hooks on st, as step
// stepID of run runID.
func claimingRequest(st *store.Store, runID, stepID string, cp map[string]string) (runbook.Request, *map[string]string) {
	req, saved := request(stepID, workflowParams(), cp)
	req.RunID = runID
	req.Claim = func(ctx context.Context, resource string) error {
		return st.Claim(ctx, runbook.Claim{Resource: resource, RunID: runID, StepID: stepID})
	}
	req.ClaimOf = st.ClaimOf
	return req, saved
}

func workflowParams() runbook.Params {
	return runbook.Params{"repo": "DFE-Digital/itt-mentor-services", "ref": "main", "workflow": "database-backup.yml"}
}

func TestWorkflowClaimsItsSimulatedRun(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	// An earlier process dispatched runs 4101 and 4102; this one's counter
	// starts again at 4101 and must skip both.
	earlier := New(Options{})
	for _, step := range []string{"backup-flawed", "backup-ptr"} {
		req, _ := claimingRequest(st, "r0", step, nil)
		if _, err := earlier.Actions()[runbook.KindWorkflow].Run(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	s := New(Options{})
	req, saved := claimingRequest(st, "r1", "backup-ptr", nil)
	if _, err := s.Actions()[runbook.KindWorkflow].Run(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := (*saved)["run_id"]; got != "4103" {
		t.Errorf("dispatched run %s, want 4103: 4101 and 4102 are claimed by r0", got)
	}
	c, err := st.ClaimOf(ctx, "sim-github-run:dfe-digital/itt-mentor-services:4103")
	if err != nil || c.RunID != "r1" || c.StepID != "backup-ptr" {
		t.Errorf("claim of run 4103 = %+v (%v), want r1/backup-ptr", c, err)
	}

	// Re-attaching claims again: a no-op for the same step...
	again, _ := claimingRequest(st, "r1", "backup-ptr", map[string]string{"run_id": "4103"})
	if _, err := s.Actions()[runbook.KindWorkflow].Run(ctx, again); err != nil {
		t.Errorf("re-attach by the same step: %v", err)
	}
	// ...and refused for another step's run.
	other, _ := claimingRequest(st, "r1", "backup-flawed", map[string]string{"run_id": "4103"})
	if _, err := s.Actions()[runbook.KindWorkflow].Run(ctx, other); !errors.Is(err, runbook.ErrClaimed) {
		t.Errorf("re-attach to another step's run = %v, want ErrClaimed", err)
	}
}
