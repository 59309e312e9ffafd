package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// upgrader accepts any Origin: slack-go dials with Origin https://api.slack.com.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket is the socket-mode websocket: hello, pings, envelopes out and
// acks in.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := &wsConn{c: c}
	s.mu.Lock()
	old := s.addLive(conn)
	s.conns++
	n := s.conns
	if n == 1 {
		close(s.connected)
	}
	s.mu.Unlock()
	if old != nil {
		_ = old.c.Close()
	}
	hello := map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": AppID},
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600}}
	if conn.write(hello) != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	defer func() {
		s.mu.Lock()
		if s.spread {
			s.removeLive(conn)
		}
		s.mu.Unlock()
	}()
	go s.ping(conn, done)
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := c.ReadJSON(&ack); err != nil {
			return
		}
		s.acked(ack.EnvelopeID, ack.Payload)
	}
}

func (c *wsConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.WriteJSON(v)
}

// ping pings the client at once and then every interval.
func (s *Server) ping(c *wsConn, done chan struct{}) {
	t := time.NewTicker(s.pingInterval)
	defer t.Stop()
	for {
		if err := c.c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

func (s *Server) acked(id string, payload json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, found := s.waiting[id]
	if !found {
		s.acks = append(s.acks, Ack{EnvelopeID: id, Payload: payload})
		return
	}
	delete(s.waiting, id)
	a := Ack{EnvelopeID: id, Type: p.typ, Payload: payload, Latency: time.Since(p.sent)}
	s.acks = append(s.acks, a)
	p.done <- a
}

// WaitConnected waits until the app has connected the socket.
func (s *Server) WaitConnected(ctx context.Context) error {
	select {
	case <-s.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slacktest: the app never connected: %w", ctx.Err())
	}
}

// Connections counts the socket connections so far (reconnects included).
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Drop closes the current socket, as Slack does now and then; slack-go
// reconnects.
func (s *Server) Drop() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	if c != nil {
		s.injected[FaultDrop]++
	}
	s.mu.Unlock()
	if c != nil {
		_ = c.c.Close()
	}
}

// envelope is an envelope sent, kept for Redeliver.
type envelope struct {
	typ     string
	payload any
	retries int
}

// ErrNoAck is returned when the app does not ack in time.
var ErrNoAck = errors.New("slacktest: no ack")

// Send pushes an envelope and waits for its ack (Slack waits 3 seconds).
func (s *Server) Send(ctx context.Context, typ string, payload any) (Ack, error) {
	s.mu.Lock()
	id := s.nextID("env-")
	s.sent[id] = &envelope{typ: typ, payload: payload}
	s.mu.Unlock()
	return s.send(ctx, id, "")
}

// Redeliver sends an envelope sent before again, with the same envelope_id,
// retry_attempt one more than the last delivery and reason as retry_reason
// (Slack's are "timeout", "http_error"…), as Slack does when it saw no ack
// in time; it waits for the ack.
func (s *Server) Redeliver(ctx context.Context, envelopeID, reason string) (Ack, error) {
	s.mu.Lock()
	e, found := s.sent[envelopeID]
	if found {
		e.retries++
	}
	s.mu.Unlock()
	if !found {
		return Ack{}, fmt.Errorf("slacktest: no envelope %s was sent", envelopeID)
	}
	return s.send(ctx, envelopeID, reason)
}

// send delivers the envelope id and waits for its ack.
func (s *Server) send(ctx context.Context, id, reason string) (Ack, error) {
	s.mu.Lock()
	c := s.pick()
	e := s.sent[id]
	typ, payload, retries := e.typ, e.payload, e.retries
	p := &pending{typ: typ, done: make(chan Ack, 1)}
	s.waiting[id] = p
	s.mu.Unlock()
	if c == nil {
		return Ack{}, errors.New("slacktest: no socket connected")
	}
	env := map[string]any{"envelope_id": id, "type": typ, "payload": payload,
		"accepts_response_payload": typ != "events_api", "retry_attempt": retries, "retry_reason": reason}
	s.mu.Lock()
	p.sent = time.Now()
	s.mu.Unlock()
	if err := c.write(env); err != nil {
		return Ack{}, fmt.Errorf("slacktest: send %s: %w", typ, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	select {
	case a := <-p.done:
		return a, nil
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("%w for %s %s within 3s", ErrNoAck, typ, id)
	}
}
