package bot

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/report"
	"github.com/drbot-dev/drbot/runbook"
)

// reportFileName is an incident report's file name in Slack: the run's, or
// for one asked for at a time (/dr report), that time's. An upload is found
// again by it (uploads carry no metadata), so one is never shared twice.
func reportFileName(runID string, asked time.Time) string {
	if asked.IsZero() {
		return runID + "-report.md"
	}
	return runID + "-report-" + asked.UTC().Format("20060102T150405.000Z") + ".md"
}

// UploadReport queues an upload of a run's incident report (Markdown) into
// its incident channel, as of the moment it is delivered. It is
// handlers.Incidents' /dr report; the end of a run queues one by itself.
func (b *Bot) UploadReport(ctx context.Context, runID string) error {
	view, err := b.engine.View(ctx, runID)
	if err != nil {
		return err
	}
	if view.Run.Meta[metaChannel] == "" {
		return runbook.Refusef("run %s has no incident channel to upload its report to; `drbot report %s` prints it", runID, runID)
	}
	now := b.clock.Now()
	key := fmt.Sprintf("report:%s:%d", runID, now.UnixNano())
	if err := b.enqueue(ctx, message(key, kindReport, payload{RunID: runID, File: reportFileName(runID, now)})); err != nil {
		return fmt.Errorf("queue the report of %s: %w", runID, err)
	}
	return nil
}

// deliverReport builds the report from the run's stored timeline and
// uploads it with Slack's files upload v2 (files.getUploadURLExternal, the
// upload, files.completeUploadExternal), then keeps the file's id and
// permalink on the run for the closing messages to link.
func (s *sender) deliverReport(ctx context.Context, m OutboxMessage, view *runbook.RunView, channel string, p payload) (string, error) {
	b := s.b
	name := p.File
	if name == "" {
		name = reportFileName(view.Run.ID, time.Time{})
	}
	// An earlier attempt may have shared it and lost Slack's answer.
	k := keyed{channel: channel, key: name, since: view.Run.StartedAt}
	if id, err := s.lookupBy(ctx, m, k, byFileName(name)); err != nil || id != "" {
		if id != "" {
			s.keepReport(ctx, view.Run.ID, id, name)
		}
		return id, err
	}
	events, err := b.engine.Events(ctx, view.Run.ID)
	if err != nil {
		return "", fmt.Errorf("report of %s: %w", view.Run.ID, err)
	}
	rep := report.Build(view, events, b.clock.Now(), b.opts.Location)
	body := rep.Markdown()
	comment := fmt.Sprintf("📄 Incident report of %s (%s, %s/%s): summary, roles, stages, every step and the timeline. `/dr report` uploads a fresh one.",
		view.Run.ID, view.Runbook.Title, view.Run.Service, view.Run.Env)
	if simulation(view) != "" {
		comment = "[SIMULATED] " + comment
	}
	f, err := b.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(body), FileSize: len(body), Filename: name, Title: "Incident report " + view.Run.ID,
		Channel: channel, InitialComment: truncate(comment, maxSectionText), SnippetType: "markdown",
	})
	s.noteAnswer(m, err)
	if err != nil {
		return "", fmt.Errorf("upload the report of %s: %w", view.Run.ID, err)
	}
	s.keepReport(ctx, view.Run.ID, f.ID, name)
	b.log.Info("incident report uploaded", zap.String("run_id", view.Run.ID), zap.String("channel_id", channel), zap.String("file_id", f.ID))
	return f.ID, nil
}

// keepReport keeps an uploaded report's file id and permalink on the run,
// for the closing messages to link.
func (s *sender) keepReport(ctx context.Context, runID, fileID, name string) {
	kv := map[string]string{metaReportFile: fileID}
	if u := s.b.filePermalink(fileID, name); u != "" {
		kv[metaReportURL] = u
	}
	if err := s.b.engine.SetMeta(ctx, runID, kv); err != nil {
		s.b.log.Error("keep report file", zap.String("run_id", runID), zap.Error(err))
	}
}

// filePermalink is a file's permalink in Slack's documented form
// (https://<team>.slack.com/files/<uploader>/<file id>/<name>), when the
// workspace URL is known: it saves a files.info call and its files:read
// scope.
func (b *Bot) filePermalink(fileID, name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.teamURL == "" || b.self == "" {
		return ""
	}
	return b.teamURL + "files/" + b.self + "/" + fileID + "/" + name
}

// TimelineLink links a run's timeline thread, when its root is posted and
// the workspace URL is known.
func (b *Bot) TimelineLink(ctx context.Context, runID string) string {
	view, err := b.engine.View(ctx, runID)
	if err != nil {
		return ""
	}
	return b.permalink(view.Run.Meta[metaChannel], view.Run.Meta[metaTimelineTS])
}
