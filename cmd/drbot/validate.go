package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/runbook"
)

// validate checks config and runbooks. With files, each is checked as a
// runbook (it has steps:) or a config, as fully as without: a runbook is
// rendered against the configured services (when a config can be read), a
// config against the runbooks it names. Without files, the configured config
// and the whole catalog. Every runbook is dry-rendered for every service and
// environment, so a missing config value shows now, not at 3 a.m.; runtime
// inputs (a restore time) are not demanded.
func validate(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	configFlag := fs.String("config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	files, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	var problems []error
	if len(files) == 0 {
		if err := a.load(*configFlag, false); err != nil {
			problems = append(problems, err)
		} else {
			problems = append(problems, dryRender(a, a.catalog))
		}
	}
	for _, f := range files {
		problems = append(problems, a.validateFile(f, *configFlag))
	}
	if err := errors.Join(problems...); err != nil {
		return &exitError{code: 1, msg: "invalid:\n" + indent(err.Error())}
	}
	fmt.Fprintln(a.stdout, "ok")
	return nil
}

func (a *app) validateFile(path, configFlag string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var probe map[string]any
	if yaml.Unmarshal(data, &probe) == nil && probe["steps"] != nil {
		rb, err := runbook.Load(path, data)
		if err != nil {
			return err
		}
		if a.cfg == nil {
			if err := a.load(configFlag, false); err != nil {
				fmt.Fprintf(a.stdout, "%s: checked alone; no config to render it against (%v)\n", path, err)
				return nil
			}
		}
		return dryRender(a, runbook.Catalog{rb.ID: rb})
	}
	cfg, err := config.Parse(path, data, a.getenv)
	if err != nil {
		return err
	}
	cat, err := runbook.LoadCatalog(cfg.Runbooks)
	if err != nil {
		return fmt.Errorf("%s: runbooks: %w", path, err)
	}
	saved := a.cfg
	a.cfg = cfg
	defer func() { a.cfg = saved }()
	return dryRender(a, cat)
}

// dryRender checks that every runbook of cat renders and passes its steps'
// contracts for every configured service and environment.
func dryRender(a *app, cat runbook.Catalog) error {
	var errs []error
	eng := runbook.New(runbook.Options{Actions: planRegistry(a, nil), Clock: a.clock, Guard: a.cfg.Guard()})
	for service, envs := range a.cfg.Environments() {
		for _, env := range envs {
			for _, id := range cat.IDs() {
				rb := cat[id]
				if _, err := planSample(a, eng, rb, service, env); err != nil {
					errs = append(errs, fmt.Errorf("%s for %s/%s: %w", rb.Source, service, env, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// planSample plans rb for a service and environment with sampleInputs:
// every step rendered and its contract checked, as validate and preflight
// need it.
func planSample(a *app, eng *runbook.Engine, rb *runbook.Runbook, service, env string) (*runbook.RunView, error) {
	scope, err := a.cfg.Scope(service, env)
	if err != nil {
		return nil, err
	}
	return eng.Plan(runbook.StartRequest{Runbook: rb, Service: service, Env: env, Config: scope, Inputs: sampleInputs(rb, a.cfg.Location, a.clock.Now())})
}

// sampleInputs gives every required input a valid value of its type:
// validation checks the runbook and config, not the values a person types
// when a run starts.
func sampleInputs(rb *runbook.Runbook, loc *time.Location, now time.Time) map[string]string {
	out := map[string]string{}
	for _, in := range rb.Inputs {
		if !in.Required || in.Default != "" {
			continue
		}
		switch in.Type {
		case runbook.InputTime:
			age := time.Hour
			if in.MinAge > age {
				age = in.MinAge + time.Minute
			}
			out[in.Name] = now.Add(-age).In(loc).Format("2006-01-02 15:04 ") + loc.String()
		case runbook.InputBool:
			out[in.Name] = "false"
		case runbook.InputChoice:
			out[in.Name] = in.Choices[0]
		case runbook.InputServer:
			out[in.Name] = "drbot-validate-sample"
		default:
			out[in.Name] = "sample"
		}
	}
	return out
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
