package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/preflight"
)

// VerbPreflight checks the setup against the real systems.
const VerbPreflight Verb = "preflight"

// Preflight runs drbot's preflight checks (a preflight.Checker), reading
// only.
type Preflight interface {
	Run(ctx context.Context, f preflight.Filter) preflight.Result
}

// Limits of the preflight replies.
const (
	// preflightReplyMax keeps a /dr preflight reply inside one Slack
	// message: text is truncated past 40,000 characters (Slack API docs,
	// chat.postMessage "text"), and a long ephemeral reply is unreadable
	// anyway; the command line prints the whole table.
	preflightReplyMax = 3500
	// startWarningsMax is how many preflight problems a /dr start reply
	// lists.
	startWarningsMax = 5
	// startPreflightWait is how long a started run's reply waits for the
	// preflight begun beside it; the run never waits.
	startPreflightWait = 5 * time.Second
)

// parsePreflight reads `/dr preflight [service=<s>] [env=<e>]` (a bare
// service and environment are taken too).
func parsePreflight(rest string) (Command, error) {
	c := Command{Verb: VerbPreflight}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && k == "service":
			c.Service = v
		case ok && k == "env":
			c.Env = v
		case !ok && c.Service == "":
			c.Service = f
		case !ok && c.Env == "":
			c.Env = f
		default:
			return Command{}, usageErr(fmt.Sprintf("unexpected %q; type `/dr preflight [service=<service>] [env=<env>]`", f))
		}
	}
	return c, nil
}

// preflight runs the checks on a worker and replies with the problems of
// each table.
func (h *Handler) preflight(req Request, cmd Command) (Reply, Task) {
	if h.opts.Preflight == nil {
		return Reply{Text: "Preflight is not available in this drbot; run `drbot preflight` where drbot runs."}, nil
	}
	if msg := h.checkTarget(cmd.Service, cmd.Env); msg != "" {
		return Reply{Text: msg}, nil
	}
	ack := Reply{Text: "Running preflight checks (read only)…"}
	return ack, func(ctx context.Context) Reply {
		res := h.opts.Preflight.Run(ctx, preflight.Filter{Service: cmd.Service, Env: cmd.Env, Slack: cmd.Service == ""})
		return Reply{Text: PreflightText(res)}
	}
}

// PreflightText is a preflight result for Slack: a line per table and its
// checks that are not ok, each with what to change.
func PreflightText(res preflight.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Preflight* (%s): %s\n", res.At.Format("2006-01-02 15:04 UTC"), res.Summary())
	cut := 0
	for _, t := range res.Tables {
		line := fmt.Sprintf("*%s* — %d fail, %d warn, %d ok, %d skipped\n", t.Title(), t.Count(preflight.Fail), t.Count(preflight.Warn), t.Count(preflight.OK), t.Count(preflight.Skip))
		for _, c := range t.Checks {
			if c.Status == preflight.OK {
				continue
			}
			item := fmt.Sprintf("• %s %s: %s — %s", icon(c.Status), c.Family, c.Name, c.Detail)
			if c.Fix != "" {
				item += "\n    → " + c.Fix
			}
			line += item + "\n"
		}
		if b.Len()+len(line) > preflightReplyMax {
			cut++
			continue
		}
		b.WriteString(line)
	}
	if cut > 0 {
		fmt.Fprintf(&b, "…and %d more tables; `drbot preflight` prints them all.", cut)
	}
	return strings.TrimSpace(b.String())
}

func icon(s preflight.Status) string {
	switch s {
	case preflight.Fail:
		return "❌"
	case preflight.Warn:
		return "⚠️"
	case preflight.Skip:
		return "⏭️"
	}
	return "✅"
}

// startPreflight begins the checks of a service and environment beside a
// start; the returned func gives the result, waiting at most
// startPreflightWait (ok false: not run, or not finished). A start never
// waits for it longer, nor fails by it.
func (h *Handler) startPreflight(ctx context.Context, service, env string) func() (preflight.Result, bool) {
	if h.opts.Preflight == nil {
		return func() (preflight.Result, bool) { return preflight.Result{}, false }
	}
	done := make(chan preflight.Result, 1)
	go func() {
		done <- h.opts.Preflight.Run(context.WithoutCancel(ctx), preflight.Filter{Service: service, Env: env})
	}()
	return func() (preflight.Result, bool) {
		select {
		case res := <-done:
			return res, true
		case <-time.After(startPreflightWait):
			return preflight.Result{}, false
		}
	}
}

// recordPreflight adds a started run's preflight to its reply, as warnings,
// and to its timeline, so the record of a DR test keeps what was checked.
func (h *Handler) recordPreflight(ctx context.Context, b *strings.Builder, runID, actor, service, env string, wait func() (preflight.Result, bool)) {
	if h.opts.Preflight == nil {
		return
	}
	res, ok := wait()
	if !ok {
		fmt.Fprintf(b, "\n⚠️ preflight did not finish in %s; `/dr preflight %s %s` shows it", startPreflightWait, service, env)
		return
	}
	problems := res.Problems(preflight.Warn)
	for i, p := range problems {
		if i == startWarningsMax {
			fmt.Fprintf(b, "\n⚠️ …and %d more: `/dr preflight %s %s`", len(problems)-i, service, env)
			break
		}
		fmt.Fprintf(b, "\n⚠️ preflight: %s", p)
	}
	note := "preflight at the start: " + res.Summary()
	if len(problems) > 0 {
		note += "\n" + strings.Join(problems, "\n")
	}
	if err := h.opts.Engine.Note(ctx, runID, actor, note); err != nil {
		h.log.Warn("record preflight", zap.String("run_id", runID), zap.Error(err))
	}
}
