package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/handlers"
)

// checkPostedOnce fails on a message without drbot's key or a key shown
// twice; it returns how many messages drbot posted.
func checkPostedOnce(t *testing.T, fake *slacktest.Server) int {
	t.Helper()
	n := 0
	for key, count := range fake.PostCounts("drbot_message", "key") {
		switch {
		case key == "":
			t.Errorf("%d messages without drbot's metadata key", count)
		case count > 1:
			t.Errorf("%s posted %d times", key, count)
		}
		n += count
	}
	return n
}

// TestLostAnswersPostOnce: Slack takes a quarter of the posts and loses its
// answer (HTTP 503 after acting). drbot looks each of them up by its key
// before posting again, so nothing is shown twice and nothing is lost.
func TestLostAnswersPostOnce(t *testing.T) {
	h := newHarness(t)
	// drbot was invited, so it may read back what it posted there.
	h.slack.AddMembers(stakeChan, slacktest.BotUserID)
	h.slack.AddMembers(devChan, slacktest.BotUserID)
	h.slack.SetFaults(slacktest.Faults{Seed: 3, Lost: 0.25, Methods: []string{"chat.postMessage"}})
	ch := h.start()
	m := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	h.click(lead, m, handlers.ActApprove)
	h.stepMessage(ch.ID, 1, "Stop the web app and workers", "done")
	h.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval")
	waitOutboxEmpty(t, h)

	lost := h.slack.Injected()[slacktest.FaultLost]
	if lost < 3 {
		t.Fatalf("only %d answers lost; the test proves nothing", lost)
	}
	posts := checkPostedOnce(t, h.slack)
	events, err := h.store.Events(h.ctx, h.runs()[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var root slacktest.Message
	for _, m := range h.slack.Messages(ch.ID) {
		if len(h.slack.Replies(ch.ID, m.TS)) > 0 {
			root = m
		}
	}
	if replies := h.slack.Replies(ch.ID, root.TS); len(replies) != len(events) {
		t.Errorf("%d timeline replies for %d events", len(replies), len(events))
	}
	t.Logf("%d answers lost, %d posts, none twice", lost, posts)
}

// waitOutboxEmpty waits until every queued message is delivered.
func waitOutboxEmpty(t *testing.T, h *harness) {
	t.Helper()
	for h.ctx.Err() == nil {
		pending := 0
		for _, m := range h.outbox.All() {
			if m.DoneAt.IsZero() {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("outbox not delivered in time")
}

// TestPostOfAKilledProcessIsNotRepeated: a drbot killed after Slack took a
// post but before it recorded the delivery left the message pending; the
// next drbot finds it in the channel by its key and records it instead of
// posting it again. A pending message Slack does not have is posted.
func TestPostOfAKilledProcessIsNotRepeated(t *testing.T) {
	var postedTS string
	h := newHarnessWith(t, sim.Options{}, func(fake *slacktest.Server, ob *bot.MemOutbox) {
		fake.AddMembers(devChan, slacktest.BotUserID)
		api := slack.New("xoxb-test", slack.OptionAPIURL(fake.URL()))
		var err error
		_, postedTS, err = api.PostMessage(devChan, slack.MsgOptionText("drill at 14:00", false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "drbot_message", EventPayload: map[string]any{"key": "notice:1"}}))
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"notice:1", "notice:2"} {
			body, _ := json.Marshal(map[string]string{"channel": devChan, "text": "drill at 14:00"})
			if err := ob.Enqueue(context.Background(), bot.OutboxMessage{Key: key, Kind: "post", Payload: body}); err != nil {
				t.Fatal(err)
			}
		}
	})
	waitOutboxEmpty(t, h)
	results := map[string]string{}
	for _, m := range h.outbox.All() {
		results[m.Key] = m.Result
	}
	if results["notice:1"] != postedTS {
		t.Errorf("notice:1 delivered as %q, want the ts Slack already had, %s", results["notice:1"], postedTS)
	}
	if results["notice:2"] == "" || results["notice:2"] == postedTS {
		t.Errorf("notice:2 delivered as %q, want a post of its own", results["notice:2"])
	}
	if n := len(h.slack.Messages(devChan)); n != 2 {
		t.Errorf("%d messages in the developer channel, want 2", n)
	}
}

// TestSlackCallBudget: an idle run spends at most three Slack writes per
// step transition (the step's message once in its shape for that state,
// one timeline reply, the panel) and never rewrites a message with what it
// already shows.
func TestSlackCallBudget(t *testing.T) {
	h := newHarness(t)
	ch := h.start()
	m := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	waitOutboxEmpty(t, h)
	before := len(h.slack.Calls("chat.postMessage")) + len(h.slack.Calls("chat.update"))
	events, err := h.store.Events(h.ctx, h.runs()[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	h.click(lead, m, handlers.ActApprove)
	h.stepMessage(ch.ID, 5, "Set required PR approvers to 6", "awaiting approval")
	waitOutboxEmpty(t, h)
	after, err := h.store.Events(h.ctx, h.runs()[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	calls := len(h.slack.Calls("chat.postMessage")) + len(h.slack.Calls("chat.update")) - before
	transitions := len(after) - len(events)
	if calls > 3*transitions {
		t.Errorf("%d Slack writes for %d transitions: more than 3 each", calls, transitions)
	}
	for _, msg := range h.slack.Messages(ch.ID) {
		for i := 1; i < len(msg.History); i++ {
			if bytes.Equal(msg.History[i], msg.History[i-1]) {
				t.Errorf("%q: update %d identical to what it showed", msg.Text, i)
			}
		}
	}
	t.Logf("%d Slack writes for %d transitions (%.2f each)", calls, transitions, float64(calls)/float64(transitions))
}

// TestReportSharedOnceWhenTheAnswerIsLost: Slack shares the report and
// loses its answer to files.completeUploadExternal; the retry finds the
// file in the channel by its name instead of uploading a second one, and
// the stakeholders' closing message links that file.
func TestReportSharedOnceWhenTheAnswerIsLost(t *testing.T) {
	h := newHarness(t)
	h.slack.AddMembers(stakeChan, slacktest.BotUserID)
	h.slack.AddMembers(devChan, slacktest.BotUserID)
	h.slack.SetFaults(slacktest.Faults{Seed: 1, Lost: 1, Methods: []string{"files.completeUploadExternal"}})
	ch := h.start()
	h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	h.click(lead, h.slack.Messages(ch.ID)[0], handlers.ActAbort)
	linked := h.waitText(stakeChan, "-report.md")
	waitOutboxEmpty(t, h)

	var shared []slacktest.File
	for _, f := range h.slack.Files() {
		if f.Completed {
			shared = append(shared, f)
		}
	}
	if len(shared) != 1 || h.slack.Injected()[slacktest.FaultLost] != 1 {
		t.Fatalf("%d reports shared (%d answers lost), want 1", len(shared), h.slack.Injected()[slacktest.FaultLost])
	}
	if !strings.Contains(linked.AllText(), shared[0].ID) {
		t.Errorf("the closing message links another file than %s: %s", shared[0].ID, linked.AllText())
	}
	if n := len(h.slack.Calls("files.completeUploadExternal")); n != 1 {
		t.Errorf("files.completeUploadExternal called %d times, want 1", n)
	}
}
