package kube

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Router sends each step of a kubernetes kind to the cluster of its
// environment's kube_context (the step's "context" parameter), connecting to
// each cluster once, on first use.
type Router struct {
	kubeconfig string
	log        *zap.Logger

	mu      sync.Mutex
	clients map[string]*Client
}

// NewRouter returns a Router over the contexts of kubeconfig ("" means the
// in-cluster config or ~/.kube/config).
func NewRouter(kubeconfig string, log *zap.Logger) *Router {
	return &Router{kubeconfig: kubeconfig, log: log, clients: map[string]*Client{}}
}

// Actions returns every kubernetes kind, routed by context.
func (r *Router) Actions() runbook.Registry {
	reg := runbook.Registry{}
	for kind := range (&Client{}).Actions() {
		reg[kind] = routed{r: r, kind: kind}
	}
	return reg
}

func (r *Router) client(name string) (*Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[name]; ok {
		return c, nil
	}
	c, err := New(Options{Kubeconfig: r.kubeconfig, Context: name, Logger: r.log})
	if err != nil {
		return nil, fmt.Errorf("kubernetes context %q: %w", name, err)
	}
	r.clients[name] = c
	return c, nil
}

// routed is one kind's action on the cluster its step names.
type routed struct {
	r    *Router
	kind string
}

var (
	_ runbook.Action   = routed{}
	_ runbook.Observer = routed{}
)

func (a routed) action(p runbook.Params) (runbook.Action, error) {
	c, err := a.r.client(p.StringOr("context", ""))
	if err != nil {
		return nil, err
	}
	return c.Actions()[a.kind], nil
}

func (a routed) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	act, err := a.action(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	return act.Run(ctx, req)
}

// Observe reads what the kind would remember, where it can tell.
func (a routed) Observe(ctx context.Context, req runbook.Request) (any, error) {
	act, err := a.action(req.Params)
	if err != nil {
		return nil, err
	}
	if o, ok := act.(runbook.Observer); ok {
		return o.Observe(ctx, req)
	}
	return nil, nil
}
