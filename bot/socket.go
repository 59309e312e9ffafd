package bot

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// Handler decides what commands, clicks and forms do (handlers.Handler).
type Handler interface {
	Command(req handlers.Request) (handlers.Reply, handlers.Task)
	Click(ctx context.Context, c handlers.Click) handlers.Reply
	Form(v handlers.FormValues) handlers.StartForm
	Submit(userID string, v handlers.FormValues) (map[string]string, handlers.Task)
	Choose(ctx context.Context, userID string, f handlers.ChoiceForm, value string) handlers.Reply
	Compose(ctx context.Context, userID string, f handlers.ComposeForm, title, body string) handlers.Reply
}

var _ Handler = (*handlers.Handler)(nil)

// Run connects to Slack in socket mode and serves until ctx ends or the app
// token is refused. The socket-mode client reconnects by itself when the
// connection drops. On the way out Run waits for the commands and clicks in
// hand: their context is cancelled, so running steps are left for
// Engine.Resume.
func (b *Bot) Run(ctx context.Context, h Handler) error {
	if b.engine == nil {
		return errors.New("slack bot: Bind the engine before Run")
	}
	auth, err := b.api.AuthTestContext(ctx)
	if err != nil {
		return fmt.Errorf("slack auth.test: %w", err)
	}
	b.mu.Lock()
	b.self, b.teamURL = auth.UserID, auth.URL
	b.mu.Unlock()
	b.log.Info("slack auth ok", zap.String("team", auth.Team), zap.String("user_id", auth.UserID))

	// The approvers' user groups are loaded before the socket connects, so
	// that the first commands after a start (or a failover to this replica)
	// are decided, and refused, in their ack; keepFresh takes over after.
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := b.approvers.refresh(lctx); err != nil && ctx.Err() == nil {
		b.log.Warn("load approver groups before connecting", zap.Error(err))
	}
	cancel()
	sm := socketmode.New(b.api, socketmode.OptionLog(zap.NewStdLog(b.log.Named("socketmode"))))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := sm.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("socket mode: %w", err)
	})
	g.Go(func() error { return b.receive(gctx, sm, h) })
	g.Go(func() error { return b.sender.run(gctx) })
	g.Go(func() error { b.approvers.keepFresh(gctx); return nil })
	g.Go(func() error { b.responders.keepFresh(gctx); return nil })
	err = g.Wait()
	b.pool.wait()
	return err
}

// receive is the receive loop. It does no I/O besides the ack: it decides
// what it can from memory, acks at once, and hands the rest to the pool. It
// drops a redelivery of an envelope it has seen from memory (see seen); the
// workers drop one this process has not seen but an earlier one acted on
// (see firstDelivery).
func (b *Bot) receive(ctx context.Context, sm *socketmode.Client, h Handler) error {
	seen := newSeen(seenMax)
	for {
		select {
		case <-ctx.Done():
			return nil
		case evt, ok := <-sm.Events:
			if !ok {
				return nil
			}
			if err := b.dispatch(ctx, sm, h, evt, seen); err != nil {
				return err
			}
		}
	}
}

func (b *Bot) dispatch(ctx context.Context, sm *socketmode.Client, h Handler, evt socketmode.Event, seen *seen) error {
	b.recvAt = time.Now()
	b.observeConnection(evt.Type)
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		b.opts.Observer.Envelope(string(evt.Type))
	}
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.log.Debug("slack connecting")
	case socketmode.EventTypeConnected:
		b.log.Info("slack connected")
	case socketmode.EventTypeConnectionError:
		b.log.Warn("slack connection error; retrying", zap.Any("detail", evt.Data))
	case socketmode.EventTypeInvalidAuth:
		return errors.New("slack refused the app token (invalid_auth); check SLACK_APP_TOKEN")
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("slack socket error", zap.String("type", string(evt.Type)), zap.Any("detail", evt.Data))
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if ok && evt.Request != nil && !b.redelivered(sm, evt.Request, seen) {
			b.onCommand(ctx, sm, h, evt.Request, cmd, seen)
		}
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if ok && evt.Request != nil {
			if b.redelivered(sm, evt.Request, seen) {
				if cb.Type == slack.InteractionTypeBlockActions {
					b.opts.Observer.ClickRefused(RefusedRedelivery)
				}
				return nil
			}
			b.onInteractive(ctx, sm, h, evt.Request, cb, seen)
		}
	case socketmode.EventTypeEventsAPI:
		b.ack(sm, evt.Request, nil)
	}
	return nil
}

