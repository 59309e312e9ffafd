package bot

import "sync"

// pool bounds the work handed off by the receive loop. The loop reserves a
// slot before it acks, so it can say "busy" in the ack instead of queueing
// without bound; it never blocks.
type pool struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

func newPool(n int) *pool { return &pool{slots: make(chan struct{}, n)} }

// acquire reserves a slot, or reports false when all are taken.
func (p *pool) acquire() bool {
	select {
	case p.slots <- struct{}{}:
		p.wg.Add(1)
		return true
	default:
		return false
	}
}

// run runs f in the reserved slot and frees it after.
func (p *pool) run(f func()) {
	go func() {
		defer func() {
			<-p.slots
			p.wg.Done()
		}()
		f()
	}()
}

// wait waits for all work to finish.
func (p *pool) wait() { p.wg.Wait() }
