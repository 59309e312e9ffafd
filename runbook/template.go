package runbook

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Template roots a runbook may refer to. service, env and workflows come from
// drbot.yaml; inputs from the person starting the run; vars are rendered once
// at start; remember holds values earlier steps kept; step holds a step's own vars.
var templateRoots = []string{"service", "env", "workflows", "inputs", "vars", "remember", "run", "step"}

// wholeRef matches a value that is exactly one field reference, e.g.
// "{{ .env.deployments }}": such values keep their type (a list, a number, a map).
var wholeRef = regexp.MustCompile(`^\s*\{\{\s*\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_-]+)*)\s*\}\}\s*$`)

// maxRenderDepth bounds re-rendering of templates found inside referenced
// values (config workflow inputs are templates themselves).
const maxRenderDepth = 4

// funcs are the template functions; done is bound per run.
func funcs(done func(string) bool) template.FuncMap {
	return template.FuncMap{
		// ptrtime formats a time as the PTR workflow wants it: UTC, no offset.
		"ptrtime": func(v any) (string, error) { return formatTime(v, PTRLayout) },
		// stamp formats a time compactly for names, e.g. 20261126T0930.
		"stamp": func(v any) (string, error) { return formatTime(v, "20060102T1504") },
		"done":  done,
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"join": func(sep string, v any) string {
			s, _ := Params{"v": v}.Strings("v")
			return strings.Join(s, sep)
		},
		"default": func(def, v any) any {
			if v == nil || v == "" {
				return def
			}
			return v
		},
	}
}

// PTRLayout is the restore-time format of the point-in-time restore workflow:
// UTC, seconds, no offset.
const PTRLayout = "2006-01-02T15:04:05"

func formatTime(v any, layout string) (string, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		p, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return "", fmt.Errorf("not a time: %q", x)
		}
		t = p
	default:
		return "", fmt.Errorf("not a time: %T", v)
	}
	return t.UTC().Format(layout), nil
}

// renderer renders `with` values against a run's data.
type renderer struct {
	data map[string]any
	done func(string) bool
}

// value renders v: strings are templates, maps and lists are walked.
func (r renderer) value(v any, depth int) (any, error) {
	if depth > maxRenderDepth {
		return nil, fmt.Errorf("templates nested more than %d deep", maxRenderDepth)
	}
	switch x := v.(type) {
	case string:
		if m := wholeRef.FindStringSubmatch(x); m != nil {
			got, err := lookup(r.data, strings.Split(m[1], "."))
			if err != nil {
				return nil, err
			}
			if _, isString := got.(string); !isString {
				return r.value(got, depth+1)
			}
			if s := got.(string); strings.Contains(s, "{{") {
				return r.value(s, depth+1)
			}
			return got, nil
		}
		if !strings.Contains(x, "{{") {
			return x, nil
		}
		s, err := r.text(x)
		if err != nil {
			return nil, err
		}
		if strings.Contains(s, "{{") && s != x {
			return r.value(s, depth+1)
		}
		return s, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			got, err := r.value(e, depth)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = got
		}
		return out, nil
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return r.value(m, depth)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			got, err := r.value(e, depth)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = got
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return r.value(out, depth)
	}
	return v, nil
}

// text renders one template string.
func (r renderer) text(src string) (string, error) {
	done := r.done
	if done == nil {
		done = func(string) bool { return false }
	}
	t, err := template.New("").Option("missingkey=error").Funcs(funcs(done)).Parse(src)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, r.data); err != nil {
		return "", cleanTemplateError(err)
	}
	return b.String(), nil
}

// cleanTemplateError drops text/template's positional prefix, which names an
// anonymous template and helps nobody.
func cleanTemplateError(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); strings.HasPrefix(msg, "template: ") && i > 0 {
		msg = msg[i+2:]
	}
	return fmt.Errorf("%s", msg)
}

func lookup(data map[string]any, path []string) (any, error) {
	var cur any = data
	for i, key := range path {
		m, ok := asMap(cur)
		if !ok {
			return nil, fmt.Errorf("%s is not a mapping", "."+strings.Join(path[:i], "."))
		}
		next, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("no value for .%s", strings.Join(path[:i+1], "."))
		}
		cur = next
	}
	return cur, nil
}

// builtins are text/template's own functions (and, eq, index, …). The
// parser only knows the functions it is given (with non-nil values), so
// validation names them too.
var builtins = func() map[string]any {
	m := map[string]any{}
	for _, name := range []string{"and", "call", "html", "index", "slice", "js", "len", "not", "or",
		"print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"} {
		m[name] = true
	}
	return m
}()

// templateRefs returns the field paths a template string refers to, e.g.
// [["inputs","restore_time"]]. Parse errors are returned as is.
func templateRefs(src string) ([][]string, error) {
	trees, err := parse.Parse("t", src, "{{", "}}", funcs(nil), builtins)
	if err != nil {
		return nil, cleanTemplateError(err)
	}
	var refs [][]string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.FieldNode:
			refs = append(refs, x.Ident)
		case *parse.ChainNode:
			walk(x.Node)
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		}
	}
	for _, t := range trees {
		walk(t.Root)
	}
	return refs, nil
}
