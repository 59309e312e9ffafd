package runbook

import (
	"strings"
	"testing"
)

const validRunbook = `id: demo
title: Demo
inputs:
  - {name: restore_time, type: time, required: true}
vars:
  backup: 'x_{{ .run.started | stamp }}'
steps:
  - id: scale-down
    title: Stop
    action: kubernetes.scale
    with: {namespace: '{{ .env.namespace }}', deployments: '{{ .env.deployments }}', replicas: 0}
    remember: previous
  - id: scale-up
    title: Start
    action: kubernetes.scale
    with: {namespace: '{{ .env.namespace }}', replicas: '{{ .remember.previous }}'}
`

func TestLoadValid(t *testing.T) {
	rb, err := Load("demo.yaml", []byte(validRunbook))
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Steps) != 2 || rb.Steps[1].Line != 13 || rb.Steps[0].Approvals != 1 || rb.Version == "" {
		t.Errorf("loaded %d steps, step 2 at line %d, %d approvals, version %q", len(rb.Steps), rb.Steps[1].Line, rb.Steps[0].Approvals, rb.Version)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{
			name: "unknown action, unknown variable and duplicate id, each with its line",
			yaml: `id: demo
title: Demo
steps:
  - id: one
    title: One
    action: github.freeze
  - id: two
    title: Two
    action: manual
    with: {instructions: '{{ .env.namespace }} {{ .inputs.nope }}'}
  - id: one
    title: Again
    action: manual
    with: {instructions: '{{ .secrets.token }}'}
`,
			want: []string{
				`demo.yaml:6: step "one".action: unknown action "github.freeze"`,
				`demo.yaml:10: step "two".with.instructions: unknown variable .inputs.nope: no input "nope"`,
				`demo.yaml:11: step "one".id: duplicate step id (first at line 4)`,
				`demo.yaml:14: step "one".with.instructions: unknown variable .secrets.token`,
			},
		},
		{
			name: "unknown field is refused with its line",
			yaml: "id: demo\ntitle: Demo\nsteps:\n  - id: a\n    title: A\n    action: manual\n    colour: red\n",
			want: []string{"demo.yaml:7: field colour not found"},
		},
		{
			name: "missing and unknown parameters",
			yaml: "id: demo\ntitle: Demo\nsteps:\n  - id: a\n    title: A\n    action: github.workflow\n    with: {repo: x/y, ref: main, flavour: mint}\n",
			want: []string{`github.workflow needs "workflow"`, `demo.yaml:7: step "a".with.flavour: github.workflow takes no parameter "flavour"`},
		},
		{
			name: "remember used before it is remembered",
			yaml: "id: demo\ntitle: Demo\nsteps:\n  - id: a\n    title: A\n    action: manual\n    with: {instructions: '{{ .remember.later }}'}\n  - id: b\n    title: B\n    action: manual\n    with: {instructions: x}\n    remember: later\n",
			want: []string{`no earlier step remembers "later"`},
		},
		{
			name: "destructive kind must be marked, bad template, bad timeout",
			yaml: "id: demo\ntitle: Demo\nsteps:\n  - id: a\n    title: A\n    action: azure.postgres.delete\n    timeout: soon\n    with: {resource_group: rg, server: '{{ .env.x'}\n",
			want: []string{"mark the step destructive: true", "bad template", `"soon" is not a duration`},
		},
		{
			name: "input problems",
			yaml: "id: Demo!\ntitle: Demo\ninputs:\n  - {name: t, type: clock}\n  - {name: t, type: choice}\nsteps:\n  - {id: a, title: A, action: manual, with: {instructions: x}}\n",
			want: []string{`demo.yaml:1: id: "Demo!" must be lowercase`, `unknown type "clock"`, `input "t" is declared twice`, "a choice input needs choices"},
		},
		{
			name: "auto destructive",
			yaml: "id: demo\ntitle: Demo\nsteps:\n  - {id: a, title: A, action: azure.postgres.delete, destructive: true, auto: true, with: {resource_group: rg, server: s}}\n",
			want: []string{"cannot run automatically"},
		},
		{
			name: "no steps",
			yaml: "id: demo\ntitle: Demo\n",
			want: []string{"needs at least one step"},
		},
		{
			name: "not yaml",
			yaml: "id: [\n",
			want: []string{"demo.yaml:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("demo.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Load accepted a bad runbook")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadAcceptsTemplateBuiltins(t *testing.T) {
	yaml := "id: demo\ntitle: Demo\nsteps:\n  - id: a\n    title: A\n    action: manual\n" +
		"    when: '{{ and (eq .env.name \"production\") (not .inputs.dr_test) }}'\n" +
		"    with: {instructions: '{{ index .remember \"x\" }} {{ len .env.deployments }}'}\n" +
		"inputs:\n  - {name: dr_test, type: bool}\n"
	if _, err := Load("demo.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("demo.yaml", []byte(strings.Replace(yaml, "eq .env.name", "equals .env.name", 1))); err == nil || !strings.Contains(err.Error(), `function "equals" not defined`) {
		t.Errorf("unknown function: %v", err)
	}
}

func TestDefaultsLoad(t *testing.T) {
	cat, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cat.IDs(), ","); got != "scenario-1,scenario-2" {
		t.Fatalf("embedded runbooks = %s", got)
	}
	if _, err := cat.Get("scenario-3"); err == nil || !strings.Contains(err.Error(), "known: scenario-1, scenario-2") {
		t.Errorf("Get(scenario-3) = %v", err)
	}
}

func TestLoadCatalogOverride(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/mine.yaml", strings.Replace(validRunbook, "id: demo", "id: scenario-2", 1))
	cat, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rb := cat["scenario-2"]; rb.Title != "Demo" || !strings.HasSuffix(rb.Source, "mine.yaml") {
		t.Errorf("scenario-2 not overridden: %s from %s", rb.Title, rb.Source)
	}
	if _, ok := cat["scenario-1"]; !ok {
		t.Error("embedded scenario-1 lost")
	}
}

// FuzzLoad: the loader never panics and either returns a runbook that passes
// its own invariants or an error.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(validRunbook))
	cat, _ := Defaults()
	for _, rb := range cat {
		f.Add(rb.Raw)
	}
	f.Add([]byte("id: a\ntitle: b\nsteps: [{id: x, title: y, action: manual, with: {instructions: '{{ .inputs.q }}'}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Load("fuzz.yaml", data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range rb.Steps {
			if seen[s.ID] {
				t.Fatalf("duplicate step id %q accepted", s.ID)
			}
			seen[s.ID] = true
			if _, ok := Kinds[s.Action]; !ok {
				t.Fatalf("unknown action %q accepted", s.Action)
			}
			if s.Approvals < 1 {
				t.Fatalf("step %s needs %d approvals", s.ID, s.Approvals)
			}
		}
	})
}
