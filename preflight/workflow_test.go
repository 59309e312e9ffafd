package preflight

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseWorkflowOnForms(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		trigger bool
		line    int
		inputs  []string
		wantErr string
	}{
		{name: "string", yaml: "name: x\non: workflow_dispatch\njobs: {}\n", trigger: true, line: 2},
		{name: "other string", yaml: "on: push\n"},
		{name: "flow list", yaml: "on: [push, workflow_dispatch]\n", trigger: true, line: 1},
		{name: "block list", yaml: "on:\n  - push\n  - workflow_dispatch\n", trigger: true, line: 3},
		{name: "list without", yaml: "on: [push, pull_request]\n"},
		{name: "map empty", yaml: "on:\n  push:\n  workflow_dispatch:\n", trigger: true, line: 3},
		{name: "map with inputs", yaml: "on:\n  workflow_dispatch:\n    inputs:\n      environment:\n        required: true\n        type: choice\n        options: [qa, staging]\n      sha:\n        type: string\n",
			trigger: true, line: 2, inputs: []string{"environment", "sha"}},
		{name: "map without", yaml: "on:\n  push:\n    branches: [main]\n"},
		{name: "quoted on", yaml: "\"on\":\n  workflow_dispatch: {}\n", trigger: true, line: 2},
		{name: "no on", yaml: "name: x\njobs: {}\n"},
		{name: "inputs null", yaml: "on:\n  workflow_dispatch:\n    inputs:\n", trigger: true, line: 2},
		{name: "not yaml", yaml: "on: [\n", wantErr: "not valid YAML"},
		{name: "not a mapping", yaml: "- a\n", wantErr: "mapping"},
		{name: "bad required", yaml: "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        required: maybe\n", wantErr: "required"},
		{name: "bad on", yaml: "on: {workflow_dispatch: [1]}\n", wantErr: "workflow_dispatch should be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseWorkflow([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Trigger != tt.trigger || d.Line != tt.line {
				t.Errorf("Trigger, Line = %v, %d; want %v, %d", d.Trigger, d.Line, tt.trigger, tt.line)
			}
			if got := sortedKeys(d.Inputs); !slices.Equal(got, tt.inputs) && !(len(got) == 0 && len(tt.inputs) == 0) {
				t.Errorf("inputs = %v, want %v", got, tt.inputs)
			}
		})
	}
}

func TestParseWorkflowInputDetails(t *testing.T) {
	d, err := ParseWorkflow([]byte(`on:
  workflow_dispatch:
    inputs:
      confirm-production:
        description: Must be set to true if restoring production
        required: true
        default: 'false'
        type: choice
        options:
          - 'false'
          - 'true'
      backup-file:
        required: true
`))
	if err != nil {
		t.Fatal(err)
	}
	c := d.Inputs["confirm-production"]
	if !c.Required || c.Default != "false" || c.Type != "choice" || !slices.Equal(c.Options, []string{"false", "true"}) || c.Line != 4 {
		t.Errorf("confirm-production = %+v", c)
	}
	if b := d.Inputs["backup-file"]; !b.Required || b.Type != "" || b.Line != 12 {
		t.Errorf("backup-file = %+v", b)
	}
}

func TestCheckDispatch(t *testing.T) {
	d := Dispatch{Trigger: true, Line: 3, Inputs: map[string]InputDecl{
		"environment":        {Name: "environment", Line: 5, Required: true, Type: "choice", Options: []string{"qa", "staging"}},
		"sha":                {Name: "sha", Line: 9, Required: true},
		"debug":              {Name: "debug", Line: 11, Type: "boolean"},
		"retries":            {Name: "retries", Line: 13, Type: "number"},
		"confirm-production": {Name: "confirm-production", Line: 15, Required: true, Default: "false", Type: "choice", Options: []string{"false", "true"}},
	}}
	tests := []struct {
		name    string
		sent    map[string]string
		pending map[string]bool
		want    []string // "input:line" of each problem
	}{
		{name: "fits", sent: map[string]string{"environment": "staging", "sha": "abc"}},
		{name: "value not among options", sent: map[string]string{"environment": "production", "sha": "abc"}, want: []string{"environment:5"}},
		{name: "pending value not checked", sent: map[string]string{"environment": "<x, remembered by step y>", "sha": "abc"}, pending: map[string]bool{"environment": true}},
		{name: "undeclared", sent: map[string]string{"environment": "qa", "sha": "a", "mode": "enable"}, want: []string{"mode:3"}},
		{name: "required not sent", sent: map[string]string{"environment": "qa"}, want: []string{"sha:9"}},
		{name: "required with default may be left out", sent: map[string]string{"environment": "qa", "sha": "a"}},
		{name: "boolean", sent: map[string]string{"environment": "qa", "sha": "a", "debug": "yes"}, want: []string{"debug:11"}},
		{name: "number", sent: map[string]string{"environment": "qa", "sha": "a", "retries": "three"}, want: []string{"retries:13"}},
		{name: "confirm-production only true or false", sent: map[string]string{"environment": "qa", "sha": "a", "confirm-production": "yes"}, want: []string{"confirm-production:15"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range CheckDispatch(d, tt.sent, tt.pending) {
				got = append(got, p.Input+":"+strconv.Itoa(p.Line))
				if p.Text == "" || p.Fix == "" {
					t.Errorf("problem without text or fix: %+v", p)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseWorkflow feeds the parser arbitrary files: it returns a result
// or an error, never panics, and a trigger always has a line.
func FuzzParseWorkflow(f *testing.F) {
	for _, seed := range []string{
		"on: workflow_dispatch\n", "on: [push, workflow_dispatch]\n", "on:\n  workflow_dispatch:\n    inputs:\n      a: {type: choice, options: [x]}\n",
		"on:\n  workflow_dispatch:\n    inputs: [a]\n", "on: {workflow_dispatch: {inputs: {a: null}}}\n", "on: 1\n", "{}", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseWorkflow(data)
		if err != nil {
			return
		}
		if d.Trigger && d.Line == 0 {
			t.Errorf("trigger without a line: %+v", d)
		}
		for name, in := range d.Inputs {
			if in.Name != name {
				t.Errorf("input %q named %q", name, in.Name)
			}
		}
	})
}
