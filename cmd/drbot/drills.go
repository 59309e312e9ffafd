package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/drbot-dev/drbot/runbook"
)

// drills lists the last DR test per service, environment and scenario and
// flags those older than comms.drill_max_age: `drbot drills [--service S]`.
func drills(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("drills", flag.ContinueOnError)
	service := fs.String("service", "", "only this service")
	db := fs.String("db", "", "the store (default $DRBOT_DB or drbot.db)")
	configFlag := fs.String("config", "", "config file (default $DRBOT_CONFIG or drbot.yaml)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: "usage: drbot drills [--service S] [--db PATH]"}
	}
	if err := a.load(*configFlag, true); err != nil {
		return err
	}
	if err := a.openExisting(ctx, a.dbPath(*db)); err != nil {
		return err
	}
	runs, err := a.store.Runs(ctx, false, 0)
	if err != nil {
		return err
	}
	maxAge := a.cfg.Comms.DrillMaxAge
	var list []runbook.Drill
	for _, d := range runbook.Drills(runs, a.clock.Now(), maxAge) {
		if *service == "" || d.Service == *service {
			list = append(list, d)
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No DR test recorded yet. Start one with `/dr start <scenario> kind=test` (or dr_test=true).")
		return nil
	}
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tENV\tSCENARIO\tLAST TEST (UTC)\tRESULT\tTIME TO RECOVER\tRUN\t")
	overdue := 0
	for _, d := range list {
		note := ""
		if d.Overdue {
			note = "OVERDUE: older than " + runbook.HumanDuration(maxAge)
			overdue++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Service, d.Env, d.Scenario, d.At.UTC().Format("2006-01-02 15:04"),
			d.Result, runbook.HumanDuration(d.TimeToRecover), d.RunID, note)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if overdue > 0 {
		fmt.Fprintf(a.stdout, "%d of %d overdue for a DR test (comms.drill_max_age %s).\n", overdue, len(list), runbook.HumanDuration(maxAge))
	}
	return nil
}
