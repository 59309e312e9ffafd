package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SlashCommand pushes a slash_commands envelope with the payload Slack sends
// for `/dr <text>` typed by user in channel, and waits for the ack.
func (s *Server) SlashCommand(ctx context.Context, user, channel, text string) (Ack, error) {
	s.mu.Lock()
	trigger := s.nextID("trig-")
	name := channel
	if c, found := s.channels[channel]; found {
		name = c.Name
	}
	s.mu.Unlock()
	q := url.Values{"channel": {channel}, "user": {user}}
	payload := map[string]any{
		"token": "verification-token", "team_id": TeamID, "team_domain": "drbot-test",
		"channel_id": channel, "channel_name": name, "user_id": user, "user_name": strings.ToLower(user),
		"command": "/dr", "text": text, "api_app_id": AppID, "is_enterprise_install": "false",
		"response_url": s.srv.URL + "/response/" + trigger + "?" + q.Encode(), "trigger_id": trigger,
	}
	return s.Send(ctx, "slash_commands", payload)
}

// Button is a button found in a message.
type Button struct {
	ActionID, BlockID, Value, Text, Style string
}

// Buttons lists the buttons of a message's actions blocks.
func (m Message) Buttons() []Button {
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	var out []Button
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type == "button" {
				out = append(out, Button{ActionID: e.ActionID, BlockID: b.BlockID, Value: e.Value, Text: e.Text.Text, Style: e.Style})
			}
		}
	}
	return out
}

// Button returns the message's button with actionID.
func (m Message) Button(actionID string) (Button, bool) {
	i := slices.IndexFunc(m.Buttons(), func(b Button) bool { return b.ActionID == actionID })
	if i < 0 {
		return Button{}, false
	}
	return m.Buttons()[i], true
}

// AllText is the message's text and every text in its blocks, for
// assertions.
func (m Message) AllText() string {
	var v any
	_ = json.Unmarshal(m.Blocks, &v)
	var b strings.Builder
	b.WriteString(m.Text)
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			if s, ok := t["text"].(string); ok {
				b.WriteString("\n" + s)
			}
			for _, k := range slices.Sorted(mapKeys(t)) {
				walk(t[k])
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Click presses a button of a message as user: it pushes the interactive
// block_actions envelope Slack sends, and waits for the ack.
func (s *Server) Click(ctx context.Context, user string, m Message, actionID string) (Ack, error) {
	b, found := m.Button(actionID)
	if !found {
		return Ack{}, fmt.Errorf("slacktest: message %s has no %s button (has %v)", m.TS, actionID, m.Buttons())
	}
	return s.Send(ctx, "interactive", s.messageAction(user, m, map[string]any{
		"action_id": b.ActionID, "block_id": b.BlockID, "value": b.Value, "style": b.Style, "type": "button",
		"text": map[string]any{"type": "plain_text", "text": b.Text, "emoji": true},
	}))
}

// messageAction is the block_actions payload of action (its action_ts
// added) on message m by user.
func (s *Server) messageAction(user string, m Message, action map[string]any) map[string]any {
	s.mu.Lock()
	trigger := s.nextID("trig-")
	actionTS := s.nextTS()
	name := m.Channel
	if c, ok := s.channels[m.Channel]; ok {
		name = c.Name
	}
	s.mu.Unlock()
	var blocks any
	_ = json.Unmarshal(m.Blocks, &blocks)
	q := url.Values{"channel": {m.Channel}, "user": {user}}
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": TeamID},
		"api_app_id": AppID, "token": "verification-token",
		"container":  map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"trigger_id": trigger,
		"team":       map[string]any{"id": TeamID, "domain": "drbot-test"},
		"enterprise": nil, "is_enterprise_install": false,
		"channel": map[string]any{"id": m.Channel, "name": name},
		"message": map[string]any{"bot_id": BotID, "type": "message", "text": m.Text, "user": BotUserID, "ts": m.TS,
			"app_id": AppID, "blocks": blocks, "team": TeamID},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": s.srv.URL + "/response/" + trigger + "?" + q.Encode(),
		"actions":      []any{action},
	}
	action["action_ts"] = actionTS
	return payload
}

// viewPayload is a view as interactive payloads carry it, with state.
func (s *Server) viewPayload(v View, values map[string]map[string]any) map[string]any {
	out := map[string]any{"id": v.ID, "team_id": TeamID, "hash": v.Hash, "app_id": AppID, "bot_id": BotID,
		"root_view_id": v.ID, "previous_view_id": nil, "external_id": "", "app_installed_team_id": TeamID,
		"state": map[string]any{"values": values}}
	for k, val := range v.Body {
		out[k] = val
	}
	return out
}

// SubmitView submits the last version of a view with state values
// (block_id → action_id → element state, e.g. {"type": "static_select",
// "selected_option": {"value": "…"}}), as Slack's view_submission, and waits
// for the ack.
func (s *Server) SubmitView(ctx context.Context, user, viewID string, values map[string]map[string]any) (Ack, error) {
	v, found := s.View(viewID)
	if !found {
		return Ack{}, fmt.Errorf("slacktest: no view %s", viewID)
	}
	s.mu.Lock()
	trigger := s.nextID("trig-")
	s.mu.Unlock()
	payload := map[string]any{
		"type": "view_submission", "team": map[string]any{"id": TeamID, "domain": "drbot-test"},
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": TeamID},
		"api_app_id": AppID, "token": "verification-token", "trigger_id": trigger,
		"view": s.viewPayload(v, values), "response_urls": []any{}, "is_enterprise_install": false, "enterprise": nil,
	}
	return s.Send(ctx, "interactive", payload)
}

// SelectInView picks an option of a view's select that dispatches actions
// (block_actions from a modal), and waits for the ack.
func (s *Server) SelectInView(ctx context.Context, user, viewID, blockID, actionID, value string, values map[string]map[string]any) (Ack, error) {
	v, found := s.View(viewID)
	if !found {
		return Ack{}, fmt.Errorf("slacktest: no view %s", viewID)
	}
	s.mu.Lock()
	trigger := s.nextID("trig-")
	actionTS := s.nextTS()
	s.mu.Unlock()
	payload := map[string]any{
		"type": "block_actions", "team": map[string]any{"id": TeamID, "domain": "drbot-test"},
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": TeamID},
		"api_app_id": AppID, "token": "verification-token", "trigger_id": trigger,
		"container": map[string]any{"type": "view", "view_id": v.ID},
		"view":      s.viewPayload(v, values), "is_enterprise_install": false, "enterprise": nil,
		"actions": []any{map[string]any{"type": "static_select", "action_id": actionID, "block_id": blockID,
			"selected_option": map[string]any{"text": map[string]any{"type": "plain_text", "text": value}, "value": value}, "action_ts": actionTS}},
	}
	return s.Send(ctx, "interactive", payload)
}
