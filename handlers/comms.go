package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// The comms lead's side of a run: leads named later, the stage, stakeholder
// updates from a drafted form, the incident report, a DR test's result and
// follow-up issues.

// Buttons and selects of the comms lead's side.
const (
	ActStage      Action = "run.stage"     // the panel's stage select; Click.Value is the stage
	ActPostUpdate Action = "update.post"   // a reminder's Post update button
	ActDrillPass  Action = "drill.pass"    // a DR test's closing message: it passed
	ActDrillFail  Action = "drill.fail"    // ... it failed
	ActFollowUp   Action = "run.follow_up" // the closing message's Raise follow-up
)

// CommsEngine is what the comms lead's side needs of runbook.Engine.
type CommsEngine interface {
	SetStage(ctx context.Context, runID, actor string, to runbook.Stage) error
	SetRoles(ctx context.Context, runID, actor string, roles runbook.Incident) error
	DraftUpdate(ctx context.Context, runID string) (runbook.UpdateDraft, error)
	RecordUpdate(ctx context.Context, runID, actor, text string) error
	RecordDrill(ctx context.Context, runID, actor string, passed bool, note string) error
	AddFollowUp(ctx context.Context, runID, actor string, link runbook.Link) error
}

// FollowUps raises follow-up issues (the GitHub adapter).
type FollowUps interface {
	// CreateIssue opens an issue in repo (owner/name) and links to it.
	CreateIssue(ctx context.Context, repo, title, body string) (runbook.Link, error)
}

// Purpose is what a compose form is for.
type Purpose string

// Compose form purposes.
const (
	PurposeUpdate   Purpose = "update"    // a stakeholder update
	PurposeDrill    Purpose = "drill"     // a DR test's result note
	PurposeFollowUp Purpose = "follow_up" // a follow-up issue: title and body
)

// ComposeForm is a small modal for text a person writes: a stakeholder
// update (pre-filled), a DR test's note, a follow-up issue.
type ComposeForm struct {
	Purpose   Purpose
	RunID     string
	Passed    bool   // drill: the button pressed
	Heading   string // what the form is about, above the fields
	Title     string // follow-up: the issue title, pre-filled
	Body      string // pre-filled body
	ChannelID string // where to reply
}

// CommsLead is a run's comms lead: declared, or from the meta of a run
// started before declarations.
func CommsLead(run *runbook.Run) string {
	if run.Incident.CommsLead != "" {
		return run.Incident.CommsLead
	}
	return run.Meta[MetaCommsLead]
}

// commsClick handles the comms lead's buttons; ok is false for other actions.
func (h *Handler) commsClick(ctx context.Context, c Click) (Reply, bool) {
	switch c.Action {
	case ActStage:
		if r, ok := h.mayAct(ctx, h.opts.Notifiers, c.UserID, "change the stage"); !ok {
			return r, true
		}
		stage, err := runbook.ParseStage(c.Value)
		if err != nil {
			return Reply{Text: err.Error()}, true
		}
		if err := h.comms().SetStage(ctx, c.RunID, c.UserID, stage); err != nil {
			return h.refusal(err), true
		}
		return Reply{}, true
	case ActPostUpdate:
		if r, ok := h.mayAct(ctx, h.opts.Notifiers, c.UserID, "post stakeholder updates"); !ok {
			return r, true
		}
		d, err := h.comms().DraftUpdate(ctx, c.RunID)
		if err != nil {
			return h.refusal(err), true
		}
		return Reply{Compose: &ComposeForm{Purpose: PurposeUpdate, RunID: c.RunID, Body: d.Text,
			Heading: fmt.Sprintf("Update the stakeholders on %s. The draft says the stage, the steps done since the last update and the next step; edit it as you like.", c.RunID)}}, true
	case ActDrillPass, ActDrillFail:
		if r, ok := h.mayAct(ctx, h.opts.Notifiers, c.UserID, "record a DR test's result"); !ok {
			return r, true
		}
		passed := c.Action == ActDrillPass
		word := map[bool]string{true: "passed", false: "failed"}[passed]
		return Reply{Compose: &ComposeForm{Purpose: PurposeDrill, RunID: c.RunID, Passed: passed,
			Heading: fmt.Sprintf("Record that the DR test %s %s. Add a note: what went well, what did not.", c.RunID, word)}}, true
	case ActFollowUp:
		if r, ok := h.mayAct(ctx, h.opts.Notifiers, c.UserID, "raise follow-ups"); !ok {
			return r, true
		}
		if h.opts.FollowUps == nil || h.opts.FollowUpRepo == "" {
			return Reply{Text: "No follow-up repository is configured (comms.follow_up_repo in drbot.yaml)."}, true
		}
		return Reply{Compose: &ComposeForm{Purpose: PurposeFollowUp, RunID: c.RunID,
			Heading: fmt.Sprintf("Raise a follow-up of %s as an issue in %s. The issue links back to the run's timeline, and the timeline to the issue.", c.RunID, h.opts.FollowUpRepo)}}, true
	}
	return Reply{}, false
}

func (h *Handler) comms() CommsEngine { return h.opts.Comms }

// ComposeProblems checks a submitted compose form from memory, keyed by
// field ("title", "body"), for the view_submission ack.
func ComposeProblems(f ComposeForm, title, body string) map[string]string {
	out := map[string]string{}
	switch f.Purpose {
	case PurposeUpdate:
		if strings.TrimSpace(body) == "" {
			out["body"] = "Write the update."
		}
	case PurposeFollowUp:
		if strings.TrimSpace(title) == "" {
			out["title"] = "Give the issue a title."
		}
	}
	return out
}