// ack answers an envelope; the payload carries a reply (slash commands) or
// form errors (view submissions). It must stay under 20 KB, which
// socketmode checks.
func (b *Bot) ack(sm *socketmode.Client, req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	if err := sm.Ack(*req, payload); err != nil {
		b.log.Error("ack", zap.String("envelope_id", req.EnvelopeID), zap.Error(err))
		return
	}
	if !b.recvAt.IsZero() {
		b.opts.Observer.Acked(req.Type, time.Since(b.recvAt))
	}
}

// seenMax bounds the envelope ids the receive loop remembers. Slack
// redelivers an unacked envelope within minutes; at a DR bot's traffic a
// thousand envelopes span hours, and a redelivery older than that is still
// caught by the durable record (Envelopes).
const seenMax = 1024

// seen remembers the envelopes the receive loop acked and handed on, with
// their ack payload, least recently added first out. Only the receive loop
// uses it, so it needs no lock.
type seen struct {
	max   int
	order *list.List // of seenEntry, oldest first
	ids   map[string]*list.Element
}

type seenEntry struct {
	id  string
	ack any
}

func newSeen(n int) *seen { return &seen{max: n, order: list.New(), ids: map[string]*list.Element{}} }

// add remembers an envelope and the payload it was acked with.
func (s *seen) add(id string, ack any) {
	if id == "" {
		return
	}
	if e, ok := s.ids[id]; ok {
		e.Value = seenEntry{id: id, ack: ack}
		return
	}
	s.ids[id] = s.order.PushBack(seenEntry{id: id, ack: ack})
	if s.order.Len() > s.max {
		oldest := s.order.Front()
		s.order.Remove(oldest)
		delete(s.ids, oldest.Value.(seenEntry).id)
	}
}

// ack returns the payload an envelope was acked with, if it was seen.
func (s *seen) ack(id string) (any, bool) {
	e, ok := s.ids[id]
	if !ok {
		return nil, false
	}
	return e.Value.(seenEntry).ack, true
}

// redelivered reports whether the envelope was handed on before (Slack sends
// it again with retry_attempt > 0 when our ack did not reach it in time); if
// so it is acked again with the same answer and dropped.
func (b *Bot) redelivered(sm *socketmode.Client, req *socketmode.Request, seen *seen) bool {
	payload, ok := seen.ack(req.EnvelopeID)
	if !ok {
		return false
	}
	b.log.Info("redelivered envelope dropped", envelopeFields(req)...)
	b.ack(sm, req, payload)
	return true
}

// envelopeFields are the log fields of an envelope: its id, and Slack's
// retry attempt and reason on a redelivery.
func envelopeFields(req *socketmode.Request) []zap.Field {
	f := []zap.Field{zap.String("envelope_id", req.EnvelopeID)}
	if req.RetryAttempt > 0 {
		f = append(f, zap.Int("retry_attempt", req.RetryAttempt), zap.String("retry_reason", req.RetryReason))
	}
	return f
}

// Envelopes remembers durably which Slack envelopes drbot acted on
// (store.Store's FirstDelivery). An Outbox that implements it makes the bot
// drop a redelivery that reaches a new process after a restart; without it
// redeliveries are dropped only within one process.
type Envelopes interface {
	// FirstDelivery records key and reports whether it was new.
	FirstDelivery(ctx context.Context, key string, at time.Time) (bool, error)
}

// firstDelivery is a worker's check, before it acts, that no earlier
// delivery of the envelope was acted on, here or before a restart. The
// receive loop cannot ask the store (it does no I/O), so commands, form
// submissions and clicks, which are not idempotent (/dr start creates a run,
// /dr notify posts, a second click is a refusal on the timeline), ask here.
// If the record cannot be written the work goes on: a lost write must not
// lose the command.
func (b *Bot) firstDelivery(ctx context.Context, key string, log *zap.Logger) bool {
	env, ok := b.outbox.(Envelopes)
	if !ok || key == "" {
		return true
	}
	first, err := env.FirstDelivery(ctx, key, b.clock.Now())
	if err != nil {
		log.Warn("record envelope; acting on it", zap.Error(err))
		return true
	}
	if !first {
		log.Info("envelope acted on before a restart; redelivery dropped")
	}
	return first
}

