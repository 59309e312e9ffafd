// Package runbook is drbot's domain: the runbook model and its YAML loader
// (load.go, with the embedded scenarios), templates and time inputs, and the
// run engine — the state machine that turns a runbook into a guided,
// durable, exactly-once procedure.
//
// Where things live:
//   - model.go, run.go: runbooks, runs, steps, events, refusals
//   - ports.go: the small interfaces the engine needs (Store, Notifier,
//     Action, Clock), implemented by store/, bot/, terminal/ and adapters/
//   - kinds.go: the action kinds a step may use and how each describes its call
//   - engine.go: starting runs; clicks.go: what people do to steps;
//     execute.go: running steps, re-attaching after a restart, advancing
//   - view.go: what renderers show (RunView) and the closing Summary
//
// It imports no SDK and none of bot, handlers or adapters.
package runbook
