package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// Message is a rendered Slack message: blocks and the plain text Slack shows
// in notifications and where blocks cannot be shown.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// Renderer turns run views into Slack messages. It decides nothing: what may
// be done (runbook.StepView.Controls) and what happened come from the view.
type Renderer struct {
	// Location is the local zone shown next to UTC.
	Location *time.Location
	// P1Contacts are the user groups a P1 notice mentions.
	P1Contacts []string
	// FollowUps offers Raise follow-up on the closing message.
	FollowUps bool
}

// Block ids of the blocks that carry buttons.
const (
	blockStepControls  = "step.controls"
	blockPanelControls = "panel.controls"
)

// postScenario is the seed's "DR test post scenario steps", repeated in every
// closing message and notice.
var postScenario = []string{
	"Schedule an incident retro meeting with all the stakeholders",
	"Review the incident and fill in the incident report",
	"Raise trello cards for any process improvements",
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(s, limit), true, false)
}

// section is a mrkdwn section, truncated to Slack's limit.
func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(truncate(s, maxSectionText)), nil, nil)
}

// sections splits lines over as many sections as Slack's text limit needs.
func sections(lines []string) []slack.Block {
	var out []slack.Block
	var cur strings.Builder
	for _, l := range lines {
		l = truncate(l, maxSectionText)
		if cur.Len() > 0 && len([]rune(cur.String()))+1+len([]rune(l)) > maxSectionText {
			out = append(out, section(cur.String()))
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	if cur.Len() > 0 {
		out = append(out, section(cur.String()))
	}
	return out
}

func contextText(blockID string, texts ...string) *slack.ContextBlock {
	var els []slack.MixedElement
	for _, t := range texts {
		if t != "" && len(els) < maxContextElements {
			els = append(els, mrkdwn(truncate(t, maxSectionText)))
		}
	}
	return slack.NewContextBlock(blockID, els...)
}

// simulation is the SIMULATED marker of a run whose adapters are simulated:
// empty for a real run. Slack steps and manual steps are never simulated.
func simulation(v *runbook.RunView) string {
	var sim, real []string
	for _, s := range v.Steps {
		if s.Step.Action == runbook.ManualKind || strings.HasPrefix(s.Step.Action, "slack.") {
			continue
		}
		if s.Simulated {
			sim = append(sim, s.Step.Action)
		} else {
			real = append(real, s.Step.Action)
		}
	}
	switch {
	case len(sim) == 0:
		return ""
	case len(real) == 0:
		return "🧪 *SIMULATED* — drill, no infrastructure touched"
	}
	slices.Sort(sim)
	return "🧪 *PARTLY SIMULATED* — drill; simulated: " + strings.Join(slices.Compact(sim), ", ") + "; everything else is real"
}

// withMarker adds the SIMULATED marker to a message of a simulated run.
func withMarker(v *runbook.RunView, m Message) Message {
	if mark := simulation(v); mark != "" {
		m.Blocks = append(m.Blocks, contextText("simulated", mark))
		m.Text = "[SIMULATED] " + m.Text
	}
	if len(m.Blocks) > maxMessageBlocks {
		m.Blocks = append(m.Blocks[:maxMessageBlocks-1], contextText("", "(message shortened: Slack shows at most 50 blocks)"))
	}
	m.Text = truncate(m.Text, maxSectionText)
	return m
}

func (r Renderer) when(t time.Time) string { return runbook.FormatBoth(t, r.Location) }

func runLine(v *runbook.RunView) string {
	return fmt.Sprintf("`%s` · %s · *%s* / *%s*", v.Run.ID, v.Runbook.ID, v.Run.Service, v.Run.Env)
}

// Panel renders the control panel: every step with its state icon and the
// Abort run button.
func (r Renderer) Panel(v *runbook.RunView) Message {
	run := v.Run
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("DR · "+v.Runbook.Title, maxHeaderText)),
		section(fmt.Sprintf("%s\nStarted %s by %s · *%s*%s", runLine(v), r.when(run.StartedAt), handlers.Mention(run.StartedBy),
			run.State, r.ended(run))),
	}
	if run.Incident.Declared() {
		blocks = append(blocks, section(r.declaration(run)))
	}
	lines := make([]string, len(v.Steps))
	for i, s := range v.Steps {
		lines[i] = handlers.StepLine(i, s)
	}
	blocks = append(blocks, sections(lines)...)
	switch {
	case run.State == runbook.RunActive && run.Incident.Declared():
		blocks = append(blocks, slack.NewActionBlock(blockPanelControls, r.stageSelect(v), r.abortButton(v)))
	case run.State == runbook.RunActive:
		blocks = append(blocks, slack.NewActionBlock(blockPanelControls, r.abortButton(v)))
	}
	done := 0
	for _, s := range v.Steps {
		if s.State.State.Terminal() {
			done++
		}
	}
	text := fmt.Sprintf("DR run %s (%s) for %s/%s: %s, %d of %d steps done", run.ID, v.Runbook.ID, run.Service, run.Env, run.State, done, len(v.Steps))
	return withMarker(v, Message{Text: text, Blocks: blocks})
}

