// Package kube is drbot's Kubernetes adapter: it reads and scales deployments
// through client-go, the way `kubectl scale` does, and waits for the rollout.
package kube

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drbot-dev/drbot/runbook"
)

// Defaults for Options fields left zero.
const (
	DefaultPollInterval   = 2 * time.Second
	DefaultRolloutTimeout = 10 * time.Minute
	// DefaultRequestTimeout bounds one API request, so a hung connection
	// cannot hold a step until its whole rollout timeout runs out.
	DefaultRequestTimeout = 30 * time.Second
)

// userAgent names drbot in the API server's audit log.
const userAgent = "drbot"

// Options configures a Client.
type Options struct {
	// Kubeconfig is the path of a kubeconfig file (or several, joined as in
	// $KUBECONFIG). Empty means the in-cluster service account config, or
	// ~/.kube/config if Context is set.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means the file's
	// current context. One Client per environment lets each use its own.
	Context string
	// Logger receives the adapter's logs; nil means no logs.
	Logger *zap.Logger
	// PollInterval is how often a rollout's status is read while waiting.
	PollInterval time.Duration
	// RolloutTimeout bounds the wait for a rollout to reach its target.
	RolloutTimeout time.Duration
}

// Client reads and scales deployments in one cluster (one kubeconfig context).
type Client struct {
	cs             kubernetes.Interface
	log            *zap.Logger
	pollInterval   time.Duration
	rolloutTimeout time.Duration
}

// New connects to the cluster that opts names: a kubeconfig and context, or
// the in-cluster config when no kubeconfig is given. It does not call the
// API server; the first action does.
func New(opts Options) (*Client, error) {
	cfg, err := restConfig(opts.Kubeconfig, opts.Context)
	if err != nil {
		return nil, err
	}
	return NewForConfig(cfg, opts)
}

// NewForConfig builds a Client from a REST config; opts.Kubeconfig and
// opts.Context are ignored. Tests use it to wrap the transport.
func NewForConfig(cfg *rest.Config, opts Options) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = userAgent
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRequestTimeout
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return NewForClientset(cs, opts), nil
}

// NewForClientset builds a Client on an existing clientset, e.g. client-go's
// fake in unit tests; opts.Kubeconfig and opts.Context are ignored.
func NewForClientset(cs kubernetes.Interface, opts Options) *Client {
	c := &Client{
		cs:             cs,
		log:            opts.Logger,
		pollInterval:   opts.PollInterval,
		rolloutTimeout: opts.RolloutTimeout,
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("kube")
	if c.pollInterval <= 0 {
		c.pollInterval = DefaultPollInterval
	}
	if c.rolloutTimeout <= 0 {
		c.rolloutTimeout = DefaultRolloutTimeout
	}
	return c
}

// restConfig loads kubeconfig's context (a context without a kubeconfig
// means kubectl's default file, ~/.kube/config), or the in-cluster config
// when neither is given.
func restConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" && context != "" {
		kubeconfig = clientcmd.RecommendedHomeFile
	}
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("no kubeconfig given and not running in a cluster; set KUBECONFIG: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
		return cfg, nil
	}
	// One file must exist; in a list, as in $KUBECONFIG, missing ones are skipped.
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(kubeconfig)}
	if len(rules.Precedence) == 1 {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		if context != "" {
			return nil, fmt.Errorf("kubeconfig %s, context %q: %w", kubeconfig, context, err)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Actions returns the action kinds this Client implements, for the engine's
// registry: kubernetes.scale and kubernetes.image.
func (c *Client) Actions() runbook.Registry {
	return runbook.Registry{runbook.KindScale: &ScaleAction{c: c}, runbook.KindImage: &ImageAction{c: c}}
}

// Deployment is a deployment's name and replica counts, as `drbot plan`
// shows them.
type Deployment struct {
	Name          string
	Replicas      int // desired (spec)
	ReadyReplicas int
}

// ListDeployments returns the deployments in namespace ns, sorted by name.
func (c *Client) ListDeployments(ctx context.Context, ns string) ([]Deployment, error) {
	list, err := c.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		o := op{verb: "list", resource: "deployments", namespace: ns}
		return nil, o.apiError(ctx, "list deployments in "+ns, err)
	}
	out := make([]Deployment, 0, len(list.Items))
	for _, d := range list.Items {
		out = append(out, Deployment{
			Name:          d.Name,
			Replicas:      int(desired(&d)),
			ReadyReplicas: int(d.Status.ReadyReplicas),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
