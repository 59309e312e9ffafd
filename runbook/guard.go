package runbook

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Resource is a real thing a destructive step acts on.
type Resource struct {
	Type string // e.g. ResourcePostgresServer
	Name string
}

// Resource types destructive kinds name.
const ResourcePostgresServer = "Postgres server"

// LiveResource is a resource a configured environment runs on. No
// destructive step may target one, whatever its runbook says.
type LiveResource struct {
	Resource
	Service, Env string
}

// Guard holds the live resources of every configured environment.
type Guard []LiveResource

// live returns the live resource r is, if any. Names compare without case:
// Azure server names are case-insensitive DNS labels.
func (g Guard) live(r Resource) (LiveResource, bool) {
	for _, l := range g {
		if l.Type == r.Type && strings.EqualFold(l.Name, r.Name) {
			return l, true
		}
	}
	return LiveResource{}, false
}

// check refuses a destructive step whose decoded parameters target a live
// resource.
func (g Guard) check(step Step, kind Kind, spec any) error {
	if kind.Targets == nil {
		return nil
	}
	for _, r := range kind.Targets(spec) {
		if l, ok := g.live(r); ok {
			return fmt.Errorf("step %s (%q) would %s %s %s, the live %s of %s/%s; drbot never aims a destructive step at a live resource",
				step.ID, step.Title, kind.Verb, r.Type, r.Name, strings.ToLower(r.Type), l.Service, l.Env)
		}
	}
	return nil
}

// checkServerInput refuses a server-name input that names a live server
// (e.g. ptr_server = the live server: the PTR copy's backup would back up
// the live server and its delete would aim at it).
func (g Guard) checkServerInput(in Input, name string) error {
	if l, ok := g.live(Resource{Type: ResourcePostgresServer, Name: name}); ok {
		return fmt.Errorf("input %s: %q is the live server of %s/%s; give a new name for the copy (e.g. %s-ptr2)", in.Name, name, l.Service, l.Env, l.Name)
	}
	return nil
}

// placeholderPattern matches the display value of a remembered value that is
// not known yet (see data).
var placeholderPattern = regexp.MustCompile(`<[a-z0-9_]+, remembered by step [A-Za-z0-9_-]+>`)

func placeholder(name, stepID string) string {
	return fmt.Sprintf("<%s, remembered by step %s>", name, stepID)
}

// pending reports whether a rendered value still holds a placeholder: such a
// step's parameters are known, and checked, only when it runs.
func pending(v any) bool {
	switch x := v.(type) {
	case string:
		return placeholderPattern.MatchString(x)
	case Params:
		return pending(map[string]any(x))
	case map[string]any:
		for _, e := range x {
			if pending(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if pending(e) {
				return true
			}
		}
	}
	return false
}

// checkSteps checks every rendered step whose parameters are known now.
func (e *Engine) checkSteps(rb *Runbook, params []Params) error {
	var problems []error
	for i, step := range rb.Steps {
		if i < len(params) && params[i] != nil && !pending(params[i]) {
			problems = append(problems, e.checkStep(step, params[i]))
		}
	}
	return errors.Join(problems...)
}

// checkStep decodes a step's rendered parameters with its kind's contract
// and checks its targets against the guard: a value the adapter would
// refuse, or a live target, stops the step before anything is called.
func (e *Engine) checkStep(step Step, params Params) error {
	kind, ok := Kinds[step.Action]
	if !ok || kind.Decode == nil {
		return nil
	}
	spec, err := kind.Decode(params)
	if err != nil {
		return fmt.Errorf("step %s (%q): %w", step.ID, step.Title, err)
	}
	return e.opts.Guard.check(step, kind, spec)
}

// CheckInputs applies the guard to parsed inputs (ParseInputs) that name
// servers: each error names its input, like ParseInputs'.
func (g Guard) CheckInputs(rb *Runbook, inputs map[string]any) error {
	var errs []error
	for _, in := range rb.Inputs {
		if name, _ := inputs[in.Name].(string); in.Type == InputServer && name != "" {
			errs = append(errs, g.checkServerInput(in, name))
		}
	}
	return errors.Join(errs...)
}

// families returns the adapter families of a registry (the part of each
// kind before the dot) and those of them that are simulated, both sorted.
func families(reg Registry) (all, simulated []string) {
	sim := map[string]bool{}
	seen := map[string]bool{}
	for kind, act := range reg {
		family, _, _ := strings.Cut(kind, ".")
		seen[family] = true
		if isSimulated(act) {
			sim[family] = true
		}
	}
	return SortedKeys(seen), SortedKeys(sim)
}

// SetupError refuses to go on with a run here because this process runs
// steps differently from how the run started (a live run on simulated
// adapters, or the other way round).
type SetupError struct {
	RunID     string
	Run, Here Setup
}

func (e *SetupError) Error() string {
	return fmt.Sprintf("run %s was started with %s; this drbot runs %s, so it may not go on with it (it would %s)",
		e.RunID, e.Run.describe(), e.Here.describe(), e.consequence())
}

func (e *SetupError) consequence() string {
	if e.Run.Live() && len(e.Here.Simulated) > len(e.Run.Simulated) {
		return "report a recovery that never happened"
	}
	return "touch real systems the run never meant to"
}

// describe says which adapter families are simulated, in words.
func (s Setup) describe() string {
	switch {
	case len(s.Simulated) == 0:
		return "every adapter real"
	case !s.Live():
		return "every adapter simulated"
	}
	return "simulated " + strings.Join(s.Simulated, ", ") + " (the rest real)"
}

// sameSetup refuses to act on a run that started with other simulated
// families than this engine has. Runs from before setups were recorded go
// on as before.
func (e *Engine) sameSetup(run *Run) error {
	if !run.Setup.Known() || slices.Equal(run.Setup.Simulated, e.opts.Setup.Simulated) {
		return nil
	}
	se := &SetupError{RunID: run.ID, Run: run.Setup, Here: e.opts.Setup}
	return &Refusal{Text: se.Error(), Err: se}
}

// ConfirmProductionInput is the workflow input by which the team's backup,
// restore and PTR workflows refuse to touch production unless it is "true".
const ConfirmProductionInput = "confirm-production"

// Approvals is how many different people must approve a step with these
// rendered parameters: the runbook's number, and at least two for a
// workflow that confirms a production change. The confirmation then always
// comes from a second person's approval, never from a flag or a default.
func Approvals(step Step, params Params) int {
	if step.Approvals >= 2 || step.Action != KindWorkflow {
		return step.Approvals
	}
	inputs, _ := params.StringMap("inputs")
	for k, v := range inputs {
		if strings.EqualFold(k, ConfirmProductionInput) && strings.EqualFold(strings.TrimSpace(v), "true") {
			return 2
		}
	}
	return step.Approvals
}

// approvals is Approvals for a step of a stored run.
func (e *Engine) approvals(ctx context.Context, run *Run, step Step) (int, error) {
	steps, err := e.opts.Store.Steps(ctx, run.ID)
	if err != nil {
		return 0, fmt.Errorf("steps of %s: %w", run.ID, err)
	}
	params, err := e.render(run, step, steps)
	if err != nil {
		return step.Approvals, nil // the step fails on the same error when it runs
	}
	return Approvals(step, params), nil
}

// Setup returns how this engine runs steps (what new runs record).
func (e *Engine) Setup() Setup { return e.opts.Setup }
