package githubtest

import (
	"context"
	"sync"
	"time"
)

// Epoch is where a Clock starts by default: a fixed time in the past. The
// rate-limit resets the server announces are then in the past of the wall
// clock too, so go-github's own rate-limit memory — which reads the wall
// clock, not an injected one — never holds back a request after a simulated
// reset.
var Epoch = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// Clock is a fake clock shared by the server and the client under test. Sleep
// returns at once and moves the time on, so a ten-minute workflow run is
// followed in milliseconds. It implements the adapter's Clock. It is safe for
// concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// NewClock returns a clock at start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock on by d and records the wait, unless ctx has ended.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// Advance moves the clock on by d without recording a wait.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Slept returns every wait so far, in order.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}