func (r Renderer) ended(run *runbook.Run) string {
	if run.EndedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf(" · ended %s · time to recover %s", r.when(run.EndedAt), runbook.HumanDuration(run.EndedAt.Sub(run.StartedAt)))
}

func (r Renderer) abortButton(v *runbook.RunView) slack.BlockElement {
	value, err := EncodeValue(ButtonValue{RunID: v.Run.ID})
	if err != nil {
		value = "" // cannot happen for a run id; a click then fails to decode and is refused
	}
	confirm := slack.NewConfirmationBlockObject(plain("Abort the run?", 100),
		mrkdwn(fmt.Sprintf("Abort %s for %s/%s? Nothing further runs and a running step is cancelled.", v.Run.ID, v.Run.Service, v.Run.Env)),
		plain("Abort run", maxButtonText), plain("Keep going", maxButtonText)).WithStyle(slack.StyleDanger)
	return slack.NewButtonBlockElement(string(handlers.ActAbort), value, plain("Abort run", maxButtonText)).
		WithStyle(slack.StyleDanger).WithConfirm(confirm)
}

// stepView finds a step in a view.
func stepView(v *runbook.RunView, stepID string) (int, runbook.StepView, bool) {
	for i, s := range v.Steps {
		if s.Step.ID == stepID {
			return i, s, true
		}
	}
	return 0, runbook.StepView{}, false
}

// Step renders a step's message: the seed's explanation, the exact call, the
// state and the buttons the view offers.
func (r Renderer) Step(v *runbook.RunView, stepID string) (Message, bool) {
	i, s, ok := stepView(v, stepID)
	if !ok {
		return Message{}, false
	}
	st := s.State
	title := fmt.Sprintf("%s *Step %d/%d · %s*", handlers.Icon(st.State), i+1, len(v.Steps), s.Step.Title)
	if s.Step.Destructive {
		title += "  ⚠️ _destructive_"
	}
	blocks := []slack.Block{section(title + "\n" + runLine(v))}
	if s.Step.Explain != "" {
		blocks = append(blocks, section(quoteLines(strings.TrimSpace(s.Step.Explain))))
	}
	call := "*What drbot will do*"
	if s.Step.Action == runbook.ManualKind {
		call = "*What you do* (then press Mark done)"
	}
	if s.Simulated {
		call += " — 🧪 _SIMULATED: nothing real is touched_"
	}
	blocks = append(blocks, section(call+"\n```"+strings.ReplaceAll(s.Call, "```", "'''")+"```"))
	var links []string
	for _, l := range append(slices.Clone(s.Links), st.Links...) {
		links = append(links, fmt.Sprintf("<%s|%s>", l.URL, l.Label))
	}
	if len(links) > 0 {
		blocks = append(blocks, contextText("links", strings.Join(links, " · ")))
	}
	blocks = append(blocks, section(r.stepState(s)))
	if len(s.Controls) > 0 {
		blocks = append(blocks, slack.NewActionBlock(blockStepControls, r.buttons(v, s)...))
	}
	text := fmt.Sprintf("Step %d/%d %s: %s", i+1, len(v.Steps), s.Step.Title, stateWord(st.State))
	return withMarker(v, Message{Text: text, Blocks: blocks}), true
}

