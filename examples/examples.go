// Package examples ships the example configuration, so a rehearsal needs no
// setup: `drbot rehearse scenario-2 --yes` uses it when there is no drbot.yaml.
package examples

import _ "embed"

// Config is examples/drbot.yaml.
//
//go:embed drbot.yaml
var Config []byte
