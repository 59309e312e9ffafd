package bot

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Notify announces an event (runbook.Notifier): it queues, in the durable
// outbox, a redraw of the control panel and of the step's message, one reply
// in the timeline thread, and at the end the closing report in the incident
// channel and to the stakeholders. It only writes to the outbox, so the
// engine is not held up by Slack.
func (b *Bot) Notify(ctx context.Context, run *runbook.Run, ev runbook.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	id := eventID(ev)
	p := payload{RunID: run.ID}
	var msgs []OutboxMessage
	if changesPanel(ev.Kind) {
		msgs = append(msgs, message("panel:"+run.ID+":"+id, kindPanel, p))
	}
	if ev.StepID != "" && changesStep(ev.Kind) {
		msgs = append(msgs, message("step:"+run.ID+":"+id, kindStep, payload{RunID: run.ID, StepID: ev.StepID}))
	}
	msgs = append(msgs, timelineMessage(run.ID, ev))
	msgs = append(msgs, b.commsMessages(run, ev)...)
	if ev.Kind == runbook.EventRunDone || ev.Kind == runbook.EventRunAborted {
		msgs = append(msgs, message("closing:"+run.ID, kindClosing, p))
		for _, ch := range b.opts.StakeholderChannels {
			msgs = append(msgs, message("closing:"+run.ID+":"+ch, kindClosing, payload{RunID: run.ID, Channel: ch}))
		}
	}
	if err := b.enqueue(ctx, msgs...); err != nil {
		b.log.Error("queue slack messages", zap.String("run_id", run.ID), zap.String("step_id", ev.StepID),
			zap.String("event", string(ev.Kind)), zap.Error(err))
	}
}

// eventID names an event in outbox keys: its sequence number, or for a store
// that does not number events, its time, kind and step.
func eventID(ev runbook.Event) string {
	if ev.Seq == 0 {
		return fmt.Sprintf("t%d-%s-%s", ev.At.UnixNano(), ev.Kind, ev.StepID)
	}
	return strconv.FormatInt(ev.Seq, 10)
}

// timelineMessage is an event's reply in the run's timeline thread. Its key
// makes queueing it again harmless.
func timelineMessage(runID string, ev runbook.Event) OutboxMessage {
	return message("timeline:"+runID+":"+eventID(ev), kindTimeline, payload{RunID: runID, Event: &ev})
}

// changesPanel reports whether an event changes what the panel shows.
func changesPanel(k runbook.EventKind) bool {
	switch k {
	case runbook.EventStepProgress, runbook.EventNote, runbook.EventRefused, runbook.EventUpdate, runbook.EventUpdateDue,
		runbook.EventDrill, runbook.EventFollowUp:
		return false
	}
	return true
}

// changesStep reports whether an event changes a step's message.
func changesStep(k runbook.EventKind) bool {
	return k != runbook.EventRefused && k != runbook.EventNote
}
