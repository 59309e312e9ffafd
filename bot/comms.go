package bot

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// The comms lead's side in Slack: the declaration on the panel and in the
// notice, the stage (a select on the panel, a post to the stakeholders at
// each change), the request for a missing comms lead, update reminders with
// a Post update button, and the closing message's Raise follow-up and DR
// test buttons.

// Block ids of the comms lead's blocks.
const (
	blockStage           = "panel.stage"
	blockReminder        = "update.controls"
	blockClosingControls = "closing.controls"
)

// Outbox kinds of the comms lead's side.
const (
	kindComms  = "comms"  // a comms message rendered at delivery (commsMessage)
	kindReport = "report" // upload the incident report file (upload.go)
	kindTopic  = "topic"  // set the incident channel's topic from the run (stage, leads)
)

// Meta keys of the comms lead's side.
const (
	metaReportFile = "report_file"
	metaReportURL  = "report_url"
	metaClosingTS  = "closing_ts" // the closing message in the incident channel
)

// declaration is the run's declaration in one line: priority and kind,
// stage, the leads; the description under it.
func (r Renderer) declaration(run *runbook.Run) string {
	in := run.Incident
	line := fmt.Sprintf("*%s %s* · stage *%s* · *Incident lead* %s · *Comms lead* %s · *Tech lead* %s",
		in.Priority, in.Kind.Word(), in.Stage, leadName(in.IncidentLead), leadName(handlers.CommsLead(run)), leadName(in.TechLead))
	if in.Description != "" {
		line += "\n> " + in.Description
	}
	return line
}

// leadName names a lead for people: a mention, or "to be named" (never an
// instruction: stakeholders read it too).
func leadName(id string) string {
	if id == "" {
		return "to be named"
	}
	return handlers.Mention(id)
}

// stageSelect is the panel's select to set the stage by hand; the stages a
// person may pick while the run is active (resolved comes with its end).
func (r Renderer) stageSelect(v *runbook.RunView) slack.BlockElement {
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Set the stage", maxOptionText), string(handlers.ActStage))
	for _, st := range runbook.Stages {
		if st == runbook.StageResolved {
			continue
		}
		// The stage travels in the codec's step slot: the run id with it,
		// through the one tested codec (see onAction).
		value, err := EncodeValue(ButtonValue{RunID: v.Run.ID, StepID: string(st)})
		if err != nil {
			continue
		}
		o := slack.NewOptionBlockObject(value, plain("Stage: "+string(st), maxOptionText), nil)
		sel.Options = append(sel.Options, o)
		if st == v.Run.Incident.Stage {
			sel = sel.WithInitialOption(o)
		}
	}
	return sel
}

// StageChange is the post to the stakeholders when the stage changes.
func (r Renderer) StageChange(v *runbook.RunView, ev runbook.Event) Message {
	in := v.Run.Incident
	change := strings.TrimPrefix(ev.Text, "stage: ")
	head := fmt.Sprintf("📍 *Stage of the %s %s on %s / %s*: %s", in.Priority, in.Kind.Word(), v.Run.Service, v.Run.Env, change)
	facts := fmt.Sprintf("%s · %s · %s · run `%s`", handlers.Mention(ev.Actor), r.when(ev.At), channelMention(v.Run), v.Run.ID)
	return withMarker(v, Message{Text: fmt.Sprintf("Stage of the %s %s on %s/%s: %s", in.Priority, in.Kind.Word(), v.Run.Service, v.Run.Env, change),
		Blocks: []slack.Block{section(head + "\n" + v.Runbook.Title), contextText("", facts)}})
}

// CommsAsk asks in the incident channel for a comms lead when none was
// named: the stakeholders never see this.
func (r Renderer) CommsAsk(v *runbook.RunView) Message {
	in := v.Run.Incident
	text := fmt.Sprintf("👋 %s, no comms lead is named for this %s. The comms lead updates the stakeholders (every %s for %s) and keeps the stage current. "+
		"Name one with `/dr roles comms=@someone`.", handlers.Mention(in.IncidentLead), in.Kind.Word(), runbook.Minutes(in.UpdateEvery), in.Priority)
	return withMarker(v, Message{Text: "No comms lead is named yet", Blocks: []slack.Block{section(text)}})
}

