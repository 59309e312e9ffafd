package runbook

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed scenarios/*.yaml
var embedded embed.FS

// rawRunbook is the YAML shape; Load turns it into a validated Runbook.
type rawRunbook struct {
	ID          string            `yaml:"id"`
	Title       string            `yaml:"title"`
	Description string            `yaml:"description"`
	Inputs      []rawInput        `yaml:"inputs"`
	Vars        map[string]string `yaml:"vars"`
	Steps       []rawStep         `yaml:"steps"`
}

type rawInput struct {
	Name     string   `yaml:"name"`
	Type     string   `yaml:"type"`
	Required bool     `yaml:"required"`
	Default  string   `yaml:"default"`
	Choices  []string `yaml:"choices"`
	Help     string   `yaml:"help"`
	MinAge   string   `yaml:"min_age"`
	MaxAge   string   `yaml:"max_age"`
}

type rawStep struct {
	ID          string            `yaml:"id"`
	Title       string            `yaml:"title"`
	Explain     string            `yaml:"explain"`
	Action      string            `yaml:"action"`
	With        map[string]any    `yaml:"with"`
	Vars        map[string]string `yaml:"vars"`
	When        string            `yaml:"when"`
	Remember    string            `yaml:"remember"`
	Destructive bool              `yaml:"destructive"`
	Approvals   int               `yaml:"approvals"`
	Auto        bool              `yaml:"auto"`
	Recovery    *bool             `yaml:"recovery"`
	Timeout     string            `yaml:"timeout"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// LoadError is one problem in a runbook file, located by line and field.
type LoadError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *LoadError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Load parses and validates one runbook. Every problem is reported at once,
// each naming the file, line and field.
func Load(file string, data []byte) (*Runbook, error) {
	var raw rawRunbook
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	v := &validator{file: file, lines: newLineIndex(&doc)}
	rb := v.runbook(raw)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	sum := sha256.Sum256(data)
	rb.Source, rb.Raw, rb.Version = file, data, hex.EncodeToString(sum[:6])
	return rb, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" into a LoadError.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, m := range te.Errors {
			errs = append(errs, lineError(file, m))
		}
		return errors.Join(errs...)
	}
	return lineError(file, strings.TrimPrefix(err.Error(), "yaml: "))
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

func lineError(file, msg string) error {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &LoadError{File: file, Line: line, Msg: m[2]}
	}
	return &LoadError{File: file, Msg: msg}
}

type validator struct {
	file  string
	lines lineIndex
	errs  []error
}

func (v *validator) fail(path []any, field, format string, args ...any) {
	v.errs = append(v.errs, &LoadError{File: v.file, Line: v.lines.line(path...), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) runbook(raw rawRunbook) *Runbook {
	rb := &Runbook{ID: raw.ID, Title: raw.Title, Description: strings.TrimSpace(raw.Description)}
	if !idPattern.MatchString(raw.ID) {
		v.fail([]any{"id"}, "id", "%q must be lowercase letters, digits and dashes", raw.ID)
	}
	if strings.TrimSpace(raw.Title) == "" {
		v.fail([]any{"title"}, "title", "is required")
	}
	declared := map[string]map[string]bool{"inputs": {}, "vars": {}, "remember": {}}
	for i, in := range raw.Inputs {
		rb.Inputs = append(rb.Inputs, v.input(i, in, declared["inputs"]))
	}
	for _, name := range SortedKeys(raw.Vars) {
		path := []any{"vars", name}
		if !namePattern.MatchString(name) {
			v.fail(path, "vars."+name, "name must be lowercase letters, digits and underscores")
		}
		v.templates(path, "vars."+name, raw.Vars[name], declared, nil)
		declared["vars"][name] = true
		rb.Vars = append(rb.Vars, Var{Name: name, Value: raw.Vars[name]})
	}
	if len(raw.Steps) == 0 {
		v.fail([]any{"steps"}, "steps", "a runbook needs at least one step")
	}
	seen := map[string]int{}
	for i, rs := range raw.Steps {
		rb.Steps = append(rb.Steps, v.step(i, rs, seen, declared))
	}
	return rb
}

func (v *validator) input(i int, in rawInput, names map[string]bool) Input {
	path := []any{"inputs", i}
	field := fmt.Sprintf("inputs[%d]", i)
	out := Input{Name: in.Name, Type: InputType(in.Type), Required: in.Required, Default: in.Default, Choices: in.Choices, Help: in.Help}
	if out.Type == "" {
		out.Type = InputString
	}
	if !namePattern.MatchString(in.Name) {
		v.fail(path, field+".name", "%q must be lowercase letters, digits and underscores", in.Name)
	}
	if names[in.Name] {
		v.fail(path, field+".name", "input %q is declared twice", in.Name)
	}
	names[in.Name] = true
	switch out.Type {
	case InputString, InputTime, InputBool, InputServer:
	case InputChoice:
		if len(in.Choices) == 0 {
			v.fail(path, field+".choices", "a choice input needs choices")
		}
		if in.Default != "" && !slices.Contains(in.Choices, in.Default) {
			v.fail(path, field+".default", "%q is not one of the choices", in.Default)
		}
	default:
		v.fail(append(path, "type"), field+".type", "unknown type %q; use string, time, choice, bool or postgres_server", in.Type)
	}
	out.MinAge = v.duration(append(path, "min_age"), field+".min_age", in.MinAge)
	out.MaxAge = v.duration(append(path, "max_age"), field+".max_age", in.MaxAge)
	if out.Type == InputBool && in.Default != "" && in.Default != "true" && in.Default != "false" {
		v.fail(path, field+".default", "%q is not true or false", in.Default)
	}
	return out
}

func (v *validator) duration(path []any, field, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil {
		v.fail(path, field, "%v", err)
	}
	return d
}

// parseDuration is time.ParseDuration plus a "d" (day) unit.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30m, 2h or 7d", s)
	}
	return d, nil
}

func (v *validator) step(i int, rs rawStep, seen map[string]int, declared map[string]map[string]bool) Step {
	path := []any{"steps", i}
	field := fmt.Sprintf("step %q", rs.ID)
	if rs.ID == "" {
		field = fmt.Sprintf("steps[%d]", i)
	}
	s := Step{ID: rs.ID, Title: rs.Title, Explain: strings.TrimSpace(rs.Explain), Action: rs.Action, With: rs.With, Vars: rs.Vars,
		When: rs.When, Remember: rs.Remember, Destructive: rs.Destructive, Approvals: rs.Approvals, Auto: rs.Auto, Recovery: rs.Recovery, Line: v.lines.line(path...)}
	if s.With == nil {
		s.With = map[string]any{}
	}
	switch {
	case !idPattern.MatchString(rs.ID):
		v.fail(append(path, "id"), field+".id", "%q must be lowercase letters, digits and dashes", rs.ID)
	case seen[rs.ID] > 0:
		v.fail(append(path, "id"), field+".id", "duplicate step id (first at line %d)", seen[rs.ID])
	default:
		seen[rs.ID] = s.Line
	}
	if strings.TrimSpace(rs.Title) == "" {
		v.fail(path, field+".title", "is required")
	}
	// Titles may name the run's configured things (the branch): they see
	// the run's values, not step vars or remembered ones.
	v.templates(append(path, "title"), field+".title", rs.Title, map[string]map[string]bool{
		"inputs": declared["inputs"], "vars": declared["vars"], "remember": {},
	}, map[string]bool{})
	kind, ok := Kinds[rs.Action]
	if !ok {
		v.fail(append(path, "action"), field+".action", "unknown action %q; known: %s", rs.Action, strings.Join(SortedKeys(Kinds), ", "))
	} else {
		v.params(path, field, kind, rs.With)
		if kind.Destructive && !rs.Destructive {
			v.fail(append(path, "action"), field+".destructive", "%s is destructive: mark the step destructive: true", rs.Action)
		}
	}
	if rs.Approvals < 0 {
		v.fail(append(path, "approvals"), field+".approvals", "must be 1 or more")
	}
	if s.Approvals < 1 {
		s.Approvals = 1
	}
	if rs.Auto && (rs.Destructive || s.Approvals > 1) {
		v.fail(append(path, "auto"), field+".auto", "a destructive step or one that needs approvals cannot run automatically")
	}
	if rs.Timeout != "" {
		s.Timeout = v.duration(append(path, "timeout"), field+".timeout", rs.Timeout)
	}
	stepVars := map[string]bool{}
	for _, name := range SortedKeys(rs.Vars) {
		v.templates(append(path, "vars", name), field+".vars."+name, rs.Vars[name], declared, nil)
		stepVars[name] = true
	}
	for _, key := range SortedKeys(rs.With) {
		v.valueTemplates(append(path, "with", key), field+".with."+key, rs.With[key], declared, stepVars)
	}
	if rs.When != "" {
		v.templates(append(path, "when"), field+".when", rs.When, declared, stepVars)
	}
	if rs.Remember != "" {
		if !namePattern.MatchString(rs.Remember) {
			v.fail(append(path, "remember"), field+".remember", "%q must be lowercase letters, digits and underscores", rs.Remember)
		}
		declared["remember"][rs.Remember] = true
	}
	return s
}

func (v *validator) params(path []any, field string, kind Kind, with map[string]any) {
	for _, req := range kind.Required {
		if _, ok := with[req]; !ok {
			v.fail(append(path, "with"), field+".with", "%s needs %q", kind.Name, req)
		}
	}
	for _, key := range SortedKeys(with) {
		if !slices.Contains(kind.Required, key) && !slices.Contains(kind.Optional, key) {
			v.fail(append(path, "with", key), field+".with."+key, "%s takes no parameter %q; it takes %s",
				kind.Name, key, strings.Join(append(slices.Clone(kind.Required), kind.Optional...), ", "))
		}
	}
}

func (v *validator) valueTemplates(path []any, field string, val any, declared map[string]map[string]bool, stepVars map[string]bool) {
	switch x := val.(type) {
	case string:
		v.templates(path, field, x, declared, stepVars)
	case map[string]any:
		for _, k := range SortedKeys(x) {
			v.valueTemplates(append(slices.Clone(path), k), field+"."+k, x[k], declared, stepVars)
		}
	case []any:
		for i, e := range x {
			v.valueTemplates(append(slices.Clone(path), i), fmt.Sprintf("%s[%d]", field, i), e, declared, stepVars)
		}
	}
}

// templates checks that a template parses and refers only to known roots and
// to inputs, vars, remembered values and step vars that exist by then.
func (v *validator) templates(path []any, field, src string, declared map[string]map[string]bool, stepVars map[string]bool) {
	if !strings.Contains(src, "{{") {
		return
	}
	refs, err := templateRefs(src)
	if err != nil {
		v.fail(path, field, "bad template: %v", err)
		return
	}
	for _, ref := range refs {
		name := "." + strings.Join(ref, ".")
		if !slices.Contains(templateRoots, ref[0]) {
			v.fail(path, field, "unknown variable %s; variables start with .%s", name, strings.Join(templateRoots, ", ."))
			continue
		}
		known := declared[ref[0]]
		if ref[0] == "step" {
			known = stepVars
		}
		if known != nil && len(ref) > 1 && !known[ref[1]] {
			what := map[string]string{"inputs": "no input", "vars": "no run var", "remember": "no earlier step remembers", "step": "the step has no var"}[ref[0]]
			v.fail(path, field, "unknown variable %s: %s %q", name, what, ref[1])
		}
	}
}

// lineIndex finds the source line of a path in the YAML document.
type lineIndex struct{ root *yaml.Node }

func newLineIndex(doc *yaml.Node) lineIndex {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return lineIndex{root: doc.Content[0]}
	}
	return lineIndex{root: doc}
}

// line returns the line of the deepest node on path that exists (string keys
// for mappings, int indexes for sequences).
func (l lineIndex) line(path ...any) int {
	n := l.root
	if n == nil {
		return 0
	}
	best := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch key := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == key {
						next = n.Content[i+1]
						best = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && key < len(n.Content) {
				next = n.Content[key]
				best = next.Line
			}
		}
		if next == nil {
			return best
		}
		n = next
	}
	return best
}

// Catalog holds runbooks by id.
type Catalog map[string]*Runbook

// IDs lists the catalog's runbook ids in order.
func (c Catalog) IDs() []string {
	return SortedKeys(c)
}

// Get returns a runbook or an error that lists the known ids.
func (c Catalog) Get(id string) (*Runbook, error) {
	if rb, ok := c[id]; ok {
		return rb, nil
	}
	return nil, fmt.Errorf("unknown scenario %q; known: %s", id, strings.Join(c.IDs(), ", "))
}

// Defaults returns the embedded runbooks (scenario-1 and scenario-2).
func Defaults() (Catalog, error) {
	return loadFS(embedded, "scenarios")
}

// LoadCatalog returns the embedded runbooks overridden and extended by the
// *.yaml files in dir (if dir is not empty).
func LoadCatalog(dir string) (Catalog, error) {
	cat, err := Defaults()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return cat, nil
	}
	extra, err := loadFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	for id, rb := range extra {
		rb.Source = filepath.Join(dir, rb.Source)
		cat[id] = rb
	}
	return cat, nil
}

func loadFS(fsys fs.FS, dir string) (Catalog, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read runbooks: %w", err)
	}
	cat := Catalog{}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		data, err := fs.ReadFile(fsys, filepath.ToSlash(filepath.Join(dir, e.Name())))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rb, err := Load(e.Name(), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := cat[rb.ID]; ok {
			errs = append(errs, &LoadError{File: e.Name(), Field: "id", Msg: fmt.Sprintf("%q is also the id of %s", rb.ID, prev.Source)})
			continue
		}
		cat[rb.ID] = rb
	}
	return cat, errors.Join(errs...)
}
