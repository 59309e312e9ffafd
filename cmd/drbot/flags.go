package main

import (
	"errors"
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
	k = strings.TrimSpace(k)
	if _, dup := v[k]; dup {
		return fmt.Errorf("--var %s is given twice; give each input once", k)
	}
	v[k] = strings.Trim(val, `"'`)
	return nil
}

// parseArgs parses flags wherever they stand among the positional arguments
// (`rehearse scenario-2 --yes` as well as `rehearse --yes scenario-2`). It
// returns flag.ErrHelp for -h/--help (exit 0) and an exit 2 for a bad flag,
// which the flag package has already explained.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
