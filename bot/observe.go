package bot

import (
	"time"

	"github.com/slack-go/slack/socketmode"
)

// Observer is told what the socket-mode loop sees, for metrics: envelopes
// by type, how long each took to ack, clicks not acted on and why, and the
// connection going up and down. Its methods are called on the receive loop
// and workers, so they must be quick and safe for concurrent use.
type Observer interface {
	// Envelope counts a Slack envelope of type typ (slash_commands,
	// interactive, events_api, ...).
	Envelope(typ string)
	// Acked records the time from receiving an envelope to its ack.
	Acked(typ string, d time.Duration)
	// ClickRefused counts a click drbot did not act on, by reason (see the
	// Refused* constants).
	ClickRefused(reason string)
	// Connected reports the socket connection up (true) or down (false).
	Connected(up bool)
}

// Reasons a click is not acted on, for Observer.ClickRefused.
const (
	RefusedRedelivery    = "redelivery"     // Slack sent the envelope again; handled once
	RefusedQueueFull     = "queue_full"     // left unacked for Slack to redeliver
	RefusedUnknownButton = "unknown_button" // a value drbot cannot decode
	RefusedByEngine      = "refused"        // not allowed, stale or already running: the user was told why
)

// nopObserver is the Observer of a bot without metrics.
type nopObserver struct{}

func (nopObserver) Envelope(string)             {}
func (nopObserver) Acked(string, time.Duration) {}
func (nopObserver) ClickRefused(string)         {}
func (nopObserver) Connected(bool)              {}

// Connected reports whether the socket-mode connection is up: set when
// slack-go reports it connected, cleared when it reconnects, fails to
// connect or Slack asks it to disconnect. /readyz reads it.
func (b *Bot) Connected() bool { return b.connected.Load() }

// observeConnection follows the socket's state from the loop's events.
func (b *Bot) observeConnection(t socketmode.EventType) {
	switch t {
	case socketmode.EventTypeConnected:
		b.connected.Store(true)
		b.opts.Observer.Connected(true)
	case socketmode.EventTypeConnecting, socketmode.EventTypeConnectionError, socketmode.EventTypeDisconnect, socketmode.EventTypeInvalidAuth:
		if b.connected.Swap(false) {
			b.opts.Observer.Connected(false)
		}
	}
}
