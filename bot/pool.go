package bot

import "sync"

// queueMax bounds the commands and clicks waiting for a worker. Steps run
// on the engine, not on workers, so a worker is held for milliseconds (a
// claim, a reply); at 200 envelopes/s a queue this long is ten seconds of
// backlog, far more than an incident produces.
const queueMax = 2048

// pool runs the work handed off by the receive loop on at most n goroutines
// at once; more waits in a FIFO queue. The loop reserves a place before it
// acks and never blocks. A place is refused only when queueMax is reached:
// the loop then leaves the envelope unacked, so Slack redelivers it (Slack
// is the durable queue of last resort, and the durable envelope record keeps
// the redelivery from acting twice).
type pool struct {
	mu       sync.Mutex
	workers  int      // goroutines allowed
	running  int      // goroutines started
	reserved int      // places acquired but not yet run
	queue    []func() // waiting, oldest first
	wg       sync.WaitGroup
}

func newPool(n int) *pool { return &pool{workers: n} }

// acquire reserves a place for one run call, or reports false when the
// queue is full.
func (p *pool) acquire() bool { return p.acquireN(1) }

// acquireN reserves n places at once (an envelope's actions), or none.
func (p *pool) acquireN(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserved+len(p.queue)+n > queueMax {
		return false
	}
	p.reserved += n
	p.wg.Add(n)
	return true
}

// release gives back a reserved place that will not be run.
func (p *pool) release() {
	p.mu.Lock()
	p.reserved--
	p.mu.Unlock()
	p.wg.Done()
}

// run runs f in the reserved place: now when a worker is free, else after
// the work queued before it.
func (p *pool) run(f func()) {
	p.mu.Lock()
	p.reserved--
	if p.running >= p.workers {
		p.queue = append(p.queue, f)
		p.mu.Unlock()
		return
	}
	p.running++
	p.mu.Unlock()
	go p.work(f)
}

// work runs f, then whatever is queued, until the queue is empty.
func (p *pool) work(f func()) {
	for f != nil {
		f()
		p.wg.Done()
		p.mu.Lock()
		f = nil
		if len(p.queue) > 0 {
			f = p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
		} else {
			p.running--
		}
		p.mu.Unlock()
	}
}

// wait waits for all work, queued included, to finish.
func (p *pool) wait() { p.wg.Wait() }
