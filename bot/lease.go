package bot

import (
	"context"

	"go.uber.org/zap"
)

// Holder is implemented by an outbox that replicas share (PostgreSQL): Due
// leases the messages it returns to this replica, and Hold renews the
// lease of one right before it is sent. false means another replica has
// it now (this one was too slow, its lease ended), and it must not be sent
// twice.
type Holder interface {
	Hold(ctx context.Context, id int64) (bool, error)
}

// held reports whether this replica may send m now. Once a message of a
// run is lost, the run's later messages in the batch are left too, so that
// they keep their order behind it; lost is the batch's record of that.
func (s *sender) held(ctx context.Context, m OutboxMessage, lost map[string]bool) bool {
	h, ok := s.b.outbox.(Holder)
	if !ok {
		return true
	}
	if m.RunID != "" && lost[m.RunID] {
		return false
	}
	held, err := h.Hold(ctx, m.ID)
	if err != nil {
		if ctx.Err() == nil {
			s.b.log.Warn("hold outbox message", zap.Int64("outbox_id", m.ID), zap.String("run_id", m.RunID), zap.Error(err))
		}
		held = false
	}
	if !held {
		lost[m.RunID] = true
	}
	return held
}
