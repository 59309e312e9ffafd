package slacktest

import (
	"slices"
	"strings"
)

func copyMessage(m *Message) Message {
	c := *m
	c.History = slices.Clone(m.History)
	return c
}

// Messages returns a channel's top-level messages (not thread replies), in
// order, as they are now.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Replies returns the replies in a thread, in order.
func (s *Server) Replies(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel && m.ThreadTS == threadTS {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Message returns one message as it is now.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.find(channel, ts); m != nil {
		return copyMessage(m), true
	}
	return Message{}, false
}

// Ephemerals returns the replies only one user saw, in order.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ephemerals)
}

// Channels returns every channel; Created marks those the app created.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Channel
	for _, c := range s.channels {
		cc := *c
		cc.Members = slices.Clone(c.Members)
		out = append(out, cc)
	}
	slices.SortFunc(out, func(a, b Channel) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Pins returns the pinned message ts values of a channel.
func (s *Server) Pins(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pins[channel])
}

// Views returns the views opened and updated, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.views)
}

// View returns the latest version of a view.
func (s *Server) View(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.views) - 1; i >= 0; i-- {
		if s.views[i].ID == id {
			return s.views[i], true
		}
	}
	return View{}, false
}

// Acks returns every ack so far.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// Calls returns the Web API requests of a method ("" for all), in order.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