func quoteLines(s string) string {
	return "> " + strings.ReplaceAll(s, "\n", "\n> ")
}

func stateWord(s runbook.State) string {
	return strings.ReplaceAll(string(s), "_", " ")
}

// stepState is the line under a step: waiting, running, done, failed, skipped.
func (r Renderer) stepState(s runbook.StepView) string {
	st := s.State
	switch st.State {
	case runbook.AwaitingApproval:
		verb := "Waiting for an approver"
		if s.Step.Action == runbook.ManualKind {
			verb = "Waiting for someone to do this and mark it done"
		}
		if s.Step.Approvals > 1 {
			who := make([]string, len(st.Approvers))
			for i, a := range st.Approvers {
				who[i] = handlers.Mention(a)
			}
			verb = fmt.Sprintf("Needs %d different approvers: %d of %d", s.Step.Approvals, len(st.Approvers), s.Step.Approvals)
			if len(who) > 0 {
				verb += " (" + strings.Join(who, ", ") + ")"
			}
		}
		return "👉 " + verb
	case runbook.Running:
		line := fmt.Sprintf("⏳ in progress… · approved by %s · since %s", approvedBy(st), r.when(st.StartedAt))
		if st.Progress != "" {
			line += "\n" + st.Progress
		}
		return line
	case runbook.Done:
		line := fmt.Sprintf("✅ done · approved by %s · %s", approvedBy(st), runbook.HumanDuration(st.Duration()))
		if st.Summary != "" {
			line += "\n" + st.Summary
		}
		return line
	case runbook.Failed:
		return fmt.Sprintf("❌ failed (attempt %d) · %s\n%s", max(st.Attempt, 1), r.when(st.EndedAt), st.Error)
	case runbook.Skipped:
		return fmt.Sprintf("⏭️ skipped by %s · %s", handlers.Mention(st.Actor), r.when(st.EndedAt))
	}
	return "▫️ not reached yet"
}

// approvedBy names who approved a step (all approvers of a two-person step).
func approvedBy(st runbook.StepState) string {
	who := st.Approvers
	if len(who) == 0 {
		who = []string{st.Actor}
	}
	out := make([]string, len(who))
	for i, a := range who {
		out[i] = handlers.Mention(a)
	}
	return strings.Join(out, " + ")
}

var controlButtons = map[runbook.Control]struct {
	action handlers.Action
	label  string
}{
	runbook.ControlApprove:  {handlers.ActApprove, "Approve"},
	runbook.ControlMarkDone: {handlers.ActDone, "Mark done"},
	runbook.ControlSkip:     {handlers.ActSkip, "Skip"},
	runbook.ControlRetry:    {handlers.ActRetry, "Retry"},
	runbook.ControlChoose:   {handlers.ActChoose, "Choose…"},
}