// actionKey is the durable key of the i-th action of an envelope.
func actionKey(envelopeID string, i int) string {
	if i == 0 {
		return envelopeID
	}
	return envelopeID + "/" + strconv.Itoa(i)
}

// ephemeralAck is a slash command's immediate reply, seen only by the user.
func ephemeralAck(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "text": truncate(text, maxSectionText)}
}

// leftForRedelivery is logged when the pool's queue is full: the envelope
// is not acked, so Slack delivers it again (with retry_attempt) a little
// later, instead of drbot refusing it.
const leftForRedelivery = "queue full; envelope left unacked for Slack to redeliver"

func (b *Bot) onCommand(ctx context.Context, sm *socketmode.Client, h Handler, req *socketmode.Request, cmd slack.SlashCommand, seen *seen) {
	log := b.log.With(append(envelopeFields(req), zap.String("user_id", cmd.UserID), zap.String("channel_id", cmd.ChannelID))...)
	reply, task := h.Command(handlers.Request{UserID: cmd.UserID, ChannelID: cmd.ChannelID, Text: cmd.Text})
	log.Info("slash command", zap.String("text", truncate(cmd.Text, 200)), zap.Bool("worker", task != nil || reply.Form != nil))
	work := task != nil || reply.Form != nil
	if work && !b.pool.acquire() {
		log.Warn(leftForRedelivery)
		return
	}
	var payload any
	if reply.Text != "" {
		payload = ephemeralAck(reply.Text)
	}
	b.ack(sm, req, payload)
	seen.add(req.EnvelopeID, payload)
	if !work {
		return
	}
	to := target{responseURL: cmd.ResponseURL, channel: cmd.ChannelID, user: cmd.UserID}
	b.pool.run(func() {
		if !b.firstDelivery(ctx, req.EnvelopeID, log) {
			return
		}
		if reply.Form != nil {
			b.openForm(ctx, cmd.TriggerID, *reply.Form, to, log)
		}
		if task != nil {
			b.respond(ctx, to, task(ctx).Text, log)
		}
	})
}

func (b *Bot) onInteractive(ctx context.Context, sm *socketmode.Client, h Handler, req *socketmode.Request, cb slack.InteractionCallback, seen *seen) {
	log := b.log.With(append(envelopeFields(req), zap.String("user_id", cb.User.ID), zap.String("channel_id", cb.Channel.ID))...)
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		// One place per action, reserved before the ack: onAction runs or
		// releases each.
		if !b.pool.acquireN(len(cb.ActionCallback.BlockActions)) {
			log.Warn(leftForRedelivery)
			b.opts.Observer.ClickRefused(RefusedQueueFull)
			return
		}
		b.ack(sm, req, nil)
		seen.add(req.EnvelopeID, nil)
		for i, a := range cb.ActionCallback.BlockActions {
			b.onAction(ctx, h, cb, *a, actionKey(req.EnvelopeID, i), log)
		}
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID == choiceCallbackID {
			b.onChoice(ctx, sm, h, req, cb, seen, log)
			return
		}
		if cb.View.CallbackID == composeCallbackID {
			b.onCompose(ctx, sm, h, req, cb, seen, log)
			return
		}
		if cb.View.CallbackID != formCallbackID {
			b.ack(sm, req, nil)
			return
		}
		v := formValues(cb.View)
		problems, task := h.Submit(cb.User.ID, v)
		if len(problems) == 0 && !b.pool.acquire() {
			log.Warn(leftForRedelivery)
			return
		}
		if len(problems) > 0 {
			log.Info("form refused", zap.Any("problems", problems))
			b.ack(sm, req, slack.NewErrorsViewSubmissionResponse(formErrors(problems)))
			return
		}
		cleared := slack.NewClearViewSubmissionResponse()
		b.ack(sm, req, cleared)
		seen.add(req.EnvelopeID, cleared)
		log.Info("form submitted", zap.Stringer("values", v))
		to := target{channel: v.ChannelID, user: cb.User.ID}
		b.pool.run(func() {
			if b.firstDelivery(ctx, req.EnvelopeID, log) {
				b.respond(ctx, to, task(ctx).Text, log)
			}
		})
	default:
		b.ack(sm, req, nil)
	}
}

