package slacktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func client(s *Server) *slack.Client {
	return slack.New("xoxb-test", slack.OptionAppLevelToken("xapp-test"), slack.OptionAPIURL(s.URL()))
}

func TestMessagesHaveUniqueTSWithinASecond(t *testing.T) {
	s := New()
	defer s.Close()
	s.AddChannel("C1", "one")
	api := client(s)
	seen := map[string]bool{}
	for range 50 {
		_, ts, err := api.PostMessage("C1", slack.MsgOptionText("hi", false))
		if err != nil {
			t.Fatal(err)
		}
		if seen[ts] {
			t.Fatalf("ts %s handed out twice", ts)
		}
		seen[ts] = true
	}
}

func TestWebAPIErrorsAsSlackSendsThem(t *testing.T) {
	s := New()
	defer s.Close()
	api := client(s)
	ctx := context.Background()

	if _, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "dr-x"}); err != nil {
		t.Fatal(err)
	}
	_, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "dr-x"})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "name_taken" {
		t.Errorf("second create: %v", err)
	}

	s.Fail("conversations.create", "missing_scope")
	_, err = api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "dr-y"})
	if !errors.As(err, &se) || se.Err != "missing_scope" || se.Needed != "channels:manage" {
		t.Errorf("missing scope: %#v", err)
	}

	s.RateLimit("chat.postMessage", 2*time.Second)
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Errorf("rate limit: %v", err)
	}

	bad := slack.New("xoxp-user-token", slack.OptionAPIURL(s.URL()))
	if _, err := bad.AuthTest(); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("a non-bot token: %v", err)
	}
}
