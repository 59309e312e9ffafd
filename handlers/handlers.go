package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Engine is what the handlers need of runbook.Engine. Its calls are
// synchronous (Approve runs the step to its end), so they run on a worker.
type Engine interface {
	Check(ctx context.Context, req runbook.StartRequest) error
	Start(ctx context.Context, req runbook.StartRequest) (*runbook.Run, error)
	Approve(ctx context.Context, runID, stepID string, version int, actor string) error
	Skip(ctx context.Context, runID, stepID string, version int, actor, reason string) error
	SkipNeeds(ctx context.Context, runID, stepID string) (*runbook.SkipNeed, error)
	SkipWithValue(ctx context.Context, runID, stepID string, version int, actor, reason, value string) error
	Choices(ctx context.Context, runID, stepID string) ([]runbook.Choice, error)
	Choose(ctx context.Context, runID, stepID string, version int, actor, value string) error
	Retry(ctx context.Context, runID, stepID string, version int, actor string) error
	Abort(ctx context.Context, runID, actor, reason string) error
	Note(ctx context.Context, runID, actor, text string) error
	View(ctx context.Context, runID string) (*runbook.RunView, error)
}

// Runs lists runs (the store does).
type Runs interface {
	Runs(ctx context.Context, activeOnly bool, limit int) ([]*runbook.Run, error)
	// ActiveRunInChannel finds the active run of an incident channel
	// without reading the others (runbook.ErrNotFound if there is none).
	ActiveRunInChannel(ctx context.Context, channelID string) (*runbook.Run, error)
}

// Scopes are the configured services and environments (config.Config).
type Scopes interface {
	// Scope returns the template values of a service and environment.
	Scope(service, env string) (map[string]any, error)
	// Environments lists service → environment names, sorted.
	Environments() map[string][]string
	// Guard lists the live resources no input may name as a copy.
	Guard() runbook.Guard
}

// Access decides who may do something (approvers; people who may post
// updates).
type Access interface {
	MayAct(ctx context.Context, user string) (bool, error)
	// Cached answers from memory; known is false when a lookup is needed.
	Cached(user string) (allowed, known bool)
}

// MetaCommsLead is the run meta key of the comms lead's user id.
const MetaCommsLead = "comms_lead"

// ChannelRequest asks for an incident channel.
type ChannelRequest struct {
	Scenario, Title string
	Service, Env    string
	Requester       string
	Comms           string // the comms lead, invited too; empty if not named
	At              time.Time
	// Incident is the declaration the topic shows (priority, kind, leads,
	// description).
	Incident runbook.Incident
}

// Channel is an incident channel.
type Channel struct {
	ID, Name string
	// Warnings are what went wrong without stopping the start (e.g. a
	// responder who could not be invited).
	Warnings []string
}

// Incidents does the Slack side of a run that the handlers ask for (the bot).
type Incidents interface {
	// OpenChannel creates the incident channel, sets topic and purpose and
	// invites people. A refusal's text says what the user can do (e.g. the
	// missing scope).
	OpenChannel(ctx context.Context, req ChannelRequest) (Channel, error)
	// Abandon explains in a channel why no run started in it.
	Abandon(ctx context.Context, ch Channel, reason string)
	// Announce posts a stakeholder update about a run.
	Announce(ctx context.Context, runID, actor, text string) error
	// UploadReport uploads a run's incident report into its channel.
	UploadReport(ctx context.Context, runID string) error
	// InviteLeads brings leads named later into the incident channel; it
	// returns a warning when some could not be invited.
	InviteLeads(ctx context.Context, channelID string, users ...string) string
	// TimelineLink links a run's timeline thread ("" when unknown), for
	// what is raised after the run to link back to.
	TimelineLink(ctx context.Context, runID string) string
}