// onAction hands a button click or a form redraw to a worker, in the pool
// place the caller reserved for it; key is the action's durable key
// (actionKey). A form redraw is idempotent and is not recorded.
func (b *Bot) onAction(ctx context.Context, h Handler, cb slack.InteractionCallback, a slack.BlockAction, key string, log *zap.Logger) {
	if a.ActionID == formScenarioAction {
		b.pool.run(func() { b.redrawForm(ctx, h, cb.View, log) })
		return
	}
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	to := target{responseURL: cb.ResponseURL, channel: channel, user: cb.User.ID}
	raw := a.Value
	if a.ActionID == string(handlers.ActStage) {
		raw = a.SelectedOption.Value
	}
	val, err := DecodeValue(raw)
	if err != nil {
		b.pool.release()
		log.Warn("unknown button", zap.String("action_id", a.ActionID), zap.Error(err))
		b.opts.Observer.ClickRefused(RefusedUnknownButton)
		return
	}
	click := handlers.Click{Action: handlers.Action(a.ActionID), RunID: val.RunID, StepID: val.StepID, Version: val.Version, UserID: cb.User.ID}
	if click.Action == handlers.ActStage {
		// The stage select carries the stage in the codec's step slot.
		click.StepID, click.Value = "", val.StepID
	}
	log = log.With(zap.String("run_id", val.RunID), zap.String("step_id", val.StepID), zap.String("action_id", a.ActionID))
	log.Info("click")
	b.pool.run(func() {
		if !b.firstDelivery(ctx, key, log) {
			b.opts.Observer.ClickRefused(RefusedRedelivery)
			return
		}
		// The click is claimed in the store before anything is drawn: the
		// claim's own event redraws the message through the outbox (a
		// running step reads "in progress… · approved by @x", without
		// buttons), in order with the step's later updates, while the step
		// already runs on the engine. A direct chat.update here would delay
		// the claim (before it) or could land after the step's "done" (after).
		reply := h.Click(ctx, click)
		if reply.Choice != nil {
			reply.Choice.ChannelID = channel
			b.openChoice(ctx, cb.TriggerID, *reply.Choice, to, log)
			return
		}
		if reply.Compose != nil {
			reply.Compose.ChannelID = channel
			b.openCompose(ctx, cb.TriggerID, *reply.Compose, to, log)
			return
		}
		if reply.Text == "" {
			return
		}
		b.opts.Observer.ClickRefused(RefusedByEngine)
		b.respond(ctx, to, reply.Text, log)
		b.redraw(ctx, click, log)
	})
}

// RedrawOpen puts an active run's Slack side right after a restart. Every
// stored event is queued for the timeline (a process killed between storing
// an event and queueing it would lose it; queueing again is harmless, by
// key), and the panel and the steps that wait for a person are redrawn: a
// message whose update was lost, or that an earlier drbot marked
// "in progress…" before a click it never acted on, gets its buttons back, so
// a person can click again.
func (b *Bot) RedrawOpen(ctx context.Context, runID string) error {
	view, err := b.engine.View(ctx, runID)
	if err != nil {
		return fmt.Errorf("redraw %s: %w", runID, err)
	}
	events, err := b.engine.Events(ctx, runID)
	if err != nil {
		return fmt.Errorf("redraw %s: %w", runID, err)
	}
	var msgs []OutboxMessage
	for _, ev := range events {
		msgs = append(msgs, timelineMessage(runID, ev))
	}
	stamp := time.Now().UnixNano()
	msgs = append(msgs, message(fmt.Sprintf("redraw:%s::%d", runID, stamp), kindPanel, payload{RunID: runID}))
	for _, s := range view.Steps {
		if st := s.State.State; st == runbook.AwaitingApproval || st == runbook.Failed {
			msgs = append(msgs, message(fmt.Sprintf("redraw:%s:%s:%d", runID, s.Step.ID, stamp), kindStep, payload{RunID: runID, StepID: s.Step.ID}))
		}
	}
	return b.enqueue(ctx, msgs...)
}