// Reminder tells the comms lead (mentioned; the incident lead when none is
// named) that a stakeholder update is due, with a Post update button.
func (r Renderer) Reminder(v *runbook.RunView, ev runbook.Event) Message {
	who := handlers.CommsLead(v.Run)
	if who == "" {
		who = v.Run.Incident.IncidentLead
	}
	text := fmt.Sprintf("⏰ %s, %s. Stage: *%s*.", handlers.Mention(who), ev.Text, v.Run.Incident.Stage)
	blocks := []slack.Block{section(text)}
	if value, err := EncodeValue(ButtonValue{RunID: v.Run.ID}); err == nil {
		blocks = append(blocks, slack.NewActionBlock(blockReminder,
			slack.NewButtonBlockElement(string(handlers.ActPostUpdate), value, plain("Post update", maxButtonText)).WithStyle(slack.StylePrimary)))
	}
	return withMarker(v, Message{Text: "A stakeholder update is due on " + v.Run.ID, Blocks: blocks})
}

// closingControls are the buttons under the closing message in the incident
// channel: Raise follow-up (when a repository is configured) and, for a DR
// test, its result.
func (r Renderer) closingControls(v *runbook.RunView) []slack.Block {
	value, err := EncodeValue(ButtonValue{RunID: v.Run.ID})
	if err != nil {
		return nil
	}
	var els []slack.BlockElement
	var blocks []slack.Block
	if in := v.Run.Incident; in.IsTest() {
		if in.Drill == nil {
			blocks = append(blocks, section("*DR test result*: did the test pass? Record it with a note; `/dr drills` lists it."))
			els = append(els,
				slack.NewButtonBlockElement(string(handlers.ActDrillPass), value, plain("Passed", maxButtonText)).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(string(handlers.ActDrillFail), value, plain("Failed", maxButtonText)).WithStyle(slack.StyleDanger))
		} else {
			blocks = append(blocks, contextText("", fmt.Sprintf("DR test result: *%s* (recorded by %s) %s", in.Drill.Word(), handlers.Mention(in.Drill.By), in.Drill.Note)))
		}
	}
	if r.FollowUps {
		els = append(els, slack.NewButtonBlockElement(string(handlers.ActFollowUp), value, plain("Raise follow-up", maxButtonText)))
	}
	if len(els) > 0 {
		blocks = append(blocks, slack.NewActionBlock(blockClosingControls, els...))
	}
	return blocks
}

// reportLink links the uploaded incident report, once it is.
func reportLink(run *runbook.Run) string {
	u := run.Meta[metaReportURL]
	if u == "" {
		return ""
	}
	return fmt.Sprintf("📄 Incident report: <%s|%s>", u, path.Base(u))
}

// p1Contacts mentions the configured P1 contact user groups.
func (r Renderer) p1Contacts(run *runbook.Run) string {
	if run.Incident.Priority != runbook.P1 || len(r.P1Contacts) == 0 {
		return ""
	}
	var out []string
	for _, g := range r.P1Contacts {
		out = append(out, "<!subteam^"+g+">")
	}
	return "P1 contacts: " + strings.Join(out, " ")
}

// commsMessages are the outbox messages of the comms lead's side that an
// event calls for.
func (b *Bot) commsMessages(run *runbook.Run, ev runbook.Event) []OutboxMessage {
	if !run.Incident.Declared() {
		return nil
	}
	id := eventID(ev)
	var msgs []OutboxMessage
	switch ev.Kind {
	case runbook.EventRunStarted:
		if handlers.CommsLead(run) == "" {
			msgs = append(msgs, message("comms-ask:"+run.ID, kindComms, payload{RunID: run.ID, Event: &ev}))
		}
	case runbook.EventStage:
		for _, ch := range b.opts.StakeholderChannels {
			msgs = append(msgs, message("stage:"+run.ID+":"+id+":"+ch, kindComms, payload{RunID: run.ID, Channel: ch, Event: &ev}))
		}
		msgs = append(msgs, message("topic:"+run.ID+":"+id, kindTopic, payload{RunID: run.ID}))
	case runbook.EventRoles:
		msgs = append(msgs, message("topic:"+run.ID+":"+id, kindTopic, payload{RunID: run.ID}))
	case runbook.EventUpdateDue:
		msgs = append(msgs, message("reminder:"+run.ID+":"+id, kindComms, payload{RunID: run.ID, Event: &ev}))
	case runbook.EventRunDone, runbook.EventRunAborted:
		// Before the closing messages: they link the file once it is up.
		msgs = append(msgs, message("report:"+run.ID, kindReport, payload{RunID: run.ID, File: reportFileName(run.ID, time.Time{})}))
	case runbook.EventDrill, runbook.EventFollowUp:
		// The closing message shows the result (and loses its buttons).
		msgs = append(msgs, message("closing:"+run.ID+":"+id, kindClosing, payload{RunID: run.ID}))
	}
	return msgs
}

