package preflight

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dispatch is what a workflow file says about being started by hand (the
// workflow_dispatch trigger), with the lines to point a person at.
type Dispatch struct {
	// Trigger is true when the workflow has a workflow_dispatch trigger.
	Trigger bool
	// OnLine is the line of the `on:` key (0 when there is none).
	OnLine int
	// Line is the line of workflow_dispatch itself (0 without a trigger).
	Line int
	// Inputs are the declared inputs by name.
	Inputs map[string]InputDecl
}

// InputDecl is one input of workflow_dispatch, as declared.
type InputDecl struct {
	Name     string
	Line     int
	Required bool
	Default  string
	// Type is string, choice, boolean, number or environment ("" is string).
	Type    string
	Options []string // of a choice
}

// ParseWorkflow reads the workflow_dispatch trigger of a GitHub Actions
// workflow file. `on` takes three forms (GitHub docs, "Workflow syntax":
// on): a string (`on: workflow_dispatch`), a list of events
// (`on: [push, workflow_dispatch]`) and a map of events with their settings,
// where `workflow_dispatch:` may be empty or hold `inputs:`. The lists and
// strings declare no inputs.
func ParseWorkflow(data []byte) (Dispatch, error) {
	var d Dispatch
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return d, fmt.Errorf("not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return d, errors.New("empty workflow file")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return d, fmt.Errorf("line %d: a workflow is a mapping of keys (name, on, jobs)", root.Line)
	}
	key, on := lookup(root, isOnKey)
	if on == nil {
		return d, nil
	}
	d.OnLine = key.Line
	switch on.Kind {
	case yaml.ScalarNode:
		if on.Value == "workflow_dispatch" {
			d.Trigger, d.Line = true, on.Line
		}
	case yaml.SequenceNode:
		for _, ev := range on.Content {
			if ev.Kind == yaml.ScalarNode && ev.Value == "workflow_dispatch" {
				d.Trigger, d.Line = true, ev.Line
			}
		}
	case yaml.MappingNode:
		k, wd := lookup(on, func(n *yaml.Node) bool { return n.Value == "workflow_dispatch" })
		if k == nil {
			return d, nil
		}
		d.Trigger, d.Line = true, k.Line
		if wd.Kind == yaml.MappingNode {
			if _, inputs := lookup(wd, func(n *yaml.Node) bool { return n.Value == "inputs" }); inputs != nil {
				decls, err := parseInputs(inputs)
				if err != nil {
					return d, err
				}
				d.Inputs = decls
			}
		} else if !isNull(wd) {
			return d, fmt.Errorf("line %d: workflow_dispatch should be empty or a mapping with inputs", wd.Line)
		}
	default:
		return d, fmt.Errorf("line %d: `on` should be an event, a list of events or a mapping", on.Line)
	}
	return d, nil
}

// isOnKey matches the `on` key. YAML 1.1 would read a bare on as true;
// yaml.v3 keeps it the string "on" (a bool only when decoded into a bool),
// and GitHub reads it so too.
func isOnKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "on"
}

// lookup finds a key of a mapping node and its value.
func lookup(m *yaml.Node, match func(*yaml.Node) bool) (key, value *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if match(m.Content[i]) {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "" || n.Value == "~" || n.Value == "null")
}

func parseInputs(inputs *yaml.Node) (map[string]InputDecl, error) {
	if isNull(inputs) {
		return nil, nil
	}
	if inputs.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: workflow_dispatch.inputs should be a mapping of input names", inputs.Line)
	}
	out := map[string]InputDecl{}
	for i := 0; i+1 < len(inputs.Content); i += 2 {
		k, v := inputs.Content[i], inputs.Content[i+1]
		in := InputDecl{Name: k.Value, Line: k.Line}
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				field, val := v.Content[j], v.Content[j+1]
				switch field.Value {
				case "required":
					b, err := strconv.ParseBool(val.Value)
					if err != nil || val.Kind != yaml.ScalarNode {
						return nil, fmt.Errorf("line %d: input %s: required should be true or false", val.Line, in.Name)
					}
					in.Required = b
				case "default":
					if val.Kind == yaml.ScalarNode {
						in.Default = val.Value
					}
				case "type":
					in.Type = val.Value
				case "options":
					if val.Kind != yaml.SequenceNode {
						return nil, fmt.Errorf("line %d: input %s: options should be a list", val.Line, in.Name)
					}
					for _, o := range val.Content {
						in.Options = append(in.Options, o.Value)
					}
				}
			}
		} else if !isNull(v) {
			return nil, fmt.Errorf("line %d: input %s should be a mapping (description, required, type…)", v.Line, in.Name)
		}
		out[in.Name] = in
	}
	return out, nil
}

// Problem is one way a dispatch drbot would send does not fit a workflow.
type Problem struct {
	Input string
	Line  int // in the workflow file; 0 when the input is not declared
	Text  string
	// Fix says what to change.
	Fix string
}

// CheckDispatch compares the inputs drbot would send (values; Pending names
// those known only when the run gets there) with the declared ones: every
// input sent is declared, every required input without default is sent, a
// choice's value is among its options and a boolean's is true or false.
// GitHub answers 422 to a dispatch that breaks any of these.
func CheckDispatch(d Dispatch, sent map[string]string, pending map[string]bool) []Problem {
	var out []Problem
	for _, name := range sortedKeys(sent) {
		decl, ok := d.Inputs[name]
		if !ok {
			out = append(out, Problem{Input: name, Line: d.Line,
				Text: fmt.Sprintf("drbot sends input %q, which the workflow does not declare (GitHub refuses the dispatch: Unexpected inputs provided)", name),
				Fix:  fmt.Sprintf("declare %s under on.workflow_dispatch.inputs, or remove it from the inputs in drbot.yaml", name)})
			continue
		}
		if pending[name] {
			continue
		}
		value := sent[name]
		switch decl.Type {
		case "choice":
			if !slices.Contains(decl.Options, value) {
				out = append(out, Problem{Input: name, Line: decl.Line,
					Text: fmt.Sprintf("input %s: drbot would send %q, not among the options [%s]", name, value, strings.Join(decl.Options, ", ")),
					Fix:  fmt.Sprintf("add %q to the options of %s, or change the value in drbot.yaml", value, name)})
			}
		case "boolean":
			if value != "true" && value != "false" {
				out = append(out, Problem{Input: name, Line: decl.Line,
					Text: fmt.Sprintf("input %s is a boolean; drbot would send %q", name, value),
					Fix:  "send true or false"})
			}
		case "number":
			if _, err := strconv.ParseFloat(value, 64); err != nil {
				out = append(out, Problem{Input: name, Line: decl.Line,
					Text: fmt.Sprintf("input %s is a number; drbot would send %q", name, value),
					Fix:  "send a number"})
			}
		}
	}
	for _, name := range sortedKeys(d.Inputs) {
		decl := d.Inputs[name]
		if _, ok := sent[name]; !ok && decl.Required && decl.Default == "" {
			out = append(out, Problem{Input: name, Line: decl.Line,
				Text: fmt.Sprintf("input %s is required and has no default, but drbot does not send it", name),
				Fix:  fmt.Sprintf("add %s to the inputs in drbot.yaml, or give it a default in the workflow", name)})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
