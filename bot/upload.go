package bot

import (
	"bytes"
	"context"
	"fmt"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/report"
	"github.com/drbot-dev/drbot/runbook"
)

// reportFileName is the incident report's file name in Slack.
func reportFileName(runID string) string { return runID + "-report.md" }

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
	key := fmt.Sprintf("report:%s:%d", runID, b.clock.Now().UnixNano())
	if err := b.enqueue(ctx, message(key, kindReport, payload{RunID: runID})); err != nil {
		return fmt.Errorf("queue the report of %s: %w", runID, err)
	}
	return nil
}

// deliverReport builds the report from the run's stored timeline and
// uploads it with Slack's files upload v2 (files.getUploadURLExternal, the
// upload, files.completeUploadExternal), then keeps the file's id and
// permalink on the run for the closing messages to link.
func (s *sender) deliverReport(ctx context.Context, view *runbook.RunView, channel string) (string, error) {
	b := s.b
	events, err := b.engine.Events(ctx, view.Run.ID)
	if err != nil {
		return "", fmt.Errorf("report of %s: %w", view.Run.ID, err)
	}
	rep := report.Build(view, events, b.clock.Now(), b.opts.Location)
	body := rep.Markdown()
	name := reportFileName(view.Run.ID)
	comment := fmt.Sprintf("📄 Incident report of %s (%s, %s/%s): summary, roles, stages, every step and the timeline. `/dr report` uploads a fresh one.",
		view.Run.ID, view.Runbook.Title, view.Run.Service, view.Run.Env)
	if simulation(view) != "" {
		comment = "[SIMULATED] " + comment
	}
	f, err := b.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(body), FileSize: len(body), Filename: name, Title: "Incident report " + view.Run.ID,
		Channel: channel, InitialComment: truncate(comment, maxSectionText), SnippetType: "markdown",
	})
	if err != nil {
		return "", fmt.Errorf("upload the report of %s: %w", view.Run.ID, err)
	}
	kv := map[string]string{metaReportFile: f.ID}
	if u := b.filePermalink(f.ID, name); u != "" {
		kv[metaReportURL] = u
	}
	if err := b.engine.SetMeta(ctx, view.Run.ID, kv); err != nil {
		b.log.Error("keep report file", zap.String("run_id", view.Run.ID), zap.Error(err))
	}
	b.log.Info("incident report uploaded", zap.String("run_id", view.Run.ID), zap.String("channel_id", channel), zap.String("file_id", f.ID))
	return f.ID, nil
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
