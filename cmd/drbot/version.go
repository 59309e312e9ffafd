package main

import (
	"fmt"
	"runtime/debug"
)

// version prints the build and the embedded runbook versions.
func version(a *app) error {
	v := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	fmt.Fprintf(a.stdout, "drbot %s\n", v)
	if err := a.load("", true); err != nil {
		return err
	}
	for _, id := range a.catalog.IDs() {
		rb := a.catalog[id]
		fmt.Fprintf(a.stdout, "runbook %s %s (%s)\n", id, rb.Version, rb.Source)
	}
	return nil
}