// redraw queues a fresh rendering of a clicked message, giving back the
// buttons a refused or failed click took away.
func (b *Bot) redraw(ctx context.Context, c handlers.Click, log *zap.Logger) {
	key := fmt.Sprintf("redraw:%s:%s:%d", c.RunID, c.StepID, time.Now().UnixNano())
	m := message(key, kindPanel, payload{RunID: c.RunID})
	if c.StepID != "" {
		m = message(key, kindStep, payload{RunID: c.RunID, StepID: c.StepID})
	}
	if err := b.enqueue(ctx, m); err != nil {
		log.Error("queue redraw", zap.Error(err))
	}
}

// openChoice opens a step's choice form with the click's trigger id (valid
// for 3 seconds; the adapter has listed the choices by then, or the person
// is told to click again).
func (b *Bot) openChoice(ctx context.Context, triggerID string, f handlers.ChoiceForm, to target, log *zap.Logger) {
	if _, err := b.api.OpenViewContext(ctx, triggerID, b.render.ChoiceModal(f)); err != nil {
		log.Warn("open choice form", zap.Error(err))
		b.respond(ctx, to, fmt.Sprintf("I could not open the list (%v); click Choose again.", err), log)
	}
}

// onChoice handles a submitted choice form: the ack closes it at once, a
// worker completes the step with the pick.
func (b *Bot) onChoice(ctx context.Context, sm *socketmode.Client, h Handler, req *socketmode.Request, cb slack.InteractionCallback, seen *seen, log *zap.Logger) {
	f, value := choiceValue(cb.View)
	if value == "" {
		b.ack(sm, req, slack.NewErrorsViewSubmissionResponse(map[string]string{choiceBlock: "Pick one, or Cancel."}))
		return
	}
	if !b.pool.acquire() {
		log.Warn(leftForRedelivery)
		return
	}
	cleared := slack.NewClearViewSubmissionResponse()
	b.ack(sm, req, cleared)
	seen.add(req.EnvelopeID, cleared)
	log = log.With(zap.String("run_id", f.RunID), zap.String("step_id", f.StepID))
	log.Info("choice submitted", zap.String("value", value))
	to := target{channel: f.ChannelID, user: cb.User.ID}
	b.pool.run(func() {
		if b.firstDelivery(ctx, req.EnvelopeID, log) {
			b.respond(ctx, to, h.Choose(ctx, cb.User.ID, f, value).Text, log)
		}
	})
}

// openForm opens the start form; the trigger id expires 3 seconds after the
// command, so it is opened with everything it needs in one call.
func (b *Bot) openForm(ctx context.Context, triggerID string, f handlers.StartForm, to target, log *zap.Logger) {
	if _, err := b.api.OpenViewContext(ctx, triggerID, b.render.Modal(f)); err != nil {
		log.Warn("open form", zap.Error(err))
		b.respond(ctx, to, fmt.Sprintf("I could not open the form (%v). Type the whole command instead:\n%s", err, handlers.Usage), log)
	}
}

// redrawForm shows the inputs of the scenario just picked.
func (b *Bot) redrawForm(ctx context.Context, h Handler, view slack.View, log *zap.Logger) {
	form := h.Form(formValues(view))
	if _, err := b.api.UpdateViewContext(ctx, b.render.Modal(form), "", view.Hash, view.ID); err != nil {
		log.Warn("redraw form", zap.Error(err))
	}
}

// target is where a reply to a user goes.
type target struct {
	responseURL string
	channel     string
	user        string
}

// respond tells one user something: through the command's response_url when
// there is one, else as an ephemeral message in the channel, else in a
// direct message.
func (b *Bot) respond(ctx context.Context, to target, text string, log *zap.Logger) {
	if text == "" {
		return
	}
	text = truncate(text, maxSectionText)
	if to.responseURL != "" {
		err := slack.PostWebhookCustomHTTPContext(ctx, to.responseURL, b.opts.HTTPClient,
			&slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text})
		if err == nil {
			return
		}
		log.Warn("reply through response_url", zap.Error(err))
	}
	if to.channel != "" {
		_, err := b.api.PostEphemeralContext(ctx, to.channel, to.user, slack.MsgOptionText(text, false))
		if err == nil {
			return
		}
		log.Warn("ephemeral reply", zap.Error(err))
	}
	if _, _, err := b.api.PostMessageContext(ctx, to.user, slack.MsgOptionText(text, false)); err != nil {
		log.Error("reply to user", zap.Error(err))
	}
}
