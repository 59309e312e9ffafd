package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/terminal"
)

// rehearse runs a scenario at the terminal: simulated adapters by default,
// real ones with --live (the way to run the runbook when Slack is down).
func rehearse(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("rehearse", flag.ContinueOnError)
	sel := addSelection(fs)
	yes := fs.Bool("yes", false, "approve every step without asking (a second approver is simulated for destructive steps)")
	resume := fs.String("resume", "", "resume the run with this id after a crash or Ctrl-C")
	live := fs.Bool("live", false, "use the real GitHub, Kubernetes and HTTP adapters (credentials from the environment)")
	simulate := fs.String("simulate", "", "with --live, simulate these adapters anyway: comma-separated github, kubernetes, azure, http")
	db := fs.String("db", "drbot-rehearse.db", "the rehearsal store (kept apart from the bot's DRBOT_DB, so a rehearsal never blocks a real run)")
	pos, err := parseArgs(fs, args, a.stderr)
	if err != nil {
		return &exitError{code: 2}
	}
	if (*resume == "") == (len(pos) != 1) {
		return &exitError{code: 2, msg: "usage: drbot rehearse SCENARIO [flags] | drbot rehearse --resume RUN"}
	}
	if err := a.load(sel.config, true); err != nil {
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
		fmt.Fprintf(a.stderr, "drbot: LIVE rehearsal; these steps are still SIMULATED: %s\n", strings.Join(simulatedKinds(reg), ", "))
	}
	if err := a.openStore(ctx, *db); err != nil {
		return err
	}
	printer := terminal.New(a.stdout, a.cfg.Location)
	eng := runbook.New(runbook.Options{Store: a.store, Actions: reg, Notifier: printer, Logger: a.log, Clock: a.clock})

	runID := *resume
	if runID != "" {
		err = eng.ResumeRun(ctx, runID)
	} else {
		var run *runbook.Run
		req, rerr := a.startRequest(pos[0], sel, localUser(a.getenv))
		if rerr != nil {
			return rerr
		}
		rehearsalInputs(req, a.cfg.Location, a.clock.Now(), a.stdout)
		run, err = eng.Start(ctx, *req)
		if run != nil {
			runID = run.ID
			fmt.Fprintf(a.stdout, "run id %s (resume with: drbot rehearse --resume %s --db %s)\n", runID, runID, *db)
		}
	}
	var active *runbook.ActiveRunError
	if errors.As(err, &active) {
		return &exitError{code: 1, msg: fmt.Sprintf("%v\n  go on with: drbot rehearse --resume %s --db %s (answer q to abort it)", err, active.RunID, *db)}
	}
	if err != nil {
		return interrupted(ctx, err, runID, *db)
	}
	d := driver{eng: eng, printer: printer, actor: localUser(a.getenv), yes: *yes, in: bufio.NewScanner(a.stdin), out: a}
	return interrupted(ctx, d.drive(ctx, runID), runID, *db)
}

// interrupted turns a cancelled context into the resume hint.
func interrupted(ctx context.Context, err error, runID, db string) error {
	if err != nil && ctx.Err() != nil {
		return &exitError{code: 130, msg: fmt.Sprintf("interrupted; the run is saved: drbot rehearse --resume %s --db %s", runID, db)}
	}
	return err
}

// rehearsalInputs fills what a rehearsal may assume: a restore time an hour
// ago and dr_test=true (a rehearsal is a DR test). It says what it assumed.
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

// driver asks a person (or --yes) about each step until the run ends.
type driver struct {
	eng     *runbook.Engine
	printer *terminal.Printer
	actor   string
	yes     bool
	in      *bufio.Scanner
	out     *app
}

func (d *driver) drive(ctx context.Context, runID string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := d.eng.View(ctx, runID)
		if err != nil {
			return err
		}
		cur, open := v.Current()
		if v.Run.State != runbook.RunActive || !open {
			return d.finish(ctx, runID)
		}
		switch cur.State.State {
		case runbook.AwaitingApproval:
			d.printer.Step(v, cur)
			err = d.decide(ctx, runID, cur)
		case runbook.Failed:
			err = d.failed(ctx, runID, cur)
		case runbook.Running:
			// Another process runs it (or it is being re-attached): wait.
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		default:
			err = d.eng.ResumeRun(ctx, runID)
		}
		if text, refused := runbook.IsRefusal(err); refused {
			fmt.Fprintln(d.out.stdout, "refused:", text)
			err = nil
		}
		if err != nil {
			return err
		}
	}
}

func (d *driver) decide(ctx context.Context, runID string, cur runbook.StepView) error {
	id, version := cur.Step.ID, cur.State.Version
	actor := d.actor
	if d.yes {
		if len(cur.State.Approvers) > 0 {
			actor = d.actor + "-second-approver"
		}
		fmt.Fprintf(d.out.stdout, "   approved by %s (--yes)\n", actor)
		return d.eng.Approve(ctx, runID, id, version, actor)
	}
	label := "approve"
	if cur.Step.Action == runbook.ManualKind {
		label = "mark done"
	}
	return d.offer(ctx, runID, cur, "a", label, func() error {
		if len(cur.State.Approvers) > 0 {
			actor = d.ask("second approver's name")
		}
		return d.eng.Approve(ctx, runID, id, version, actor)
	})
}

func (d *driver) failed(ctx context.Context, runID string, cur runbook.StepView) error {
	id, version := cur.Step.ID, cur.State.Version
	if d.yes {
		return &exitError{code: 1, msg: fmt.Sprintf("step %s failed: %s; fix the cause and retry with: drbot rehearse --resume %s", id, cur.State.Error, runID)}
	}
	return d.offer(ctx, runID, cur, "r", "retry", func() error {
		return d.eng.Retry(ctx, runID, id, version, d.actor)
	})
}

// offer asks for the step's main action (under key), skip or abort. End of
// input leaves the run saved for --resume.
func (d *driver) offer(ctx context.Context, runID string, cur runbook.StepView, key, label string, main func() error) error {
	switch d.ask(key + "=" + label + ", s=skip, q=abort the run") {
	case key:
		return main()
	case "s":
		return d.eng.Skip(ctx, runID, cur.Step.ID, cur.State.Version, d.actor, d.ask("reason (optional)"))
	case "q":
		return d.eng.Abort(ctx, runID, d.actor, "aborted at the terminal")
	case "":
		return &exitError{code: 1, msg: fmt.Sprintf("no answer (end of input); the run is saved: drbot rehearse --resume %s", runID)}
	}
	return nil
}

// ask prompts and returns the first word of the answer, "" at end of input.
func (d *driver) ask(prompt string) string {
	fmt.Fprintf(d.out.stdout, "   %s > ", prompt)
	if !d.in.Scan() {
		fmt.Fprintln(d.out.stdout)
		return ""
	}
	return strings.ToLower(strings.TrimSpace(d.in.Text()))
}

// finish prints the closing summary; a run that did not finish cleanly exits 1.
func (d *driver) finish(ctx context.Context, runID string) error {
	v, err := d.eng.View(ctx, runID)
	if err != nil {
		return err
	}
	steps := make([]runbook.StepState, len(v.Steps))
	for i, s := range v.Steps {
		steps[i] = s.State
	}
	sum := runbook.Summarize(v.Run, v.Runbook, steps, time.Now())
	d.printer.Summary(sum)
	if v.Run.State != runbook.RunDone || sum.Failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("run %s ended %s", runID, v.Run.State)}
	}
	return nil
}
