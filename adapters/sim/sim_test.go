package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
)

// request builds a Request whose Save keeps the checkpoint, like the engine.
func request(step string, params runbook.Params, cp map[string]string) (runbook.Request, *map[string]string) {
	saved := cp
	return runbook.Request{
		StepID: step, Params: params, Checkpoint: cp,
		Save:     func(_ context.Context, c map[string]string) error { saved = c; return nil },
		Progress: func(context.Context, string, ...runbook.Link) {},
	}, &saved
}

func TestSimulatedActions(t *testing.T) {
	ctx := context.Background()
	s := New(Options{})
	acts := s.Actions()

	// Scale down remembers the seed's counts (web 2, worker 1) and saves them first.
	down, saved := request("scale-down", runbook.Params{"namespace": "ns", "deployments": []any{"web", "worker"}, "replicas": 0}, nil)
	res, err := acts["kubernetes.scale"].Run(ctx, down)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Remember.(map[string]int); got["web"] != 2 || got["worker"] != 1 || (*saved)["web"] != "2" {
		t.Fatalf("remembered %v, saved %v", got, *saved)
	}
	// A re-attach returns the saved counts, not the zeroed ones.
	again, _ := request("scale-down", down.Params, *saved)
	res, _ = acts["kubernetes.scale"].Run(ctx, again)
	if got := res.Remember.(map[string]int); got["web"] != 2 {
		t.Errorf("re-attach remembered %v", got)
	}
	// Scale up restores a map of counts.
	up, _ := request("scale-up", runbook.Params{"namespace": "ns", "replicas": map[string]any{"web": 2.0, "worker": 1.0}}, nil)
	if _, err := acts["kubernetes.scale"].Run(ctx, up); err != nil || s.Replicas("ns", "web") != 2 || s.Replicas("ns", "worker") != 1 {
		t.Fatalf("scale up: %v, web %d", err, s.Replicas("ns", "web"))
	}

	// A workflow with a checkpoint re-attaches without a second dispatch.
	wf := runbook.Params{"repo": "o/r", "ref": "main", "workflow": "backup.yml", "inputs": map[string]any{"environment": "staging"}}
	first, cp := request("backup", wf, nil)
	if _, err := acts["github.workflow"].Run(ctx, first); err != nil {
		t.Fatal(err)
	}
	second, _ := request("backup", wf, *cp)
	if _, err := acts["github.workflow"].Run(ctx, second); err != nil {
		t.Fatal(err)
	}
	if d, r := s.Count(Call{What: "dispatch"}), s.Count(Call{What: "reattach"}); d != 1 || r != 1 {
		t.Errorf("%d dispatches, %d re-attaches", d, r)
	}

	// Bad parameters are refused like the real adapters refuse them.
	bad, _ := request("freeze", runbook.Params{"repo": "o/r", "branch": "main", "count": 7}, nil)
	if _, err := acts["github.required_approvals"].Run(ctx, bad); err == nil || !strings.Contains(err.Error(), "0 to 6") {
		t.Errorf("count 7: %v", err)
	}
	if _, ok := acts["github.workflow"].(runbook.Simulator); !ok {
		t.Error("simulated actions must say so")
	}
}

func TestFailWorkflow(t *testing.T) {
	s := New(Options{FailWorkflow: []string{"deploy.yml"}})
	req, _ := request("deploy", runbook.Params{"repo": "o/r", "ref": "main", "workflow": "deploy.yml"}, nil)
	if _, err := s.Actions()["github.workflow"].Run(context.Background(), req); err == nil || !strings.Contains(err.Error(), "concluded failure") {
		t.Errorf("got %v", err)
	}
}
