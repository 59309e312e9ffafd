package runbook

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Observer is implemented by actions that can read, changing nothing, the
// value a step of their kind would remember (the current replica counts, the
// current required approvals). When such a step is skipped, that reading is
// offered as the value the later steps use.
type Observer interface {
	Observe(ctx context.Context, req Request) (any, error)
}

// Memory says how a kind's remembered value is typed by a person.
type Memory struct {
	Help   string // e.g. "deployment=count pairs, e.g. web=2 worker=1"
	Parse  func(text string) (any, error)
	Format func(v any) string
}

// SkipNeed is what skipping a step would leave unknown: the value it would
// have remembered, which later steps use.
type SkipNeed struct {
	Name    string   // the remembered name, e.g. previous_replicas
	UsedBy  []string // titles of the later steps that use it
	Help    string   // how to write the value
	Current string   // the system's value now, written as an answer; "" if unread
	ReadErr error    // why Current could not be read, if it could not
}

// Text explains the need to a person.
func (n *SkipNeed) Text(step Step) string {
	s := fmt.Sprintf("skipping %q leaves %s unknown, and %s needs it; give the value to use instead (%s)",
		step.Title, n.Name, strings.Join(quoteAll(n.UsedBy), " and "), n.Help)
	switch {
	case n.Current != "":
		s += fmt.Sprintf("; the system holds %s=%s now", n.Name, n.Current)
	case n.ReadErr != nil:
		s += fmt.Sprintf("; drbot could not read the current value: %v", n.ReadErr)
	}
	return s
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// SkipNeeds returns what skipping a step would leave unknown, or nil when
// nothing later depends on it (or it already remembered its value).
func (e *Engine) SkipNeeds(ctx context.Context, runID, stepID string) (*SkipNeed, error) {
	run, rb, step, err := e.runStep(ctx, runID, stepID)
	if err != nil {
		return nil, err
	}
	if step.Remember == "" {
		return nil, nil
	}
	if _, kept := run.Remembered[step.Remember]; kept {
		return nil, nil
	}
	used := usersOf(rb, step)
	if len(used) == 0 {
		return nil, nil
	}
	need := &SkipNeed{Name: step.Remember, UsedBy: used, Help: "a value"}
	mem := Kinds[step.Action].Memory
	if mem != nil {
		need.Help = mem.Help
	}
	v, err := e.observe(ctx, run, step)
	switch {
	case err != nil:
		need.ReadErr = err
	case v != nil && mem != nil:
		need.Current = mem.Format(v)
	case v != nil:
		need.Current = fmt.Sprint(v)
	}
	return need, nil
}

// usersOf lists the titles of the steps after step whose templates read
// .remember.<step's name>.
func usersOf(rb *Runbook, step Step) []string {
	var out []string
	after := false
	for _, s := range rb.Steps {
		if s.ID == step.ID {
			after = true
			continue
		}
		if after && readsRemembered(s, step.Remember) {
			out = append(out, s.Title)
		}
	}
	return out
}

func readsRemembered(s Step, name string) bool {
	srcs := []string{s.When}
	var collect func(v any)
	collect = func(v any) {
		switch x := v.(type) {
		case string:
			srcs = append(srcs, x)
		case map[string]any:
			for _, e := range x {
				collect(e)
			}
		case []any:
			for _, e := range x {
				collect(e)
			}
		}
	}
	collect(s.With)
	for _, v := range s.Vars {
		srcs = append(srcs, v)
	}
	for _, src := range srcs {
		refs, _ := templateRefs(src)
		for _, r := range refs {
			if len(r) >= 2 && r[0] == "remember" && r[1] == name {
				return true
			}
		}
	}
	return false
}

// observe asks the step's action for the current value, if it can tell.
func (e *Engine) observe(ctx context.Context, run *Run, step Step) (any, error) {
	o, ok := e.opts.Actions[step.Action].(Observer)
	if !ok {
		return nil, nil
	}
	params, err := e.checkedParams(ctx, run, step)
	if err != nil {
		return nil, err
	}
	return o.Observe(ctx, Request{RunID: run.ID, StepID: step.ID, Params: params})
}

// runStep loads a run, its pinned runbook and one of its steps.
func (e *Engine) runStep(ctx context.Context, runID, stepID string) (*Run, *Runbook, Step, error) {
	run, rb, err := e.load(ctx, runID)
	if err != nil {
		return nil, nil, Step{}, err
	}
	step, ok := rb.Step(stepID)
	if !ok {
		return nil, nil, Step{}, Refusef("run %s has no step %q", runID, stepID)
	}
	return run, rb, step, nil
}

// checkedParams renders a step's parameters as of now and checks them with
// its kind's contract and the guard, for reading the system about it.
func (e *Engine) checkedParams(ctx context.Context, run *Run, step Step) (Params, error) {
	steps, err := e.opts.Store.Steps(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("steps of %s: %w", run.ID, err)
	}
	params, err := e.render(run, step, steps)
	if err != nil {
		return nil, fmt.Errorf("render parameters: %w", err)
	}
	if err := e.checkStep(step, params); err != nil {
		return nil, err
	}
	return params, nil
}

// parseRemembered reads a value a person typed for a skipped step.
func parseRemembered(step Step, text string) (any, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("the value is empty")
	}
	if mem := Kinds[step.Action].Memory; mem != nil {
		return mem.Parse(text)
	}
	return text, nil
}

// replicaMemory is kubernetes.scale's remembered value: deployment -> count.
var replicaMemory = &Memory{
	Help: "deployment=count pairs, e.g. web=2 worker=1",
	Parse: func(text string) (any, error) {
		out := map[string]int{}
		for _, pair := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' }) {
			name, count, ok := strings.Cut(pair, "=")
			n, err := strconv.Atoi(count)
			if !ok || err != nil || n < 0 || !dnsLabel.MatchString(name) {
				return nil, fmt.Errorf("%q is not deployment=count (e.g. web=2)", pair)
			}
			out[name] = n
		}
		return out, nil
	},
	Format: func(v any) string {
		m, ok := asMap(v)
		if !ok {
			return fmt.Sprint(v)
		}
		parts := make([]string, 0, len(m))
		for _, k := range SortedKeys(m) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
		}
		return strings.Join(parts, " ")
	},
}

// approvalsMemory is github.required_approvals' remembered value: a count.
var approvalsMemory = &Memory{
	Help: fmt.Sprintf("a number of required approvals, 0 to %d", MaxRequiredApprovals),
	Parse: func(text string) (any, error) {
		n, err := strconv.Atoi(text)
		if err != nil || n < 0 || n > MaxRequiredApprovals {
			return nil, fmt.Errorf("%q is not a number of required approvals (0 to %d)", text, MaxRequiredApprovals)
		}
		return n, nil
	},
	Format: func(v any) string { return fmt.Sprint(v) },
}
