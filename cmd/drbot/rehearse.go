package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/terminal"
)

// rehearse runs a scenario at the terminal: simulated adapters by default,
// real ones with --live (the way to run the runbook when Slack is down).
func rehearse(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("rehearse", flag.ContinueOnError)
	sel := addSelection(fs)
	yes := fs.Bool("yes", false, "approve every step without asking (simulated rehearsals only; a second approver is simulated for two-person steps)")
	resume := fs.String("resume", "", "go on with the run with this id after a crash, a failure or Ctrl-C")
	live := fs.Bool("live", false, "use the real GitHub, Kubernetes, Azure and HTTP adapters (credentials from the environment); every step is approved by a person")
	simulate := fs.String("simulate", "", "with --live, simulate these adapters anyway: comma-separated github, kubernetes, azure, http")
	db := fs.String("db", "drbot-rehearse.db", "the rehearsal store (kept apart from the bot's DRBOT_DB, so a rehearsal never blocks a real run)")
	listen := fs.String("listen", "", "serve /healthz, /readyz and /metrics on this address during the rehearsal, e.g. :8080 (off by default)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return err
	}
	if (*resume == "") == (len(pos) != 1) {
		return &exitError{code: 2, msg: "usage: drbot rehearse SCENARIO [flags] | drbot rehearse --resume RUN [flags]"}
	}
	if err := checkRehearseFlags(*live, *yes, *simulate); err != nil {
		return err
	}
	// A live run never falls back to the example config: it would act on
	// the example's repositories and clusters.
	if err := a.load(sel.config, !*live); err != nil {
		return err
	}
	a.logger(zap.WarnLevel)
	mode := "all"
	if *live {
		mode = *simulate
	}
	reg, err := a.actions(mode)
	if err != nil {
		return err
	}
	for k, v := range a.sim.Only("slack.") { // no Slack at the terminal
		reg[k] = v
	}
	if *live {
		if kinds := simulatedKinds(reg); len(kinds) > 0 {
			fmt.Fprintf(a.stderr, "drbot: LIVE run; these steps are SIMULATED: %s\n", strings.Join(kinds, ", "))
		}
	}
	if err := a.openStore(ctx, *db); err != nil {
		return err
	}
	p := newProbes()
	p.config.Store(true)
	p.store.Store(a.store)
	if err := a.listen(*listen, p, false, a.log); err != nil {
		return err
	}
	printer := terminal.New(a.stdout, a.cfg.Location)
	eng := runbook.New(runbook.Options{
		Store: a.store, Actions: reg, Notifier: printer, Logger: a.log, Clock: a.clock, Guard: a.cfg.Guard(),
		Setup: runbook.Setup{Config: a.configUsed(), Store: store.Redact(*db)}, Observer: p.metrics,
		// The terminal waits for each step before it asks about the next.
		Executor: runbook.SyncExecutor{},
	})

	runID := *resume
	if runID != "" {
		if err := a.sameRunSetup(ctx, runID, eng.Setup()); err != nil {
			return err
		}
		err = eng.ResumeRun(ctx, runID)
	} else {
		req, rerr := a.startRequest(pos[0], sel, localUser(a.getenv))
		if rerr != nil {
			return rerr
		}
		if !*live {
			rehearsalInputs(req, a.cfg.Location, a.clock.Now(), a.stdout)
		}
		var run *runbook.Run
		run, err = eng.Start(ctx, *req)
		if run != nil {
			runID = run.ID
			fmt.Fprintf(a.stdout, "run id %s (go on after a crash or Ctrl-C with: %s)\n", runID, resumeCommand(eng.Setup(), runID))
		}
	}
	var active *runbook.ActiveRunError
	if errors.As(err, &active) {
		hint := "drbot rehearse --resume " + active.RunID + " --db " + *db
		if other, rerr := a.store.Run(ctx, active.RunID); rerr == nil && other.Setup.Known() {
			hint = resumeCommand(other.Setup, active.RunID)
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%v\n  go on with it: %s (answer q there to abort it)", err, hint)}
	}
	hint := resumeCommand(eng.Setup(), runID)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, msg: "interrupted; the run is saved. Go on with: " + hint}
		}
		return err
	}
	d := &terminal.Driver{Engine: eng, Printer: printer, Actor: localUser(a.getenv), Yes: *yes, In: a.stdin, Out: a.stdout, Resume: hint}
	return stopError(d.Drive(ctx, runID))
}

