// Package health serves drbot's probes and metrics on a small HTTP
// listener: /healthz (the process answers), /readyz (every readiness check
// passes: socket mode connected, store reachable, config loaded) and
// /metrics (Prometheus).
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Check is one readiness condition: Fn returns nil when it holds, or an
// error saying what is wrong (shown on /readyz, so it must carry no secret).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// checkTimeout bounds each readiness check: kubelet's default probe
// timeout is 1 s, and a hung store read must answer "not ready", not hang.
const checkTimeout = 900 * time.Millisecond

// Handler returns the mux for /healthz, /readyz and, if metrics is not
// nil, /metrics.
func Handler(checks []Check, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		results := run(r.Context(), checks)
		ready := true
		var b strings.Builder
		for i, c := range checks {
			if err := results[i]; err != nil {
				ready = false
				fmt.Fprintf(&b, "%s: %v\n", c.Name, err)
			} else {
				fmt.Fprintf(&b, "%s: ok\n", c.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, b.String())
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// run runs every check at once, each bounded by checkTimeout.
func run(ctx context.Context, checks []Check) []error {
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			errs[i] = c.Fn(cctx)
		})
	}
	wg.Wait()
	return errs
}

// Server is the listener of Handler.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *zap.Logger
}

// Listen binds addr (e.g. ":8080", "127.0.0.1:0") at once, so a port in
// use fails the start, and serves h until Close.
func Listen(addr string, h http.Handler, log *zap.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &Server{ln: ln, log: log, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health listener", zap.Error(err))
		}
	}()
	log.Info("health and metrics listening", zap.String("addr", ln.Addr().String()))
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, letting requests in flight end within a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
