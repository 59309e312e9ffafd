package slacktest

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// poll calls f until it reports true or ctx ends.
func poll(ctx context.Context, what string, f func() bool) error {
	for {
		if f() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slacktest: waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// WaitMessage waits until a top-level message of channel matches and
// returns it as it is then.
func (s *Server) WaitMessage(ctx context.Context, channel string, match func(Message) bool) (Message, error) {
	var found Message
	err := poll(ctx, "a message in "+channel, func() bool {
		for _, m := range s.Messages(channel) {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitReplies waits until a thread has at least n replies.
func (s *Server) WaitReplies(ctx context.Context, channel, threadTS string, n int) ([]Message, error) {
	var got []Message
	err := poll(ctx, fmt.Sprintf("%d replies in %s/%s", n, channel, threadTS), func() bool {
		got = s.Replies(channel, threadTS)
		return len(got) >= n
	})
	return got, err
}

// WaitEphemeral waits for a reply to user containing text.
func (s *Server) WaitEphemeral(ctx context.Context, user, text string) (Ephemeral, error) {
	var found Ephemeral
	err := poll(ctx, fmt.Sprintf("an ephemeral reply to %s with %q", user, text), func() bool {
		for _, e := range s.Ephemerals() {
			if e.User == user && strings.Contains(e.Text, text) {
				found = e
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitChannel waits until the app has created a channel and returns it.
func (s *Server) WaitChannel(ctx context.Context) (Channel, error) {
	var found Channel
	err := poll(ctx, "a created channel", func() bool {
		for _, c := range s.Channels() {
			if c.Created {
				found = c
				return true
			}
		}
		return false
	})
	return found, err
}