// checkRehearseFlags refuses flag combinations that would let a real run go
// on without people or with an adapter list nobody meant.
func checkRehearseFlags(live, yes bool, simulate string) error {
	if _, err := parseSimulate(simulate); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if simulate != "" && !live {
		return &exitError{code: 2, msg: "--simulate picks what stays simulated in a --live run; without --live everything is simulated already"}
	}
	if live && yes {
		return &exitError{code: 2, msg: "--yes approves every step without a person; a --live run changes real systems, so a person approves each step at the prompt (drop --yes)"}
	}
	return nil
}

// sameRunSetup refuses a resume whose adapters or config differ from the
// ones the run started with, naming the command that goes on with it.
func (a *app) sameRunSetup(ctx context.Context, runID string, here runbook.Setup) error {
	run, err := a.store.Run(ctx, runID)
	if errors.Is(err, runbook.ErrNotFound) {
		return &exitError{code: 1, msg: fmt.Sprintf("there is no run %s in %s (is --db right?)", runID, here.Store)}
	}
	if err != nil {
		return err
	}
	if !run.Setup.Known() {
		return nil // a run from before setups were recorded
	}
	same := slices.Equal(run.Setup.Simulated, here.Simulated) && run.Setup.Config == here.Config
	if same {
		return nil
	}
	why := (&runbook.SetupError{RunID: runID, Run: run.Setup, Here: here}).Error()
	if run.Setup.Config != here.Config {
		why = fmt.Sprintf("run %s was started with the config %s, not %s", runID, orExample(run.Setup.Config), orExample(here.Config))
	}
	return &exitError{code: 1, msg: why + "\n  go on with: " + resumeCommand(run.Setup, runID)}
}

func orExample(path string) string {
	if path == "" {
		return "the built-in example config"
	}
	return path
}

// resumeCommand is the complete command that goes on with a run as it was
// started: the same store, config and adapters.
func resumeCommand(s runbook.Setup, runID string) string {
	cmd := "drbot rehearse --resume " + runID + " --db " + s.Store
	if s.Config != "" {
		cmd += " --config " + s.Config
	}
	var simulated []string
	for _, f := range s.Simulated {
		if f != "slack" { // Slack is always simulated at the terminal
			simulated = append(simulated, f)
		}
	}
	if len(simulated) == len(s.Families)-1 {
		return cmd // a rehearsal: everything simulated
	}
	cmd += " --live"
	if len(simulated) > 0 {
		cmd += " --simulate=" + strings.Join(simulated, ",")
	}
	return cmd
}

// stopError turns the driver's Stop into the process exit.
func stopError(err error) error {
	var stop *terminal.Stop
	if errors.As(err, &stop) {
		return &exitError{code: stop.Code, msg: stop.Msg}
	}
	return err
}

// rehearsalInputs fills what a fully simulated rehearsal may assume: a
// restore time an hour ago and dr_test=true (a rehearsal is a DR test). It
// says what it assumed. A run that touches a real system never gets it.
func rehearsalInputs(req *runbook.StartRequest, loc *time.Location, now time.Time, out io.Writer) {
	for _, in := range req.Runbook.Inputs {
		if req.Inputs[in.Name] != "" {
			continue
		}
		switch {
		case in.Name == "dr_test":
			req.Inputs[in.Name] = "true"
		case in.Required && in.Type == runbook.InputTime:
			req.Inputs[in.Name] = now.Add(-time.Hour).In(loc).Format("2006-01-02 15:04 ") + loc.String()
		default:
			continue
		}
		fmt.Fprintf(out, "rehearsal: %s not given, using %s=%q\n", in.Name, in.Name, req.Inputs[in.Name])
	}
}

func localUser(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return u
	}
	return "terminal"
}
