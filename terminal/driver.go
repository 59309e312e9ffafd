package terminal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Engine is what the Driver needs of the run engine.
type Engine interface {
	View(ctx context.Context, runID string) (*runbook.RunView, error)
	Approve(ctx context.Context, runID, stepID string, version int, actor string) error
	Retry(ctx context.Context, runID, stepID string, version int, actor string) error
	SkipNeeds(ctx context.Context, runID, stepID string) (*runbook.SkipNeed, error)
	SkipWithValue(ctx context.Context, runID, stepID string, version int, actor, reason, value string) error
	Choices(ctx context.Context, runID, stepID string) ([]runbook.Choice, error)
	Choose(ctx context.Context, runID, stepID string, version int, actor, value string) error
	Abort(ctx context.Context, runID, actor, reason string) error
	ResumeRun(ctx context.Context, runID string) error
}

// Stop ends a terminal run early: Code is the process exit code (130 for
// Ctrl-C, 1 otherwise) and Msg says why and how to go on.
type Stop struct {
	Code int
	Msg  string
}

func (s *Stop) Error() string { return s.Msg }

// Driver asks a person about each step of a run until the run ends.
type Driver struct {
	Engine  Engine
	Printer *Printer
	// Actor is the person at the terminal; they approve first.
	Actor string
	// Yes approves every step without asking, with a simulated second
	// approver. cmd allows it only when every adapter is simulated.
	Yes bool
	In  io.Reader
	Out io.Writer
	// Resume is the complete command that goes on with this run; every hint
	// the driver prints uses it.
	Resume string

	once  sync.Once
	lines chan string
}

// errEOF is the end of the person's input.
var errEOF = errors.New("end of input")

