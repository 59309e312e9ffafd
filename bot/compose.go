package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// The compose form: a small modal for text a person writes — a stakeholder
// update (pre-filled with the stage, the steps done since the last update
// and the next step), a DR test's note, a follow-up issue's title and body.

// Compose form routing keys.
const (
	composeCallbackID = "dr.compose"
	composeTitle      = "title" // block ids, as handlers.ComposeProblems keys them
	composeBody       = "body"
)

// composeMeta is the compose form's private_metadata.
type composeMeta struct {
	Purpose   handlers.Purpose `json:"purpose"`
	RunID     string           `json:"run_id"`
	Passed    bool             `json:"passed,omitempty"`
	ChannelID string           `json:"channel_id,omitempty"`
}

// composeLabels are each purpose's modal title, submit text and body label.
var composeLabels = map[handlers.Purpose]struct{ title, submit, body string }{
	handlers.PurposeUpdate:   {"Stakeholder update", "Post update", "Update for the stakeholders"},
	handlers.PurposeDrill:    {"DR test result", "Record", "Note"},
	handlers.PurposeFollowUp: {"Raise follow-up", "Raise issue", "Body"},
}

// ComposeModal renders a compose form.
func (r Renderer) ComposeModal(f handlers.ComposeForm) slack.ModalViewRequest {
	l := composeLabels[f.Purpose]
	blocks := []slack.Block{section(f.Heading)}
	if f.Purpose == handlers.PurposeFollowUp {
		t := slack.NewPlainTextInputBlockElement(plain("What should change", maxOptionText), formValueAction)
		if f.Title != "" {
			t = t.WithInitialValue(f.Title)
		}
		blocks = append(blocks, slack.NewInputBlock(composeTitle, plain("Title", maxLabel), nil, t))
	}
	body := slack.NewPlainTextInputBlockElement(plain(l.body, maxOptionText), formValueAction).WithMultiline(true)
	if f.Body != "" {
		body = body.WithInitialValue(f.Body)
	}
	blocks = append(blocks, slack.NewInputBlock(composeBody, plain(l.body, maxLabel), nil, body).WithOptional(f.Purpose == handlers.PurposeDrill))
	meta, _ := json.Marshal(composeMeta{Purpose: f.Purpose, RunID: f.RunID, Passed: f.Passed, ChannelID: f.ChannelID})
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain(l.title, maxModalTitle),
		Submit:          plain(l.submit, maxModalTitle),
		Close:           plain("Cancel", maxModalTitle),
		CallbackID:      composeCallbackID,
		PrivateMetadata: truncate(string(meta), maxPrivateMetadata),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// composeValues reads a submitted compose form.
func composeValues(view slack.View) (f handlers.ComposeForm, title, body string) {
	var meta composeMeta
	_ = json.Unmarshal([]byte(view.PrivateMetadata), &meta)
	f = handlers.ComposeForm{Purpose: meta.Purpose, RunID: meta.RunID, Passed: meta.Passed, ChannelID: meta.ChannelID}
	if view.State == nil {
		return f, "", ""
	}
	return f, actionValue(view.State.Values[composeTitle][formValueAction]), actionValue(view.State.Values[composeBody][formValueAction])
}

// openCompose opens a compose form with a click's trigger id.
func (b *Bot) openCompose(ctx context.Context, triggerID string, f handlers.ComposeForm, to target, log *zap.Logger) {
	if _, err := b.api.OpenViewContext(ctx, triggerID, b.render.ComposeModal(f)); err != nil {
		log.Warn("open compose form", zap.Error(err))
		b.respond(ctx, to, fmt.Sprintf("I could not open the form (%v); click again.", err), log)
	}
}

// onCompose handles a submitted compose form: problems go back in the ack,
// else the ack closes it and a worker acts on it.
func (b *Bot) onCompose(ctx context.Context, sm *socketmode.Client, h Handler, req *socketmode.Request, cb slack.InteractionCallback, seen *seen, log *zap.Logger) {
	f, title, body := composeValues(cb.View)
	if problems := handlers.ComposeProblems(f, title, body); len(problems) > 0 {
		b.ack(sm, req, slack.NewErrorsViewSubmissionResponse(formErrors(problems)))
		return
	}
	if !b.pool.acquire() {
		log.Warn(leftForRedelivery)
		return
	}
	cleared := slack.NewClearViewSubmissionResponse()
	b.ack(sm, req, cleared)
	seen.add(req.EnvelopeID, cleared)
	log = log.With(zap.String("run_id", f.RunID), zap.String("purpose", string(f.Purpose)))
	log.Info("compose form submitted")
	to := target{channel: f.ChannelID, user: cb.User.ID}
	b.pool.run(func() {
		if b.firstDelivery(ctx, req.EnvelopeID, log) {
			b.respond(ctx, to, h.Compose(ctx, cb.User.ID, f, title, body).Text, log)
		}
	})
}

// declarationBlocks are the start form's playbook fields besides the comms
// lead: priority, kind, tech lead and a one-line description.
func (r Renderer) declarationBlocks(d handlers.Declaration) []slack.Block {
	// choice is a select of options (value, label), current (else def) picked.
	choice := func(field, label, hint, current, def string, options ...[2]string) slack.Block {
		if current == "" {
			current = def
		}
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(label, maxOptionText), formValueAction)
		for _, o := range options {
			opt := slack.NewOptionBlockObject(o[0], plain(o[1], maxOptionText), nil)
			sel.Options = append(sel.Options, opt)
			if strings.EqualFold(o[0], current) {
				sel = sel.WithInitialOption(opt)
			}
		}
		return slack.NewInputBlock(field, plain(label, maxLabel), plain(hint, maxHint), sel)
	}
	tech := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Who leads the technical work?", maxOptionText), formValueAction)
	tech.InitialUser = d.Tech
	desc := slack.NewPlainTextInputBlockElement(plain("e.g. Orders since 09:00 are lost", maxOptionText), formValueAction)
	if d.Description != "" {
		desc = desc.WithInitialValue(d.Description)
	}
	return []slack.Block{
		choice(handlers.FieldPriority, "Priority", "P1 updates the stakeholders every 30 minutes and tells the P1 contacts.", d.Priority, string(runbook.DefaultPriority),
			[2]string{"P1", "P1 — highest"}, [2]string{"P2", "P2"}, [2]string{"P3", "P3"}),
		choice(handlers.FieldKind, "Real incident or DR test", "A DR test records pass or fail at its end (drbot drills).", d.Kind, string(runbook.KindIncident),
			[2]string{"incident", "Real incident"}, [2]string{"test", "DR test"}),
		slack.NewInputBlock(handlers.FieldTech, plain("Tech lead", maxLabel), nil, tech).WithOptional(true),
		slack.NewInputBlock(handlers.FieldDescription, plain("Description", maxLabel), plain("One line for the topic, the panel and the stakeholders.", maxHint), desc).WithOptional(true),
	}
}
