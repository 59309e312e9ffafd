package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// actionFunc adapts a function to runbook.Action.
type actionFunc func(ctx context.Context, req runbook.Request) (runbook.Result, error)

// Run calls f.
func (f actionFunc) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	return f(ctx, req)
}

// Actions returns the Slack action kinds for the engine's registry. They are
// real in drills too: a drill runs in a real workspace.
func (b *Bot) Actions() runbook.Registry {
	return runbook.Registry{
		runbook.KindCreateChannel:      actionFunc(b.createChannel),
		runbook.KindNotifyStakeholders: actionFunc(b.notice("stakeholder", func() []string { return b.opts.StakeholderChannels })),
		runbook.KindNotifyDevelopers:   actionFunc(b.notice("developer", func() []string { return b.opts.DeveloperChannels })),
	}
}

// createChannel reports the incident channel /dr start created; a run
// started without one (e.g. resumed from elsewhere) gets one now. A channel
// created by an earlier attempt is found in the checkpoint, not made twice.
func (b *Bot) createChannel(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	view, err := b.engine.View(ctx, req.RunID)
	if err != nil {
		return runbook.Result{}, fmt.Errorf("load run: %w", err)
	}
	meta := view.Run.Meta
	id, name := meta[metaChannel], meta[metaChannelName]
	if id == "" {
		id, name = req.Checkpoint[metaChannel], req.Checkpoint[metaChannelName]
	}
	created := false
	if id == "" {
		ch, err := b.OpenChannel(ctx, handlers.ChannelRequest{
			Scenario: view.Runbook.ID, Title: view.Runbook.Title, Service: view.Run.Service, Env: view.Run.Env,
			Requester: view.Run.StartedBy, Comms: handlers.CommsLead(view.Run), At: b.clock.Now(), Incident: view.Run.Incident,
		})
		if err != nil {
			return runbook.Result{}, err
		}
		id, name, created = ch.ID, ch.Name, true
		if err := req.Save(ctx, map[string]string{metaChannel: id, metaChannelName: name}); err != nil {
			return runbook.Result{}, err
		}
	}
	if meta[metaChannel] == "" {
		if err := b.engine.SetMeta(ctx, req.RunID, map[string]string{metaChannel: id, metaChannelName: name}); err != nil {
			return runbook.Result{}, fmt.Errorf("keep channel: %w", err)
		}
	}
	verb := "is open"
	if created {
		verb = "was created"
	}
	res := runbook.Result{Summary: fmt.Sprintf("incident channel <#%s> (#%s) %s; the control panel is pinned there", id, name, verb)}
	if u := b.channelLink(id); u != "" {
		res.Links = []runbook.Link{{Label: "#" + name, URL: u}}
	}
	return res, nil
}

// notice posts a step's text to a set of channels through the outbox and
// waits a little for Slack to take it, to link the posts.
func (b *Bot) notice(audience string, channels func() []string) actionFunc {
	return func(ctx context.Context, req runbook.Request) (runbook.Result, error) {
		spec, err := runbook.DecodeText(req.Params)
		if err != nil {
			return runbook.Result{}, err
		}
		text, chans := spec.Text, channels()
		if len(chans) == 0 {
			return runbook.Result{}, fmt.Errorf("no %s channels are configured (slack.%s_channels in drbot.yaml); post it by hand and skip this step", audience, audience)
		}
		view, err := b.engine.View(ctx, req.RunID)
		if err != nil {
			return runbook.Result{}, fmt.Errorf("load run: %w", err)
		}
		msg := b.render.Notice(view, text)
		keys := make([]string, len(chans))
		msgs := make([]OutboxMessage, len(chans))
		for i, ch := range chans {
			keys[i] = fmt.Sprintf("notice:%s:%s:%d:%s", req.RunID, req.StepID, req.Attempt, ch)
			msgs[i] = postMessage(keys[i], req.RunID, ch, msg)
		}
		if err := b.enqueue(ctx, msgs...); err != nil {
			return runbook.Result{}, runbook.Retryable(fmt.Errorf("queue %s notice: %w", audience, err))
		}
		results, err := b.waitDelivered(ctx, b.opts.DeliveryWait, keys...)
		if err != nil {
			return runbook.Result{}, runbook.Retryable(fmt.Errorf("%s notice: %w", audience, err))
		}
		var posted, queued, failed []string
		var res runbook.Result
		for i, ch := range chans {
			r, ok := results[keys[i]]
			switch {
			case !ok:
				queued = append(queued, "<#"+ch+">")
			case isFailed(r):
				failed = append(failed, fmt.Sprintf("<#%s>: %s", ch, strings.TrimPrefix(r, resultFailed)))
			default:
				posted = append(posted, "<#"+ch+">")
				if u := b.permalink(ch, r); u != "" {
					res.Links = append(res.Links, runbook.Link{Label: audience + " notice in #" + ch, URL: u})
				}
			}
		}
		if len(failed) > 0 {
			return res, fmt.Errorf("the %s notice could not be posted to %s", audience, strings.Join(failed, "; "))
		}
		var parts []string
		if len(posted) > 0 {
			parts = append(parts, "posted to "+strings.Join(posted, ", "))
		}
		if len(queued) > 0 {
			parts = append(parts, "queued for "+strings.Join(queued, ", ")+" (Slack is slow; it will be delivered)")
		}
		res.Summary = audience + " notice " + strings.Join(parts, "; ")
		return res, nil
	}
}