// personName is what a typed approver name must look like: a login or an
// e-mail address, never blank.
var personName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._@+-]{1,63}$`)

// Drive runs the run's steps with a person until the run ends, and prints
// the summary. A run that ends unfinished, the end of input and Ctrl-C return
// a *Stop carrying the resume command.
func (d *Driver) Drive(ctx context.Context, runID string) error {
	err := d.loop(ctx, runID)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &Stop{Code: 130, Msg: "interrupted; the run is saved. Go on with: " + d.Resume}
	case errors.Is(err, errEOF):
		return &Stop{Code: 1, Msg: "no answer (end of input); the run is saved. Go on with: " + d.Resume}
	}
	return err
}

func (d *Driver) loop(ctx context.Context, runID string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := d.Engine.View(ctx, runID)
		if err != nil {
			return err
		}
		cur, open := v.Current()
		if v.Run.State != runbook.RunActive || !open {
			return d.finish(v)
		}
		switch cur.State.State {
		case runbook.AwaitingApproval:
			d.Printer.Step(v, cur)
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
			err = d.Engine.ResumeRun(ctx, runID)
		}
		if text, refused := runbook.IsRefusal(err); refused && ctx.Err() == nil {
			d.say("refused: " + text)
			var setup *runbook.SetupError
			if errors.As(err, &setup) {
				return err
			}
			err = nil
		}
		if err != nil {
			return err
		}
	}
}

func (d *Driver) decide(ctx context.Context, runID string, cur runbook.StepView) error {
	id, version := cur.Step.ID, cur.State.Version
	if d.Yes {
		actor := d.Actor
		if len(cur.State.Approvers) > 0 {
			actor = d.Actor + "-second-approver"
		}
		d.say(fmt.Sprintf("   approved by %s (--yes, simulated adapters only)", actor))
		return d.Engine.Approve(ctx, runID, id, version, actor)
	}
	label := "approve"
	if cur.Step.Action == runbook.ManualKind {
		label = "mark done"
	}
	return d.offer(ctx, runID, cur, "a", label, func() error {
		if len(cur.State.Approvers) == 0 {
			return d.Engine.Approve(ctx, runID, id, version, d.Actor)
		}
		name, err := d.secondApprover(ctx, cur.State.Approvers)
		if err != nil || name == "" {
			return err
		}
		return d.Engine.Approve(ctx, runID, id, version, name)
	})
}

// secondApprover asks for the name of the second person. It returns "" (and
// says why) for a blank, malformed or repeated name: the step is not run.
func (d *Driver) secondApprover(ctx context.Context, have []string) (string, error) {
	name, err := d.askRaw(ctx, "second approver's name (a different person, who has read the step)")
	if err != nil {
		return "", err
	}
	switch {
	case name == "":
		d.say("   a second person must approve this step; their name is required. Nothing was run.")
		return "", nil
	case !personName.MatchString(name):
		d.say(fmt.Sprintf("   %q is not a name (letters, digits and . _ @ + -, 2 to 64 characters). Nothing was run.", name))
		return "", nil
	}
	for _, a := range have {
		if strings.EqualFold(a, name) {
			d.say(fmt.Sprintf("   %s already approved; a second, different person must. Nothing was run.", a))
			return "", nil
		}
	}
	return name, nil
}

func (d *Driver) failed(ctx context.Context, runID string, cur runbook.StepView) error {
	if d.Yes {
		return &Stop{Code: 1, Msg: fmt.Sprintf("step %s failed: %s\n  fix the cause and go on with: %s", cur.Step.ID, cur.State.Error, d.Resume)}
	}
	return d.offer(ctx, runID, cur, "r", "retry", func() error {
		return d.Engine.Retry(ctx, runID, cur.Step.ID, cur.State.Version, d.Actor)
	})
}

// offer asks for the step's main action (under key), choose (where the step
// offers it), skip or abort.
func (d *Driver) offer(ctx context.Context, runID string, cur runbook.StepView, key, label string, main func() error) error {
	canChoose := slices.Contains(cur.Controls, runbook.ControlChoose)
	answers := key + "=" + label + ", s=skip, q=abort the run"
	if canChoose {
		answers = key + "=" + label + ", c=choose another, s=skip, q=abort the run"
	}
	answer, err := d.ask(ctx, answers)
	if err != nil {
		return err
	}
	switch answer {
	case key:
		return main()
	case "c":
		if canChoose {
			return d.choose(ctx, runID, cur)
		}
	case "s":
		return d.skip(ctx, runID, cur)
	case "q":
		return d.Engine.Abort(ctx, runID, d.Actor, "aborted at the terminal")
	}
	d.say(fmt.Sprintf("   %q is not an answer here; type %s", answer, answers))
	return nil
}

// choose shows what the step offers as a numbered list and completes it
// with the pick.
func (d *Driver) choose(ctx context.Context, runID string, cur runbook.StepView) error {
	list, err := d.Engine.Choices(ctx, runID, cur.Step.ID)
	if err != nil {
		return err
	}
	for i, c := range list {
		d.say(fmt.Sprintf("   %2d. %s", i+1, c.Label))
	}
	answer, err := d.askRaw(ctx, fmt.Sprintf("number (1-%d, Enter = back)", len(list)))
	if err != nil || answer == "" {
		return err
	}
	n, err := strconv.Atoi(answer)
	if err != nil || n < 1 || n > len(list) {
		d.say(fmt.Sprintf("   %q is not a number from 1 to %d; nothing was chosen.", answer, len(list)))
		return nil
	}
	return d.Engine.Choose(ctx, runID, cur.Step.ID, cur.State.Version, d.Actor, list[n-1].Value)
}

// skip asks for a reason and, when a later step needs what this one would
// have remembered, for that value, offering what the system holds now.
func (d *Driver) skip(ctx context.Context, runID string, cur runbook.StepView) error {
	reason, err := d.askRaw(ctx, "reason (optional)")
	if err != nil {
		return err
	}
	need, err := d.Engine.SkipNeeds(ctx, runID, cur.Step.ID)
	if err != nil {
		return err
	}
	value := ""
	if need != nil {
		d.say("   " + need.Text(cur.Step))
		prompt := need.Name
		if need.Current != "" {
			prompt += " [Enter keeps " + need.Current + "]"
		}
		if value, err = d.askRaw(ctx, prompt); err != nil {
			return err
		}
		if value == "" {
			value = need.Current
		}
		if value == "" {
			d.say("   no value given; the step was not skipped.")
			return nil
		}
	}
	return d.Engine.SkipWithValue(ctx, runID, cur.Step.ID, cur.State.Version, d.Actor, reason, value)
}

// ask prompts and returns the answer in lower case.
func (d *Driver) ask(ctx context.Context, prompt string) (string, error) {
	s, err := d.askRaw(ctx, prompt)
	return strings.ToLower(s), err
}

// askRaw prompts and returns the answer as typed, trimmed. It returns
// errEOF at the end of input and ctx's error at once when ctx ends (Ctrl-C),
// without waiting for a line.
func (d *Driver) askRaw(ctx context.Context, prompt string) (string, error) {
	d.once.Do(func() {
		d.lines = make(chan string)
		go func() {
			defer close(d.lines)
			sc := bufio.NewScanner(d.In)
			for sc.Scan() {
				d.lines <- sc.Text()
			}
		}()
	})
	fmt.Fprintf(d.Out, "   %s > ", prompt)
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.Out)
		return "", ctx.Err()
	case line, ok := <-d.lines:
		if !ok {
			fmt.Fprintln(d.Out)
			return "", errEOF
		}
		return strings.TrimSpace(line), nil
	}
}

func (d *Driver) say(s string) { fmt.Fprintln(d.Out, s) }

// finish prints the closing summary; a run that did not finish cleanly is a
// Stop with code 1.
func (d *Driver) finish(v *runbook.RunView) error {
	steps := make([]runbook.StepState, len(v.Steps))
	for i, s := range v.Steps {
		steps[i] = s.State
	}
	sum := runbook.Summarize(v.Run, v.Runbook, steps, time.Now())
	d.Printer.Summary(sum)
	if v.Run.State != runbook.RunDone || sum.Failed > 0 {
		return &Stop{Code: 1, Msg: fmt.Sprintf("run %s ended %s", v.Run.ID, v.Run.State)}
	}
	return nil
}