func (r Renderer) buttons(v *runbook.RunView, s runbook.StepView) []slack.BlockElement {
	value, err := EncodeValue(ButtonValue{RunID: v.Run.ID, StepID: s.Step.ID, Version: s.State.Version})
	if err != nil {
		return nil
	}
	var out []slack.BlockElement
	for _, c := range s.Controls {
		spec, ok := controlButtons[c]
		if !ok {
			continue
		}
		b := slack.NewButtonBlockElement(string(spec.action), value, plain(spec.label, maxButtonText))
		switch {
		case c == runbook.ControlSkip || c == runbook.ControlChoose:
		case s.Step.Destructive:
			b = b.WithStyle(slack.StyleDanger).WithConfirm(slack.NewConfirmationBlockObject(
				plain("Destructive step", 100),
				mrkdwn(truncate("This will:\n"+s.Call, 300)),
				plain(spec.label, maxButtonText), plain("Cancel", maxButtonText)).WithStyle(slack.StyleDanger))
		default:
			b = b.WithStyle(slack.StylePrimary)
		}
		out = append(out, b)
	}
	return out
}

var eventIcons = map[runbook.EventKind]string{
	runbook.EventRunStarted: "🚨", runbook.EventRunDone: "🏁", runbook.EventRunAborted: "🛑",
	runbook.EventStepWaiting: "👉", runbook.EventStepApproved: "👍", runbook.EventStepRunning: "⏳",
	runbook.EventStepProgress: "🔄", runbook.EventStepDone: "✅", runbook.EventStepFailed: "❌",
	runbook.EventStepSkipped: "⏭️", runbook.EventRefused: "🚫", runbook.EventNote: "📝",
}

// TimelineRoot is the thread root every event replies to.
func (r Renderer) TimelineRoot(v *runbook.RunView) Message {
	text := fmt.Sprintf("🧵 *Timeline* of %s — %s. Every event of the run is a reply in this thread (times in UTC and %s).",
		runLine(v), v.Runbook.Title, r.zoneName())
	return withMarker(v, Message{Text: "Timeline of DR run " + v.Run.ID, Blocks: []slack.Block{section(text)}})
}

func (r Renderer) zoneName() string {
	if r.Location == nil {
		return "UTC"
	}
	return r.Location.String()
}

// TimelineEvent is one reply in the timeline: when, who, what, links.
func (r Renderer) TimelineEvent(v *runbook.RunView, ev runbook.Event) Message {
	icon := eventIcons[ev.Kind]
	if icon == "" {
		icon = "•"
	}
	line := fmt.Sprintf("%s %s · %s", icon, handlers.Mention(ev.Actor), ev.Text)
	var links []string
	for _, l := range ev.Links {
		links = append(links, fmt.Sprintf("<%s|%s>", l.URL, l.Label))
	}
	blocks := []slack.Block{section(line)}
	ctx := []string{"🕒 " + r.when(ev.At), string(ev.Kind)}
	if len(links) > 0 {
		ctx = append(ctx, strings.Join(links, " · "))
	}
	blocks = append(blocks, contextText("", ctx...))
	text := fmt.Sprintf("%s %s %s: %s", r.when(ev.At), ev.Kind, ev.Actor, ev.Text)
	return withMarker(v, Message{Text: text, Blocks: blocks})
}

// Closing is the incident report posted when a run ends, in the incident
// channel and to the stakeholders: counts, step durations, time to recover
// and the post-scenario checklist.
func (r Renderer) Closing(v *runbook.RunView, now time.Time) Message {
	steps := make([]runbook.StepState, len(v.Steps))
	for i, s := range v.Steps {
		steps[i] = s.State
	}
	sum := runbook.Summarize(v.Run, v.Runbook, steps, now)
	verb := "finished"
	if v.Run.State == runbook.RunAborted {
		verb = "was aborted"
	}
	head := fmt.Sprintf("DR run %s %s", v.Run.ID, verb)
	lines := []string{
		fmt.Sprintf("%s\n*%d done · %d skipped · %d failed · %d not run* · time to recover *%s*\nStarted %s by %s · ended %s",
			runLine(v), sum.Done, sum.Skipped, sum.Failed, sum.Pending, runbook.HumanDuration(sum.TimeToRecover),
			r.when(v.Run.StartedAt), handlers.Mention(v.Run.StartedBy), r.when(v.Run.StartedAt.Add(sum.TimeToRecover))),
		"*Steps*",
	}
	for i, s := range sum.Steps {
		line := fmt.Sprintf("%s %d. %s", handlers.Icon(s.State), i+1, s.Title)
		if s.Duration > 0 {
			line += " · " + runbook.HumanDuration(s.Duration)
		}
		if s.Actor != "" && s.State != runbook.Pending {
			line += " · " + handlers.Mention(s.Actor)
		}
		lines = append(lines, line)
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain(head, maxHeaderText))}
	blocks = append(blocks, sections(lines)...)
	check := []string{"*After the incident*"}
	for _, c := range postScenario {
		check = append(check, "☐ "+c)
	}
	blocks = append(blocks, section(strings.Join(check, "\n")))
	if l := reportLink(v.Run); l != "" {
		blocks = append(blocks, contextText("report", l))
	}
	return withMarker(v, Message{Text: head + ": " + sum.Line(), Blocks: blocks})
}

