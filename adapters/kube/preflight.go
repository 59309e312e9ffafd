package kube

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/preflight"
)

var (
	_ preflight.Kube = (*Router)(nil)
	_ preflight.Kube = (*Client)(nil)
)

// Cluster connects to the context and asks the API server its version.
func (r *Router) Cluster(ctx context.Context, kubeContext string) (string, error) {
	c, err := r.client(kubeContext)
	if err != nil {
		return "", err
	}
	return c.Cluster(ctx, kubeContext)
}

// Namespace reads a namespace in the context's cluster.
func (r *Router) Namespace(ctx context.Context, kubeContext, ns string) (preflight.Lookup, error) {
	c, err := r.client(kubeContext)
	if err != nil {
		return preflight.Missing, err
	}
	return c.Namespace(ctx, kubeContext, ns)
}

// Deployment reads a deployment in the context's cluster.
func (r *Router) Deployment(ctx context.Context, kubeContext, ns, name string) (preflight.Lookup, error) {
	c, err := r.client(kubeContext)
	if err != nil {
		return preflight.Missing, err
	}
	return c.Deployment(ctx, kubeContext, ns, name)
}

// Allowed asks the context's cluster whether drbot's identity may do a.
func (r *Router) Allowed(ctx context.Context, kubeContext string, a preflight.Access) (preflight.Decision, error) {
	c, err := r.client(kubeContext)
	if err != nil {
		return preflight.Decision{}, err
	}
	return c.Allowed(ctx, kubeContext, a)
}

// Cluster asks the API server its version (GET /version, allowed to every
// identity); the context was chosen when c was built.
func (c *Client) Cluster(ctx context.Context, _ string) (string, error) {
	v, err := c.cs.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("reach the API server: %w", err)
	}
	return "Kubernetes " + v.GitVersion, nil
}

// Namespace reads a namespace; Forbidden when the identity may not (drbot
// needs no rights on namespaces).
func (c *Client) Namespace(ctx context.Context, _ string, ns string) (preflight.Lookup, error) {
	_, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return lookupOf(err, fmt.Sprintf("get namespace %s", ns))
}

// Deployment reads a deployment.
func (c *Client) Deployment(ctx context.Context, _ string, ns, name string) (preflight.Lookup, error) {
	_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	return lookupOf(err, fmt.Sprintf("get deployment %s/%s", ns, name))
}

// Allowed creates a SelfSubjectAccessReview: the API server answers whether
// the identity drbot runs as may do a. It stores nothing and changes nothing.
func (c *Client) Allowed(ctx context.Context, _ string, a preflight.Access) (preflight.Decision, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource,
		},
	}}
	res, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return preflight.Decision{}, fmt.Errorf("ask whether drbot may %s: %w", a, err)
	}
	reason := res.Status.Reason
	if res.Status.EvaluationError != "" {
		reason += " " + res.Status.EvaluationError
	}
	return preflight.Decision{Allowed: res.Status.Allowed, Reason: reason}, nil
}

func lookupOf(err error, what string) (preflight.Lookup, error) {
	switch {
	case err == nil:
		return preflight.Found, nil
	case apierrors.IsNotFound(err):
		return preflight.Missing, nil
	case apierrors.IsForbidden(err):
		return preflight.Forbidden, nil
	}
	return preflight.Missing, fmt.Errorf("%s: %w", what, err)
}
