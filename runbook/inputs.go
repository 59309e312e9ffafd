package runbook

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseInputs checks the raw inputs a person typed against the runbook's
// declared inputs and returns typed values: times become RFC 3339 UTC text,
// bools true/false. Every problem is reported at once, each naming its input
// and what to type instead.
func ParseInputs(rb *Runbook, raw map[string]string, now time.Time) (map[string]any, error) {
	var errs []error
	for _, name := range SortedKeys(raw) {
		if _, ok := rb.Input(name); !ok {
			errs = append(errs, fmt.Errorf("unknown input %q; %s takes %s", name, rb.ID, inputNames(rb)))
		}
	}
	out := make(map[string]any, len(rb.Inputs))
	for _, in := range rb.Inputs {
		text, given := raw[in.Name]
		text = strings.TrimSpace(text)
		if !given || text == "" {
			text = in.Default
		}
		if text == "" {
			if in.Required {
				errs = append(errs, fmt.Errorf("input %s is required: %s", in.Name, inputHelp(in)))
			}
			out[in.Name] = ""
			continue
		}
		v, err := parseInput(in, text, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s: %w", in.Name, err))
			continue
		}
		out[in.Name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseInput(in Input, text string, now time.Time) (any, error) {
	switch in.Type {
	case InputTime:
		t, err := ParseTime(text)
		if err != nil {
			return nil, err
		}
		if err := CheckWindow(t, now, in.MinAge, in.MaxAge); err != nil {
			return nil, err
		}
		return t.Format(time.RFC3339), nil
	case InputBool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", text)
		}
		return b, nil
	case InputServer:
		if err := CheckServerName(text); err != nil {
			return nil, err
		}
	case InputChoice:
		if !slices.Contains(in.Choices, text) {
			return nil, fmt.Errorf("%q is not one of %s", text, strings.Join(in.Choices, ", "))
		}
	}
	return text, nil
}

func inputHelp(in Input) string {
	h := in.Help
	if in.Type == InputTime {
		h += " (" + TimeFormats + ")"
	}
	return fmt.Sprintf("%s=… %s", in.Name, h)
}

func inputNames(rb *Runbook) string {
	if len(rb.Inputs) == 0 {
		return "no inputs"
	}
	names := make([]string, len(rb.Inputs))
	for i, in := range rb.Inputs {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}
