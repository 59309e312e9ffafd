package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/drbot-dev/drbot/report"
	"github.com/drbot-dev/drbot/runbook"
)

// dbPath is --db, else DRBOT_DB, else drbot.db: the bot's store.
func (a *app) dbPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := a.getenv("DRBOT_DB"); p != "" {
		return p
	}
	return "drbot.db"
}

// openExisting opens the store at path, refusing to create one: a report
// of a store that does not exist is a typo.
func (a *app) openExisting(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("no store at %s (set --db or DRBOT_DB): %v", path, err)}
	}
	return a.openStore(ctx, path)
}

// reportCmd prints a run's incident report: `drbot report RUN [--format md|json]`.
func reportCmd(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	format := fs.String("format", "md", "md (Markdown, the file drbot uploads into the incident channel) or json")
	db := fs.String("db", "", "the store (default $DRBOT_DB or drbot.db)")
	configFlag := fs.String("config", "", "config file, for the local time zone (default $DRBOT_CONFIG or drbot.yaml)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: drbot report RUN [--format md|json] [--db PATH]"}
	}
	if *format != "md" && *format != "json" {
		return &exitError{code: 2, msg: fmt.Sprintf("--format %q: use md or json", *format)}
	}
	if err := a.load(*configFlag, true); err != nil {
		return err
	}
	if err := a.openExisting(ctx, a.dbPath(*db)); err != nil {
		return err
	}
	eng := runbook.New(runbook.Options{Store: a.store, Clock: a.clock})
	view, err := eng.View(ctx, pos[0])
	if err != nil {
		return err
	}
	events, err := eng.Events(ctx, pos[0])
	if err != nil {
		return err
	}
	rep := report.Build(view, events, a.clock.Now(), a.cfg.Location)
	out := rep.Markdown()
	if *format == "json" {
		if out, err = rep.JSON(); err != nil {
			return err
		}
	}
	_, err = a.stdout.Write(out)
	return err
}
