package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// vars collects repeated --var k=v flags.
type vars map[string]string

func (v vars) String() string { return fmt.Sprint(map[string]string(v)) }

// Set accepts k=v; the value may be quoted.
func (v vars) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("--var wants name=value, got %q", s)
	}
	v[strings.TrimSpace(k)] = strings.Trim(val, `"'`)
	return nil
}

// parseArgs parses flags wherever they stand among the positional arguments
// (`rehearse scenario-2 --yes` as well as `rehearse --yes scenario-2`).
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
