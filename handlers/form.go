package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/drbot-dev/drbot/runbook"
)

// Form fields; the bot names its modal blocks after them, so validation
// errors land on the right field.
const (
	FieldScenario = "scenario"
	FieldTarget   = "target"
	FieldComms    = "comms"
	// The playbook's declaration.
	FieldPriority    = "priority"
	FieldKind        = "kind"
	FieldTech        = "tech"
	FieldDescription = "description"
	fieldInput       = "input."
)

// InputField is the form field of a runbook input.
func InputField(name string) string { return fieldInput + name }

// InputName is the runbook input of a form field, if it is one.
func InputName(field string) (string, bool) {
	return strings.CutPrefix(field, fieldInput)
}

// StartForm is the /dr start modal: choices come from the catalog and the
// config, values from what was typed.
type StartForm struct {
	Scenarios   []Choice
	Scenario    string // selected scenario, "" for none
	Targets     []Target
	Service     string // selected service and env, "" for none
	Env         string
	Declaration             // priority, kind, leads and description picked so far
	Inputs      []FormInput // the selected scenario's inputs
	ChannelID   string      // where the command was typed, for the reply
	Note        string      // shown above the fields (e.g. what is missing)
}

// Choice is an option of a select.
type Choice struct{ Value, Label string }

// Target is a service with its environments.
type Target struct {
	Service string
	Envs    []string
}

// FormInput is a runbook input with the value typed so far.
type FormInput struct {
	runbook.Input
	Value string
}

// FormValues are a form's values as submitted (times as RFC 3339).
type FormValues struct {
	Scenario, Service, Env string
	Declaration
	Inputs    map[string]string
	ChannelID string
}

// Form builds the start form for values typed so far.
func (h *Handler) Form(v FormValues) StartForm {
	f := StartForm{Scenario: v.Scenario, Service: v.Service, Env: v.Env, Declaration: v.Declaration, ChannelID: v.ChannelID}
	for _, id := range h.opts.Catalog.IDs() {
		f.Scenarios = append(f.Scenarios, Choice{Value: id, Label: id + ": " + h.opts.Catalog[id].Title})
	}
	envs := h.opts.Scopes.Environments()
	for _, svc := range runbook.SortedKeys(envs) {
		f.Targets = append(f.Targets, Target{Service: svc, Envs: envs[svc]})
	}
	if rb, ok := h.opts.Catalog[v.Scenario]; ok {
		for _, in := range rb.Inputs {
			f.Inputs = append(f.Inputs, FormInput{Input: in, Value: v.Inputs[in.Name]})
		}
		if missing := missingInputs(rb, v.Inputs); len(missing) > 0 {
			f.Note = "Still needed: " + strings.Join(missing, ", ") + "."
		}
	} else if v.Scenario != "" {
		f.Scenario = ""
	}
	if _, ok := envs[v.Service]; !ok {
		f.Service, f.Env = "", ""
	} else if !slices.Contains(envs[v.Service], v.Env) {
		f.Env = ""
	}
	return f
}

// Submit validates a submitted start form without I/O, so the problems can go
// back in the ack (keyed by field); when there are none it returns the start
// as a Task.
func (h *Handler) Submit(userID string, v FormValues) (map[string]string, Task) {
	problems := map[string]string{}
	if r, denied := h.deniedFast(h.opts.Approvers, userID, "start a run"); denied {
		problems[FieldScenario] = r.Text
		return problems, nil
	}
	rb, err := h.opts.Catalog.Get(v.Scenario)
	if err != nil {
		problems[FieldScenario] = err.Error()
		return problems, nil
	}
	if v.Service == "" || v.Env == "" {
		problems[FieldTarget] = "Pick the service and environment."
	} else if msg := h.checkTarget(v.Service, v.Env); msg != "" {
		problems[FieldTarget] = msg
	} else if _, err := h.opts.Scopes.Scope(v.Service, v.Env); err != nil {
		problems[FieldTarget] = err.Error()
	}
	inputs := map[string]string{}
	for k, val := range v.Inputs {
		if strings.TrimSpace(val) != "" {
			inputs[k] = val
		}
	}
	if _, err := v.Declaration.declare(rb, inputs, userID); err != nil {
		problems[declarationField(err.Error())] = err.Error()
	}
	if err := h.checkInputs(rb, inputs); err != nil {
		for _, e := range splitErrors(err) {
			problems[inputFieldOf(rb, e.Error())] = e.Error()
		}
	}
	if len(problems) > 0 {
		return problems, nil
	}
	sr := StartRequest{Runbook: rb, Service: v.Service, Env: v.Env, Inputs: inputs, UserID: userID, Declaration: v.Declaration}
	return nil, func(ctx context.Context) Reply { return h.Start(ctx, sr) }
}

// declarationField is the form field a declaration problem is about.
func declarationField(msg string) string {
	switch {
	case strings.HasPrefix(msg, "priority"):
		return FieldPriority
	case strings.Contains(msg, "description"):
		return FieldDescription
	}
	return FieldKind
}

// inputFieldOf finds the input an error of ParseInputs is about ("input NAME
// …" or "unknown input "NAME""); others go on the scenario field.
func inputFieldOf(rb *runbook.Runbook, msg string) string {
	for _, in := range rb.Inputs {
		if strings.HasPrefix(msg, "input "+in.Name+" ") || strings.HasPrefix(msg, "input "+in.Name+":") {
			return InputField(in.Name)
		}
	}
	return FieldScenario
}

// String describes the values, for logs.
func (v FormValues) String() string {
	return fmt.Sprintf("%s %s/%s %v", v.Scenario, v.Service, v.Env, runbook.SortedKeys(v.Inputs))
}
