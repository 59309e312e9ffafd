package main

import (
	"fmt"
	"runtime/debug"

	"github.com/drbot-dev/drbot/runbook"
)

// version prints the build and the versions of the embedded runbooks (a
// run pins the version it started with).
func version(a *app) error {
	v := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	fmt.Fprintf(a.stdout, "drbot %s\n", v)
	cat, err := runbook.Defaults()
	if err != nil {
		return err
	}
	for _, id := range cat.IDs() {
		rb := cat[id]
		fmt.Fprintf(a.stdout, "runbook %s %s (%s)\n", id, rb.Version, rb.Source)
	}
	return nil
}
