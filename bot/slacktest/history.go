package slacktest

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
)

// AddMembers adds users (BotUserID for the app) to a channel, as joining or
// an invitation would.
func (s *Server) AddMembers(channel string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, found := s.channels[channel]; found {
		for _, u := range users {
			if !slices.Contains(c.Members, u) {
				c.Members = append(c.Members, u)
			}
		}
	}
}

// metadataOf reads chat.postMessage's metadata parameter: a JSON object with
// event_type and event_payload, sent as a string in form posts.
func metadataOf(p map[string]any) (json.RawMessage, error) {
	var raw []byte
	switch v := p["metadata"].(type) {
	case nil:
		return nil, nil
	case string:
		raw = []byte(v)
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var m struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.EventType == "" || m.EventPayload == nil {
		return nil, errInvalid
	}
	return json.RawMessage(raw), nil
}

var errInvalid = errors.New("metadata needs event_type and event_payload")

// readable checks that the app may read a channel's messages: it exists and
// the bot is a member (Slack answers not_in_channel otherwise, also for
// public channels).
func (s *Server) readable(channel string) map[string]any {
	c, found := s.channels[channel]
	if !found {
		return slackError("channel_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return slackError("not_in_channel")
	}
	return nil
}

// history answers conversations.history: a channel's top-level messages
// newer than oldest, newest first, paged by cursor; metadata only with
// include_all_metadata, as Slack does.
func (s *Server) history(p map[string]any) map[string]any {
	ch := str(p, "channel")
	if refused := s.readable(ch); refused != nil {
		return refused
	}
	var msgs []*Message
	for _, m := range s.messages {
		if m.Channel == ch && m.ThreadTS == "" && after(m.TS, str(p, "oldest")) {
			msgs = append(msgs, m)
		}
	}
	// Files shared in the channel are messages there too.
	for _, f := range s.files {
		if f.Channel == ch && f.TS != "" && after(f.TS, str(p, "oldest")) {
			msgs = append(msgs, &Message{Channel: ch, TS: f.TS, Text: f.Comment, file: f})
		}
	}
	slices.SortFunc(msgs, func(a, b *Message) int { return compareTS(b.TS, a.TS) }) // newest first
	return page(p, msgs)
}

// compareTS orders two message ts values.
func compareTS(a, b string) int {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return cmp.Compare(x, y)
}

// replies answers conversations.replies: a thread's parent, then its
// replies oldest first, paged by cursor.
func (s *Server) replies(p map[string]any) map[string]any {
	ch, thread := str(p, "channel"), str(p, "ts")
	if refused := s.readable(ch); refused != nil {
		return refused
	}
	parent := s.find(ch, thread)
	if parent == nil || parent.ThreadTS != "" {
		return slackError("thread_not_found")
	}
	msgs := []*Message{parent}
	for _, m := range s.messages {
		if m.Channel == ch && m.ThreadTS == thread && after(m.TS, str(p, "oldest")) {
			msgs = append(msgs, m)
		}
	}
	return page(p, msgs)
}

// after reports whether ts is newer than oldest ("" is the beginning).
func after(ts, oldest string) bool {
	if oldest == "" {
		return true
	}
	a, _ := strconv.ParseFloat(ts, 64)
	b, _ := strconv.ParseFloat(oldest, 64)
	return a > b
}

// page answers one page of msgs: limit (default 100) from the offset the
// cursor holds.
func page(p map[string]any, msgs []*Message) map[string]any {
	limit, _ := strconv.Atoi(str(p, "limit"))
	if limit <= 0 {
		limit = 100
	}
	from, _ := strconv.Atoi(str(p, "cursor"))
	from = min(from, len(msgs))
	to := min(from+limit, len(msgs))
	withMeta := str(p, "include_all_metadata") == "1" || str(p, "include_all_metadata") == "true"
	out := make([]map[string]any, 0, to-from)
	for _, m := range msgs[from:to] {
		j := map[string]any{"type": "message", "user": BotUserID, "ts": m.TS, "text": m.Text}
		if m.ThreadTS != "" {
			j["thread_ts"] = m.ThreadTS
		}
		if withMeta && m.Metadata != nil {
			j["metadata"] = m.Metadata
		}
		if f := m.file; f != nil {
			j["files"] = []map[string]any{{"id": f.ID, "name": f.Name, "title": f.Title}}
		}
		out = append(out, j)
	}
	next := ""
	if to < len(msgs) {
		next = strconv.Itoa(to)
	}
	return ok(map[string]any{"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}})
}

// PostCounts counts the messages and replies in every channel by the value
// of field in their metadata's event_payload, for metadata of eventType;
// messages without it count under "". A count above 1 is a message shown
// twice.
func (s *Server) PostCounts(eventType, field string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.messages {
		var meta struct {
			EventType    string         `json:"event_type"`
			EventPayload map[string]any `json:"event_payload"`
		}
		key := ""
		if json.Unmarshal(m.Metadata, &meta) == nil && meta.EventType == eventType {
			key, _ = meta.EventPayload[field].(string)
		}
		out[key]++
	}
	return out
}
