package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/storeoutbox"
	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// serve runs the Slack bot in socket mode until ctx ends: commands, buttons,
// the incident channel and timeline, and the runs left open by an earlier
// process (resumed).
func serve(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configFlag := fs.String("config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	var simulate simulateFlag
	fs.Var(&simulate, "simulate", "simulate adapters: --simulate for all (a drill that touches no infrastructure), or --simulate=azure,github (any of github, kubernetes, azure, http)")
	workers := fs.Int("workers", 16, "commands and clicks handled at once (more wait in a queue); steps run on the engine, not on these workers")
	listen := fs.String("listen", "", "serve /healthz, /readyz and /metrics on this address, e.g. :8080 (default $DRBOT_LISTEN; off if neither)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("serve takes no arguments, got %q (a list of adapters is written --simulate=%s)", pos, strings.Join(pos, ","))}
	}
	if err := a.load(*configFlag, false); err != nil {
		return err
	}
	log := a.logger(zap.InfoLevel)
	cfg := a.cfg
	if *listen == "" {
		*listen = a.getenv("DRBOT_LISTEN")
	}
	p := newProbes()
	p.config.Store(true)
	if err := a.listen(*listen, p, true, log); err != nil {
		return err
	}
	if cfg.Slack.BotToken.Value() == "" || cfg.Slack.AppToken.Value() == "" {
		return &exitError{code: 1, msg: "set SLACK_BOT_TOKEN (xoxb-…) and SLACK_APP_TOKEN (xapp-…, with connections:write); deploy/slack-app-manifest.yaml creates the app"}
	}
	reg, err := a.actions(string(simulate))
	if err != nil {
		return err
	}
	if kinds := simulatedKinds(reg); len(kinds) > 0 {
		log.Warn("simulated adapters: their steps touch nothing real and are marked SIMULATED", zap.Strings("kinds", kinds))
	}
	db, err := a.storePath()
	if err != nil {
		return err
	}
	if err := a.openStore(ctx, db); err != nil {
		return err
	}
	p.store.Store(a.store)
	owner, lease, err := a.replica(log)
	if err != nil {
		return err
	}
	b, err := bot.New(bot.Options{
		BotToken: cfg.Slack.BotToken.Value(), AppToken: cfg.Slack.AppToken.Value(), APIURL: cfg.Slack.APIURL,
		Location: cfg.Location, StakeholderChannels: cfg.Slack.StakeholderChannels, DeveloperChannels: cfg.Slack.DeveloperChannels,
		Approvers: bot.Principals(cfg.Slack.Approvers), Responders: bot.Principals(cfg.Slack.Responders),
		ChannelName: cfg.ChannelName, Outbox: storeoutbox.Outbox{S: a.store, Owner: owner, Lease: lease}, Clock: a.clock, Logger: log, Workers: *workers,
		P1Contacts: cfg.Comms.P1Contacts, FollowUps: cfg.Comms.FollowUpRepo != "",
		Observer: p.metrics,
	})
	if err != nil {
		return err
	}
	followUps, err := a.followUps(string(simulate))
	if err != nil {
		return err
	}
	for kind, act := range b.Actions() {
		reg[kind] = act
	}
	eng := runbook.New(runbook.Options{
		Store: a.store, Actions: reg, Notifier: b, Authorizer: b.Approvers(), Clock: a.clock, Logger: log,
		Guard: cfg.Guard(), Setup: runbook.Setup{Config: cfg.File, Store: store.Redact(db)}, Observer: p.metrics,
		Owner: owner, Lease: lease,
		Cadence: runbook.Cadence{Every: cfg.Comms.UpdateEvery, P1: cfg.Comms.UpdateEveryP1},
	})
	b.Bind(eng)
	p.slack.Store(b)
	checker, err := a.preflightChecker(string(simulate))
	if err != nil {
		return err
	}
	h := handlers.New(handlers.Options{
		Engine: eng, Runs: a.store, Catalog: a.catalog, Scopes: cfg, Incidents: b,
		Approvers: b.Approvers(), Notifiers: b.Notifiers(), Clock: a.clock, Location: cfg.Location, Logger: log,
		Preflight: checker,
		FollowUps: followUps, FollowUpRepo: cfg.Comms.FollowUpRepo, DrillMaxAge: cfg.Comms.DrillMaxAge,
	})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.Run(gctx, h) })
	g.Go(func() error { eng.KeepLeases(gctx); return nil })
	// Stakeholder update reminders: when one is due is stored with the run;
	// this only looks, every remindEvery, with the engine's clock.
	g.Go(func() error { eng.Remind(gctx, remindEvery); return nil })
	g.Go(func() error {
		// Runs left open by an earlier process get their messages back
		// (buttons a crash left "in progress…") and go on; a failure to
		// resume one is logged and does not stop the bot.
		runs, err := a.store.Runs(gctx, true, 0)
		if err != nil {
			log.Error("list open runs", zap.Error(err))
		}
		for _, r := range runs {
			if err := b.RedrawOpen(gctx, r.ID); err != nil {
				log.Warn("redraw open run", zap.String("run_id", r.ID), zap.Error(err))
			}
		}
		if err := eng.Resume(gctx); err != nil && gctx.Err() == nil {
			log.Error("resume runs", zap.Error(err))
		}
		return nil
	})
	g.Go(func() error {
		startupPreflight(gctx, checker, b, log)
		return nil
	})
	log.Info("drbot serving", zap.Int("workers", *workers), zap.String("db", store.Redact(db)))
	err = g.Wait()
	// The bot has stopped taking clicks; steps still on the engine's executor
	// see ctx end, stay Running in the store for the next process's Resume,
	// and return. The store closes only after.
	eng.Wait()
	eng.ReleaseLeases(context.Background())
	if ctx.Err() != nil {
		log.Info("drbot stopped", zap.Error(ctx.Err()))
		return nil
	}
	return err
}

// remindEvery bounds how late a stakeholder update reminder may come.
const remindEvery = 30 * time.Second

// simulateFlag is --simulate: alone it means every adapter ("all"), with a
// value the list of adapters to simulate.
type simulateFlag string

func (f *simulateFlag) String() string { return string(*f) }

// IsBoolFlag lets --simulate stand without a value.
func (f *simulateFlag) IsBoolFlag() bool { return true }

// Set takes true/false or a list; parseSimulate checks the names.
func (f *simulateFlag) Set(s string) error {
	switch s {
	case "true":
		s = "all"
	case "false":
		s = ""
	}
	if _, err := parseSimulate(s); err != nil {
		return err
	}
	*f = simulateFlag(s)
	return nil
}