// commsMessage renders a kindComms message when it is delivered: the
// request for a comms lead, a reminder (in the incident channel) or a stage
// change (to a stakeholder channel).
func (r Renderer) commsMessage(view *runbook.RunView, p payload) (Message, bool) {
	if p.Event == nil {
		return Message{}, false
	}
	switch p.Event.Kind {
	case runbook.EventRunStarted:
		if handlers.CommsLead(view.Run) != "" {
			return Message{}, false // named since
		}
		return r.CommsAsk(view), true
	case runbook.EventStage:
		return r.StageChange(view, *p.Event), true
	case runbook.EventUpdateDue:
		return r.Reminder(view, *p.Event), true
	}
	return Message{}, false
}

// deliverComms delivers a kindComms message, keyed by its outbox key
// (exactly once, see send).
func (s *sender) deliverComms(ctx context.Context, m OutboxMessage, view *runbook.RunView, channel string, p payload) (string, error) {
	msg, ok := s.b.render.commsMessage(view, p)
	if !ok {
		return resultNoMessage, nil
	}
	if p.Channel != "" {
		channel = p.Channel
	}
	return s.send(ctx, m, keyed{channel: channel, key: m.Key, since: view.Run.StartedAt}, msg)
}

// deliverClosing posts the closing message to a stakeholder channel, or
// posts (then updates in place) the incident channel's, with its buttons.
func (s *sender) deliverClosing(ctx context.Context, m OutboxMessage, view *runbook.RunView, channel string, p payload) (string, error) {
	r := s.b.render
	msg := r.Closing(view, s.b.clock.Now())
	if p.Channel != "" {
		return s.send(ctx, m, keyed{channel: p.Channel, key: m.Key, since: view.Run.StartedAt}, msg)
	}
	if controls := r.closingControls(view); len(controls) > 0 && len(msg.Blocks)+len(controls) <= maxMessageBlocks {
		msg.Blocks = append(msg.Blocks, controls...)
	}
	k := keyed{channel: channel, key: view.Run.ID + "/" + metaClosingTS, since: view.Run.StartedAt}
	return s.upsert(ctx, m, view, k, metaClosingTS, msg, false)
}

// deliverTopic sets the incident channel's topic to what the run says now:
// the stage and the leads change during an incident.
func (s *sender) deliverTopic(ctx context.Context, view *runbook.RunView, channel string) (string, error) {
	run := view.Run
	lead := run.Incident.IncidentLead
	if lead == "" {
		lead = run.StartedBy
	}
	topic := channelTopic(handlers.ChannelRequest{Scenario: view.Runbook.ID, Title: view.Runbook.Title, Service: run.Service, Env: run.Env,
		Requester: lead, Comms: handlers.CommsLead(run), Incident: run.Incident})
	if _, err := s.b.api.SetTopicOfConversationContext(ctx, channel, truncate(topic, maxTopic)); err != nil {
		return "", fmt.Errorf("set the topic of %s: %w", channel, err)
	}
	return "topic set", nil
}

// channelTopic is the incident channel's topic: priority and kind, the
// scenario, service and environment, the stage, the leads and the
// description.
func channelTopic(req handlers.ChannelRequest) string {
	in := req.Incident
	what := "DR"
	if in.Declared() {
		what = fmt.Sprintf("%s DR %s", in.Priority, in.Kind.Word())
		if in.IsTest() {
			what = fmt.Sprintf("%s %s", in.Priority, in.Kind.Word())
		}
	}
	topic := fmt.Sprintf("🚨 %s: %s · %s/%s", what, req.Title, req.Service, req.Env)
	if in.Stage != "" {
		topic += " · stage " + string(in.Stage)
	}
	topic += " · incident lead " + handlers.Mention(req.Requester)
	if req.Comms != "" {
		topic += " · comms lead " + handlers.Mention(req.Comms)
	}
	if in.TechLead != "" {
		topic += " · tech lead " + handlers.Mention(in.TechLead)
	}
	if in.Description != "" {
		topic += " — " + in.Description
	}
	return topic
}
