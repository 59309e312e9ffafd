package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/runbook"
)

// validate checks config and runbooks. With files, each is checked as a
// runbook (it has steps:) or a config; without, the configured config and the
// whole catalog, and every runbook is dry-rendered for every service and
// environment so a missing config value shows now, not at 3 a.m.
func validate(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	configFlag := fs.String("config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	files, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	var problems []error
	if len(files) > 0 {
		for _, f := range files {
			problems = append(problems, validateFile(f, a.getenv))
		}
	} else if err := a.load(*configFlag, false); err != nil {
		problems = append(problems, err)
	} else {
		problems = append(problems, dryRender(a))
	}
	if err := errors.Join(problems...); err != nil {
		return &exitError{code: 1, msg: "invalid:\n" + indent(err.Error())}
	}
	fmt.Fprintln(a.stdout, "ok")
	return nil
}

func validateFile(path string, getenv func(string) string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var probe map[string]any
	if yaml.Unmarshal(data, &probe) == nil && probe["steps"] != nil {
		_, err := runbook.Load(path, data)
		return err
	}
	_, err = config.Parse(path, data, getenv)
	return err
}

// dryRender checks that every runbook renders for every configured service
// and environment.
func dryRender(a *app) error {
	var errs []error
	eng := runbook.New(runbook.Options{Actions: planRegistry(a, nil), Clock: a.clock, Guard: a.cfg.Guard()})
	for service, envs := range a.cfg.Environments() {
		for _, env := range envs {
			scope, _ := a.cfg.Scope(service, env)
			for _, id := range a.catalog.IDs() {
				rb := a.catalog[id]
				req := runbook.StartRequest{Runbook: rb, Service: service, Env: env, Config: scope, Inputs: map[string]string{}}
				rehearsalInputs(&req, a.cfg.Location, a.clock.Now(), &bytes.Buffer{})
				if _, err := eng.Plan(req); err != nil {
					errs = append(errs, fmt.Errorf("%s for %s/%s: %w", rb.Source, service, env, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