// Compose acts on a submitted compose form. It runs on a worker.
func (h *Handler) Compose(ctx context.Context, userID string, f ComposeForm, title, body string) Reply {
	switch f.Purpose {
	case PurposeUpdate:
		return h.postUpdate(ctx, userID, f.RunID, body)
	case PurposeDrill:
		if err := h.comms().RecordDrill(ctx, f.RunID, userID, f.Passed, body); err != nil {
			return h.refusal(err)
		}
		return Reply{Text: fmt.Sprintf("Recorded the DR test %s as %s.", f.RunID, map[bool]string{true: "passed", false: "failed"}[f.Passed])}
	case PurposeFollowUp:
		link, err := h.opts.FollowUps.CreateIssue(ctx, h.opts.FollowUpRepo, strings.TrimSpace(title), h.followUpBody(ctx, f.RunID, body))
		if err != nil {
			h.log.Error("raise follow-up", zap.String("run_id", f.RunID), zap.String("user_id", userID), zap.Error(err))
			return Reply{Text: fmt.Sprintf("The follow-up was not raised: %v. Try again, or raise it by hand.", err)}
		}
		if err := h.comms().AddFollowUp(ctx, f.RunID, userID, link); err != nil {
			return h.failure("record the follow-up "+link.URL, err)
		}
		return Reply{Text: fmt.Sprintf("Raised %s: %s", link.Label, link.URL)}
	}
	return Reply{Text: "This form is not one drbot knows."}
}

// followUpBody is a follow-up issue's body with a link back to the run's
// timeline.
func (h *Handler) followUpBody(ctx context.Context, runID, body string) string {
	back := "Raised from DR run " + runID + " with drbot"
	if u := h.opts.Incidents.TimelineLink(ctx, runID); u != "" {
		back += "; its timeline: " + u
	}
	return strings.TrimSpace(body) + "\n\n---\n" + back + "."
}

// postUpdate posts a stakeholder update and records it: on the timeline and
// as the start of the next cadence period.
func (h *Handler) postUpdate(ctx context.Context, userID, runID, text string) Reply {
	text = strings.TrimSpace(text)
	if err := h.opts.Incidents.Announce(ctx, runID, userID, text); err != nil {
		return h.refusal(err)
	}
	if err := h.comms().RecordUpdate(ctx, runID, userID, text); err != nil {
		return h.failure("record the update", err)
	}
	return Reply{Text: fmt.Sprintf("Posted your update on %s to the stakeholders.", runID)}
}

// roles names the leads of the channel's run.
func (h *Handler) roles(ctx context.Context, req Request, cmd Command) Reply {
	if r, ok := h.mayAct(ctx, h.opts.Notifiers, req.UserID, "name the leads"); !ok {
		return r
	}
	run, err := h.findRun(ctx, req.ChannelID, "")
	if err != nil {
		return h.refusal(err)
	}
	if err := h.comms().SetRoles(ctx, run.ID, req.UserID, runbook.Incident{IncidentLead: cmd.Lead, CommsLead: cmd.Comms, TechLead: cmd.Tech}); err != nil {
		return h.refusal(err)
	}
	text := fmt.Sprintf("Named the leads of %s.", run.ID)
	if ch := run.Meta["channel"]; ch != "" {
		if w := h.opts.Incidents.InviteLeads(ctx, ch, cmd.Lead, cmd.Comms, cmd.Tech); w != "" {
			text += "\n⚠️ " + w
		}
	}
	return Reply{Text: text}
}

// report uploads the incident report of a run (the channel's, or named).
func (h *Handler) report(ctx context.Context, req Request, cmd Command) Reply {
	run, err := h.findRun(ctx, req.ChannelID, cmd.RunID)
	if err != nil && cmd.RunID == "" {
		// Not in an active run's channel: the run of this channel, ended.
		runs, lerr := h.opts.Runs.Runs(ctx, false, 50)
		if lerr == nil {
			for _, r := range runs {
				if r.Meta["channel"] == req.ChannelID {
					run, err = r, nil
					break
				}
			}
		}
	}
	if err != nil {
		return h.refusal(err)
	}
	if err := h.opts.Incidents.UploadReport(ctx, run.ID); err != nil {
		return h.refusal(err)
	}
	return Reply{Text: fmt.Sprintf("The incident report of %s is being uploaded to <#%s>.", run.ID, run.Meta["channel"])}
}

// DrillsText lists the last DR test per service, environment and scenario,
// flagging those older than maxAge.
func DrillsText(drills []runbook.Drill, loc *time.Location, maxAge time.Duration) string {
	if len(drills) == 0 {
		return "No DR test has been recorded yet. Start one with `/dr start <scenario> kind=test`."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Last DR tests* (flagged: older than %s)\n", runbook.HumanDuration(maxAge))
	for _, d := range drills {
		flag := "✅"
		if d.Overdue {
			flag = "⚠️ overdue"
		}
		fmt.Fprintf(&b, "• %s *%s* / *%s* · %s — last %s · %s · time to recover %s · `%s`",
			flag, d.Service, d.Env, d.Scenario, runbook.FormatBoth(d.At, loc), d.Result, runbook.HumanDuration(d.TimeToRecover), d.RunID)
		if d.Note != "" {
			fmt.Fprintf(&b, " — %s", d.Note)
		}
		b.WriteString("\n")
	}
	return strings.TrimSpace(b.String())
}

// drills answers /dr drills.
func (h *Handler) drills(ctx context.Context) Reply {
	runs, err := h.opts.Runs.Runs(ctx, false, 0)
	if err != nil {
		return h.failure("list runs", err)
	}
	return Reply{Text: DrillsText(runbook.Drills(runs, h.opts.Clock.Now(), h.opts.DrillMaxAge), h.opts.Location, h.opts.DrillMaxAge)}
}
