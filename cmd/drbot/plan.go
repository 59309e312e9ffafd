package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/terminal"
)

// selection is the flags that pick what a run is for.
type selection struct {
	config, service, env string
	vars                 vars
}

func addSelection(fs *flag.FlagSet) *selection {
	s := &selection{vars: vars{}}
	fs.StringVar(&s.config, "config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	fs.StringVar(&s.service, "service", "", "service from the config (default: the config's default)")
	fs.StringVar(&s.env, "env", "", "environment of the service (default: the config's default)")
	fs.Var(s.vars, "var", "runbook input name=value, repeatable (e.g. restore_time=\"2026-11-26 09:30 Europe/London\")")
	return s
}

// startRequest resolves scenario, service and environment into a request.
func (a *app) startRequest(scenario string, sel *selection, actor string) (*runbook.StartRequest, error) {
	rb, err := a.catalog.Get(scenario)
	if err != nil {
		return nil, err
	}
	service, env := sel.service, sel.env
	if service == "" {
		service = a.cfg.Default.Service
	}
	if env == "" && service == a.cfg.Default.Service {
		env = a.cfg.Default.Env
	}
	if service == "" || env == "" {
		return nil, &exitError{code: 2, msg: "give --service and --env (the config has no default)"}
	}
	scope, err := a.cfg.Scope(service, env)
	if err != nil {
		return nil, err
	}
	inputs := map[string]string{}
	for k, v := range sel.vars {
		inputs[k] = v
	}
	return &runbook.StartRequest{Runbook: rb, Service: service, Env: env, Config: scope, Inputs: inputs, Actor: actor}, nil
}

// plan prints the resolved steps and the exact call of each; it executes nothing.
func plan(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	sel := addSelection(fs)
	simulate := fs.String("simulate", "", "mark these adapters as simulated in the plan (github, kubernetes, azure, http or all)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: drbot plan SCENARIO [--service S] [--env E] [--var k=v]..."}
	}
	if err := a.load(sel.config, true); err != nil {
		return err
	}
	a.logger(zap.WarnLevel)
	req, err := a.startRequest(pos[0], sel, localUser(a.getenv))
	if err != nil {
		return err
	}
	sims, err := parseSimulate(*simulate)
	if err != nil {
		return err
	}
	// A plan touches nothing, so it describes with simulated actions and
	// only marks the families the run would simulate.
	reg := planRegistry(a, sims)
	eng := runbook.New(runbook.Options{Actions: reg, Logger: a.log, Clock: a.clock, Guard: a.cfg.Guard()})
	v, err := eng.Plan(*req)
	if err != nil {
		return err
	}
	for _, in := range req.Runbook.Inputs {
		if in.Type == runbook.InputTime {
			if s, ok := v.Run.Vars["inputs"].(map[string]any)[in.Name].(string); ok && s != "" {
				t, _ := time.Parse(time.RFC3339, s)
				fmt.Fprintf(a.stdout, "%s = %s\n", in.Name, runbook.FormatBoth(t, a.cfg.Location))
			}
		}
	}
	terminal.New(a.stdout, a.cfg.Location).Plan(v)
	return nil
}

// planRegistry marks the families a run would simulate (--simulate); the
// rest, Slack included, stand in for real adapters that a plan never calls,
// so a plan needs no credentials.
func planRegistry(a *app, simulated map[string]bool) runbook.Registry {
	if a.sim == nil {
		a.sim = sim.New(sim.Options{})
	}
	reg := runbook.Registry{}
	for kind, act := range a.sim.Actions() {
		family, _, _ := strings.Cut(kind, ".")
		if isSimulated(family, simulated) {
			reg[kind] = act
		} else {
			reg[kind] = notRun{}
		}
	}
	return reg
}

// notRun stands for a real adapter in a plan; a plan executes nothing.
type notRun struct{}

func (notRun) Run(context.Context, runbook.Request) (runbook.Result, error) {
	return runbook.Result{}, errors.New("a plan executes nothing")
}
