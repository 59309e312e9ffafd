package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

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

// replica is this process's lease owner and lease length when replicas
// share the store (PostgreSQL): owner is unique per process (host, pid and
// a random part), lease is DRBOT_LEASE (a Go duration; default: the
// runbook's and the outbox's own defaults). On SQLite, one replica, owner
// is empty and nothing is leased.
func (a *app) replica(log *zap.Logger) (owner string, lease time.Duration, err error) {
	if a.store.Dialect() != "postgres" {
		return "", 0, nil
	}
	if v := a.getenv("DRBOT_LEASE"); v != "" {
		lease, err = time.ParseDuration(v)
		if err != nil || lease < 100*time.Millisecond {
			return "", 0, &exitError{code: 2, msg: fmt.Sprintf("DRBOT_LEASE=%q: want a duration of at least 100ms, e.g. 15s", v)}
		}
	}
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	log.Info("replica on a shared store: steps and outbox messages are leased", zap.String("owner", owner), zap.Duration("lease", lease))
	return owner, lease, nil
}