// Options are the Handler's dependencies.
type Options struct {
	Engine    Engine
	Runs      Runs
	Catalog   runbook.Catalog
	Scopes    Scopes
	Incidents Incidents
	// Approvers may start, approve, skip, retry and abort.
	Approvers Access
	// Notifiers may post /dr notify updates (approvers and responders).
	Notifiers Access
	Clock     runbook.Clock
	Location  *time.Location // local zone shown next to UTC
	Logger    *zap.Logger
	// Preflight, if set, answers /dr preflight and adds its warnings to a
	// /dr start reply.
	Preflight Preflight
	// Comms is the engine's comms side (nil: Engine, if it has it).
	Comms CommsEngine
	// FollowUps raises follow-up issues in FollowUpRepo (owner/name); nil
	// or empty: none are offered.
	FollowUps    FollowUps
	FollowUpRepo string
	// DrillMaxAge flags DR tests older than it (default 6 months).
	DrillMaxAge time.Duration
}

// Handler turns commands, clicks and forms into engine calls.
type Handler struct {
	opts Options
	log  *zap.Logger
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Clock == nil {
		opts.Clock = runbook.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if c, ok := opts.Engine.(CommsEngine); ok && opts.Comms == nil {
		opts.Comms = c
	}
	if opts.DrillMaxAge <= 0 {
		opts.DrillMaxAge = 4380 * time.Hour
	}
	return &Handler{opts: opts, log: opts.Logger.Named("handlers")}
}

// Request is a /dr command as typed by a user.
type Request struct {
	UserID, ChannelID, Text string
}

// Reply is what the bot says or shows back to the user.
type Reply struct {
	// Text goes to the user only (ephemeral).
	Text string
	// Form, if not nil, asks the bot to open the start form.
	Form *StartForm
	// Choice, if not nil, asks the bot to open a step's choice form.
	Choice *ChoiceForm
	// Compose, if not nil, asks the bot to open a compose form (a
	// stakeholder update, a DR test's note, a follow-up).
	Compose *ComposeForm
}

// Task is work for a worker; its Reply goes to the user when it is done.
type Task func(ctx context.Context) Reply

// Command decides on a /dr command without any I/O, so the bot can put the
// Reply in the ack within Slack's 3 seconds; the Task, if any, runs on a
// worker afterwards.
func (h *Handler) Command(req Request) (Reply, Task) {
	cmd, err := Parse(req.Text)
	if err != nil {
		return h.refusal(err), nil
	}
	switch cmd.Verb {
	case VerbHelp:
		return Reply{Text: Usage}, nil
	case VerbStart:
		return h.start(req, cmd)
	case VerbStatus:
		return Reply{}, func(ctx context.Context) Reply { return h.status(ctx, req, cmd.RunID) }
	case VerbList:
		return Reply{}, h.list
	case VerbNotify:
		if r, denied := h.deniedFast(h.opts.Notifiers, req.UserID, "post stakeholder updates"); denied {
			return r, nil
		}
		return Reply{}, func(ctx context.Context) Reply { return h.notify(ctx, req, cmd.Text) }
	case VerbAbort:
		return Reply{}, func(ctx context.Context) Reply { return h.abort(ctx, req, cmd) }
	case VerbSkip:
		if r, denied := h.deniedFast(h.opts.Approvers, req.UserID, "skip a step"); denied {
			return r, nil
		}
		return Reply{}, func(ctx context.Context) Reply { return h.skip(ctx, req, cmd) }
	case VerbPreflight:
		return h.preflight(req, cmd)
	case VerbRoles:
		if r, denied := h.deniedFast(h.opts.Notifiers, req.UserID, "name the leads"); denied {
			return r, nil
		}
		return Reply{}, func(ctx context.Context) Reply { return h.roles(ctx, req, cmd) }
	case VerbReport:
		return Reply{}, func(ctx context.Context) Reply { return h.report(ctx, req, cmd) }
	case VerbDrills:
		return Reply{}, h.drills
	}
	return Reply{Text: Usage}, nil
}

// deniedFast refuses from memory when it can; an unknown answer is left to
// the worker (mayAct).
func (h *Handler) deniedFast(a Access, user, what string) (Reply, bool) {
	if a == nil {
		return Reply{}, false
	}
	if ok, known := a.Cached(user); known && !ok {
		return Reply{Text: notAllowed(what)}, true
	}
	return Reply{}, false
}

func (h *Handler) mayAct(ctx context.Context, a Access, user, what string) (Reply, bool) {
	if a == nil {
		return Reply{}, true
	}
	ok, err := a.MayAct(ctx, user)
	if err != nil {
		return h.failure("check who may "+what, err), false
	}
	if !ok {
		return Reply{Text: notAllowed(what)}, false
	}
	return Reply{}, true
}

func notAllowed(what string) string {
	return "You are not allowed to " + what + ": only the configured approvers may (slack.approvers in drbot.yaml). Ask one of them."
}

// refusal turns a refusal into a reply, and anything else into a failure.
func (h *Handler) refusal(err error) Reply {
	if text, ok := runbook.IsRefusal(err); ok {
		return Reply{Text: text}
	}
	return h.failure("handle command", err)
}

// failure reports something that broke (not the user's fault).
func (h *Handler) failure(what string, err error) Reply {
	h.log.Error(what, zap.Error(err))
	return Reply{Text: fmt.Sprintf("Something went wrong (%s): %v. Nothing was changed by this request; try again, or check drbot's logs.", what, err)}
}

// start validates a /dr start as far as memory allows, then opens the form
// for what is missing or hands the start to a worker.
func (h *Handler) start(req Request, cmd Command) (Reply, Task) {
	if r, denied := h.deniedFast(h.opts.Approvers, req.UserID, "start a run"); denied {
		return r, nil
	}
	form := h.Form(FormValues{Scenario: cmd.Scenario, Service: cmd.Service, Env: cmd.Env, Declaration: cmd.Declaration(), Inputs: cmd.Inputs, ChannelID: req.ChannelID})
	if cmd.Scenario == "" {
		return Reply{Form: &form}, nil
	}
	rb, err := h.opts.Catalog.Get(cmd.Scenario)
	if err != nil {
		return Reply{Text: fmt.Sprintf("%v.\nType e.g. `/dr start %s service=… env=…`.", err, firstOr(h.opts.Catalog.IDs(), "scenario-2"))}, nil
	}
	if msg := h.checkTarget(cmd.Service, cmd.Env); msg != "" {
		return Reply{Text: msg}, nil
	}
	if _, err := cmd.Declaration().declare(rb, cmd.Inputs, req.UserID); err != nil {
		return h.refusal(err), nil
	}
	if cmd.Service == "" || cmd.Env == "" || len(missingInputs(rb, cmd.Inputs)) > 0 {
		return Reply{Form: &form}, nil
	}
	if err := h.checkInputs(rb, cmd.Inputs); err != nil {
		return Reply{Text: inputProblems(rb, err)}, nil
	}
	if _, err := h.opts.Scopes.Scope(cmd.Service, cmd.Env); err != nil {
		return Reply{Text: err.Error()}, nil
	}
	sr := StartRequest{Runbook: rb, Service: cmd.Service, Env: cmd.Env, Inputs: cmd.Inputs, UserID: req.UserID, Declaration: cmd.Declaration()}
	ack := Reply{Text: fmt.Sprintf("Starting %s (%s) for %s/%s…", rb.ID, rb.Title, cmd.Service, cmd.Env)}
	return ack, func(ctx context.Context) Reply { return h.Start(ctx, sr) }
}

// checkTarget names an unknown service or environment and what exists;
// empty values are left to the form.
func (h *Handler) checkTarget(service, env string) string {
	envs := h.opts.Scopes.Environments()
	if service == "" {
		return ""
	}
	list, ok := envs[service]
	if !ok {
		return fmt.Sprintf("Unknown service %q. Configured services: %s.\nType `service=<one of them>` or leave it out to pick from a form.",
			service, strings.Join(runbook.SortedKeys(envs), ", "))
	}
	if env != "" && !slices.Contains(list, env) {
		return fmt.Sprintf("Service %s has no environment %q. Configured: %s.\nType `env=<one of them>`.", service, env, strings.Join(list, ", "))
	}
	return ""
}

func missingInputs(rb *runbook.Runbook, given map[string]string) []string {
	var out []string
	for _, in := range rb.Inputs {
		if in.Required && in.Default == "" && strings.TrimSpace(given[in.Name]) == "" {
			out = append(out, in.Name)
		}
	}
	return out
}

// checkInputs parses a start's inputs and applies the guard to them, from
// memory, so that the ack (or the form) refuses them at once.
func (h *Handler) checkInputs(rb *runbook.Runbook, raw map[string]string) error {
	inputs, err := runbook.ParseInputs(rb, raw, h.opts.Clock.Now())
	if err != nil {
		return err
	}
	return h.opts.Scopes.Guard().CheckInputs(rb, inputs)
}

// inputProblems words ParseInputs' errors for the user, with the accepted
// formats.
func inputProblems(rb *runbook.Runbook, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s cannot start with these inputs:\n", rb.ID)
	for _, e := range splitErrors(err) {
		fmt.Fprintf(&b, "• %v\n", e)
	}
	b.WriteString("Fix the values and run the command again; times take a zone: " + runbook.TimeFormats + ".")
	return b.String()
}

// splitErrors unpacks an errors.Join.
func splitErrors(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}

// StartRequest is a validated start, from a command or the form.
type StartRequest struct {
	Runbook      *runbook.Runbook
	Service, Env string
	Inputs       map[string]string
	UserID       string
	Declaration  // priority, kind, leads, description
}

// Start checks the run with the engine, opens the incident channel, and
// starts the run in it. It runs on a worker. Nothing is created when the
// check fails; a channel whose run could not start is explained in it.
func (h *Handler) Start(ctx context.Context, sr StartRequest) Reply {
	if r, ok := h.mayAct(ctx, h.opts.Approvers, sr.UserID, "start a run"); !ok {
		return r
	}
	scope, err := h.opts.Scopes.Scope(sr.Service, sr.Env)
	if err != nil {
		return Reply{Text: err.Error()}
	}
	declared, err := sr.declare(sr.Runbook, sr.Inputs, sr.UserID)
	if err != nil {
		return h.refusal(err)
	}
	start := runbook.StartRequest{Runbook: sr.Runbook, Service: sr.Service, Env: sr.Env, Config: scope, Inputs: sr.Inputs, Actor: sr.UserID,
		Incident: declared}
	checked := h.startPreflight(ctx, sr.Service, sr.Env)
	if err := h.opts.Engine.Check(ctx, start); err != nil {
		return h.refusal(err)
	}
	ch, err := h.opts.Incidents.OpenChannel(ctx, ChannelRequest{
		Scenario: sr.Runbook.ID, Title: sr.Runbook.Title, Service: sr.Service, Env: sr.Env,
		Requester: sr.UserID, Comms: sr.Comms, At: h.opts.Clock.Now(), Incident: declared,
	})
	if err != nil {
		if text, ok := runbook.IsRefusal(err); ok {
			return Reply{Text: text + "\nNo run was started."}
		}
		h.log.Error("open incident channel", zap.Error(err), zap.String("user_id", sr.UserID))
		return Reply{Text: fmt.Sprintf("I could not create the incident channel: %v. No run was started; try again.", err)}
	}
	start.Meta = map[string]string{"channel": ch.ID, "channel_name": ch.Name}
	if sr.Comms != "" {
		start.Meta[MetaCommsLead] = sr.Comms
	}
	run, err := h.opts.Engine.Start(ctx, start)
	if run == nil {
		reason := fmt.Sprintf("%v", err)
		if text, ok := runbook.IsRefusal(err); ok {
			reason = text
		} else {
			h.log.Error("start run", zap.Error(err), zap.String("user_id", sr.UserID))
		}
		h.opts.Incidents.Abandon(ctx, ch, reason)
		return Reply{Text: fmt.Sprintf("The run did not start: %s. <#%s> was created but holds no run.", reason, ch.ID)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Started run %s (%s) for %s/%s in <#%s>.", run.ID, sr.Runbook.ID, sr.Service, sr.Env, ch.ID)
	for _, w := range ch.Warnings {
		fmt.Fprintf(&b, "\n⚠️ %s", w)
	}
	if err != nil {
		h.log.Error("advance new run", zap.Error(err), zap.String("run_id", run.ID))
		fmt.Fprintf(&b, "\n⚠️ The run started but could not move on: %v", err)
	}
	h.recordPreflight(ctx, &b, run.ID, sr.UserID, sr.Service, sr.Env, checked)
	return Reply{Text: b.String()}
}

// status reports a run (the channel's, the named or the only active one) or
// all active runs.
func (h *Handler) status(ctx context.Context, req Request, runID string) Reply {
	if runID == "" {
		run, err := h.findRun(ctx, req.ChannelID, "")
		if err != nil {
			if _, ok := runbook.IsRefusal(err); !ok {
				return h.failure("find run", err)
			}
			return h.list(ctx)
		}
		runID = run.ID
	}
	view, err := h.opts.Engine.View(ctx, runID)
	if err != nil {
		return h.refusal(err)
	}
	return Reply{Text: StatusText(view, h.opts.Location, h.opts.Clock.Now())}
}

// list reports recent runs, newest first.
func (h *Handler) list(ctx context.Context) Reply {
	runs, err := h.opts.Runs.Runs(ctx, false, 10)
	if err != nil {
		return h.failure("list runs", err)
	}
	if len(runs) == 0 {
		return Reply{Text: "No runs yet. Start one with `/dr start <scenario>`."}
	}
	var b strings.Builder
	b.WriteString("*Recent runs*\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "• `%s` %s %s/%s — %s, started %s by %s%s\n", r.ID, r.RunbookID, r.Service, r.Env, r.State,
			runbook.FormatBoth(r.StartedAt, h.opts.Location), Mention(r.StartedBy), channelRef(r))
	}
	return Reply{Text: strings.TrimSpace(b.String())}
}

func channelRef(r *runbook.Run) string {
	if ch := r.Meta["channel"]; ch != "" {
		return " in <#" + ch + ">"
	}
	return ""
}

// notify posts a stakeholder update and records it on the timeline.
func (h *Handler) notify(ctx context.Context, req Request, text string) Reply {
	if r, ok := h.mayAct(ctx, h.opts.Notifiers, req.UserID, "post stakeholder updates"); !ok {
		return r
	}
	run, err := h.findRun(ctx, req.ChannelID, "")
	if err != nil {
		return h.refusal(err)
	}
	return h.postUpdate(ctx, req.UserID, run.ID, text)
}

// abort stops a run.
func (h *Handler) abort(ctx context.Context, req Request, cmd Command) Reply {
	run, err := h.findRun(ctx, req.ChannelID, cmd.RunID)
	if err != nil {
		return h.refusal(err)
	}
	reason := cmd.Text
	if reason == "" {
		reason = "aborted with /dr abort"
	}
	if err := h.opts.Engine.Abort(ctx, run.ID, req.UserID, reason); err != nil {
		return h.refusal(err)
	}
	return Reply{Text: fmt.Sprintf("Run %s is aborted.", run.ID)}
}

// findRun picks the run a command is about: the named one, else the active
// run of this channel, else the only active run.
func (h *Handler) findRun(ctx context.Context, channelID, runID string) (*runbook.Run, error) {
	if runID == "" && channelID != "" {
		// The common case, and the one load makes hot: a command in a run's
		// incident channel.
		r, err := h.opts.Runs.ActiveRunInChannel(ctx, channelID)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, runbook.ErrNotFound) {
			return nil, fmt.Errorf("find the run of channel %s: %w", channelID, err)
		}
	}
	runs, err := h.opts.Runs.Runs(ctx, runID == "", 0)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	if runID != "" {
		for _, r := range runs {
			if r.ID == runID {
				return r, nil
			}
		}
		return nil, runbook.Refusef("there is no run %s; `/dr list` shows the runs", runID)
	}
	for _, r := range runs {
		if channelID != "" && r.Meta["channel"] == channelID {
			return r, nil
		}
	}
	switch len(runs) {
	case 0:
		return nil, runbook.Refusef("there is no active run; start one with `/dr start <scenario>`")
	case 1:
		return runs[0], nil
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = fmt.Sprintf("`%s` (%s/%s)", r.ID, r.Service, r.Env)
	}
	return nil, runbook.Refusef("%d runs are active: %s. Run the command in the run's incident channel, or name the run id", len(runs), strings.Join(ids, ", "))
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