// Notice is a post to the stakeholder or developer channels: what happened,
// service, environment, incident and comms leads and the incident channel.
//
// What stakeholders read holds no instruction for the incident team: a
// missing comms lead reads "to be named" here and is asked for in the
// incident channel (CommsAsk).
func (r Renderer) Notice(v *runbook.RunView, text string) Message {
	run := v.Run
	in := run.Incident
	head := fmt.Sprintf("🚨 *DR incident: %s*", v.Runbook.Title)
	if in.Declared() {
		head = fmt.Sprintf("🚨 *%s DR %s: %s*", in.Priority, in.Kind.Word(), v.Runbook.Title)
		if in.Kind == runbook.KindTest {
			head = fmt.Sprintf("🚨 *%s %s: %s*", in.Priority, in.Kind.Word(), v.Runbook.Title)
		}
	}
	body := head + "\n" + text
	if in.Description != "" {
		body += "\n> " + in.Description
	}
	if cc := r.p1Contacts(run); cc != "" {
		body += "\n" + cc
	}
	facts := fmt.Sprintf("*Service* %s · *Environment* %s · *Incident lead* %s · *Comms lead* %s · *Channel* %s · run `%s`",
		run.Service, run.Env, handlers.Mention(run.StartedBy), leadName(handlers.CommsLead(run)), channelMention(run), run.ID)
	if in.Declared() {
		facts = fmt.Sprintf("*Service* %s · *Environment* %s · *Priority* %s · *Stage* %s · *Incident lead* %s · *Comms lead* %s · *Tech lead* %s · *Channel* %s · run `%s`",
			run.Service, run.Env, in.Priority, in.Stage, leadName(in.IncidentLead), leadName(handlers.CommsLead(run)), leadName(in.TechLead), channelMention(run), run.ID)
	}
	return withMarker(v, Message{Text: head + ": " + text, Blocks: []slack.Block{section(body), contextText("", facts)}})
}

// Update is a /dr notify post to the stakeholders.
func (r Renderer) Update(v *runbook.RunView, actor, text string, at time.Time) Message {
	what := "DR incident"
	if in := v.Run.Incident; in.Declared() {
		what = fmt.Sprintf("%s %s", in.Priority, in.Kind.Word())
		if !in.IsTest() {
			what = fmt.Sprintf("%s DR %s", in.Priority, in.Kind.Word())
		}
	}
	head := fmt.Sprintf("📣 *Update on the %s* on %s / %s", what, v.Run.Service, v.Run.Env)
	facts := fmt.Sprintf("from %s · %s · %s · run `%s`", handlers.Mention(actor), r.when(at), channelMention(v.Run), v.Run.ID)
	return withMarker(v, Message{Text: head + ": " + text, Blocks: []slack.Block{section(head + "\n" + text), contextText("", facts)}})
}

func channelMention(run *runbook.Run) string {
	if ch := run.Meta["channel"]; ch != "" {
		return "<#" + ch + ">"
	}
	return "(no channel)"
}
