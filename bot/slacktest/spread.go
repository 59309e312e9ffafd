package slacktest

// Spread makes the fake play Slack with several apps connected at once
// (replicas of one app, each with its own socket-mode connection): a new
// connection does not close the others, and envelopes go to the live
// connections in turn, as Slack spreads them. A Redeliver then usually
// reaches another connection than the first delivery, as Slack's retries
// may.
func Spread() Option { return func(s *Server) { s.spread = true } }

// addLive records a new connection; without Spread it replaces the current
// one, which the caller closes. Called with s.mu held.
func (s *Server) addLive(c *wsConn) (old *wsConn) {
	old = s.conn
	s.conn = c
	if !s.spread {
		return old
	}
	s.live = append(s.live, c)
	return nil
}

// removeLive forgets a closed connection. Called with s.mu held.
func (s *Server) removeLive(c *wsConn) {
	for i, l := range s.live {
		if l == c {
			s.live = append(s.live[:i], s.live[i+1:]...)
			break
		}
	}
	if s.conn == c {
		s.conn = nil
		if n := len(s.live); n > 0 {
			s.conn = s.live[n-1]
		}
	}
}

// pick is the connection the next envelope goes to. Called with s.mu held.
func (s *Server) pick() *wsConn {
	if !s.spread || len(s.live) == 0 {
		return s.conn
	}
	s.turn++
	return s.live[s.turn%len(s.live)]
}

// LiveConnections counts the sockets open now (with Spread, one per
// connected replica).
func (s *Server) LiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.spread {
		if s.conn != nil {
			return 1
		}
		return 0
	}
	return len(s.live)
}
