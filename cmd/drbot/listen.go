package main

import (
	"context"
	"errors"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/health"
	"github.com/drbot-dev/drbot/metrics"
	"github.com/drbot-dev/drbot/store"
)

// probes is what the health listener reads as serve (or rehearse) comes
// up: each part is set once it exists, so /readyz says which is missing.
type probes struct {
	config  atomic.Bool
	store   atomic.Pointer[store.Store]
	slack   atomic.Pointer[bot.Bot]
	metrics *metrics.Metrics
}

func newProbes() *probes {
	p := &probes{}
	p.metrics = metrics.New(func(ctx context.Context) (metrics.Stats, error) {
		st := p.store.Load()
		if st == nil {
			return metrics.Stats{}, errors.New("store not open yet")
		}
		s, err := st.Stats(ctx)
		return metrics.Stats(s), err
	})
	return p
}

// checks are the readiness conditions; withSlack adds the socket's (serve).
func (p *probes) checks(withSlack bool) []health.Check {
	cs := []health.Check{
		{Name: "config", Fn: func(context.Context) error {
			if !p.config.Load() {
				return errors.New("not loaded")
			}
			return nil
		}},
		{Name: "store", Fn: func(ctx context.Context) error {
			st := p.store.Load()
			if st == nil {
				return errors.New("not open")
			}
			return st.Ping(ctx)
		}},
	}
	if withSlack {
		cs = append(cs, health.Check{Name: "slack", Fn: func(context.Context) error {
			b := p.slack.Load()
			if b == nil || !b.Connected() {
				return errors.New("socket mode not connected")
			}
			return nil
		}})
	}
	return cs
}

// listen starts the health and metrics listener on addr ("" is off) and
// closes it with the app.
func (a *app) listen(addr string, p *probes, withSlack bool, log *zap.Logger) error {
	if addr == "" {
		return nil
	}
	srv, err := health.Listen(addr, health.Handler(p.checks(withSlack), p.metrics.Handler()), log.Named("health"))
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	a.closers = append(a.closers, func() { _ = srv.Close() })
	return nil
}
