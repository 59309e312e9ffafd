package runbook

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Params are a step's rendered `with` values. Getters name the missing or
// malformed key in their errors, so a bad runbook or config says what to fix.
type Params map[string]any

// String returns a required string parameter.
func (p Params) String(key string) (string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return "", fmt.Errorf("parameter %q is missing", key)
	}
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return "", fmt.Errorf("parameter %q is empty", key)
		}
		return x, nil
	case int, int64, float64, bool:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("parameter %q: want text, got %T", key, v)
}

// Texts returns several required string parameters at once, in order.
func (p Params) Texts(keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		s, err := p.String(k)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// StringOr returns an optional string parameter or def.
func (p Params) StringOr(key, def string) string {
	if s, err := p.String(key); err == nil {
		return s
	}
	return def
}

// Int returns a required integer parameter (YAML int, JSON number or digits).
func (p Params) Int(key string) (int, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return 0, fmt.Errorf("parameter %q is missing", key)
	}
	n, err := toInt(v)
	if err != nil {
		return 0, fmt.Errorf("parameter %q: %w", key, err)
	}
	return n, nil
}

// IntOr returns an optional integer parameter or def.
func (p Params) IntOr(key string, def int) int {
	if n, err := p.Int(key); err == nil {
		return n
	}
	return def
}

// Bool returns an optional boolean parameter or def.
func (p Params) Bool(key string, def bool) bool {
	switch x := p[key].(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b
		}
	}
	return def
}

// Strings returns a list parameter; a single string counts as a list of one.
func (p Params) Strings(key string) ([]string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return nil, fmt.Errorf("parameter %q is missing", key)
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, fmt.Errorf("parameter %q is empty", key)
		}
		return []string{x}, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("parameter %q[%d]: want text, got %T", key, i, e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("parameter %q: want a list, got %T", key, v)
}

// StringMap returns a map parameter with its values as text (workflow inputs).
func (p Params) StringMap(key string) (map[string]string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return map[string]string{}, nil
	}
	m, ok := asMap(v)
	if !ok {
		return nil, fmt.Errorf("parameter %q: want a mapping, got %T", key, v)
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		if e == nil {
			out[k] = ""
			continue
		}
		out[k] = fmt.Sprint(e)
	}
	return out, nil
}

// IntMap returns a map of integers, e.g. remembered replica counts.
func (p Params) IntMap(key string) (map[string]int, error) {
	m, ok := asMap(p[key])
	if !ok {
		return nil, fmt.Errorf("parameter %q: want a mapping of numbers, got %T", key, p[key])
	}
	out := make(map[string]int, len(m))
	for k, e := range m {
		n, err := toInt(e)
		if err != nil {
			return nil, fmt.Errorf("parameter %q[%s]: %w", key, k, err)
		}
		out[k] = n
	}
	return out, nil
}

// Map returns a raw mapping parameter.
func (p Params) Map(key string) (map[string]any, bool) {
	return asMap(p[key])
}

func asMap(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return m, true
	case map[string]int:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return m, true
	}
	return nil, false
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x != float64(int(x)) {
			return 0, fmt.Errorf("want a whole number, got %v", x)
		}
		return int(x), nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("want a whole number, got %q", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want a whole number, got %T", v)
}

// SortedKeys returns m's keys in order, for stable messages.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
