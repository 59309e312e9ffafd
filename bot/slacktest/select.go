package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Select picks, in a message's static select with actionID, the option
// whose text contains label, as Slack sends it (block_actions with
// selected_option).
func (s *Server) Select(ctx context.Context, user string, m Message, actionID, label string) (Ack, error) {
	var blocks []struct {
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Options  []struct {
				Text  map[string]any `json:"text"`
				Value string         `json:"value"`
			} `json:"options"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		for _, el := range b.Elements {
			if el.Type != "static_select" || el.ActionID != actionID {
				continue
			}
			for _, o := range el.Options {
				if text, _ := o.Text["text"].(string); strings.Contains(text, label) {
					return s.Send(ctx, "interactive", s.messageAction(user, m, map[string]any{
						"action_id": actionID, "block_id": b.BlockID, "type": "static_select",
						"selected_option": map[string]any{"text": o.Text, "value": o.Value},
					}))
				}
			}
		}
	}
	return Ack{}, fmt.Errorf("slacktest: message %s has no %s select with an option %q", m.TS, actionID, label)
}
