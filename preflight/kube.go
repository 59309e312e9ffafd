package preflight

import (
	"context"
	"fmt"
)

// Kube is what the Kubernetes checks read (adapters/kube implements it).
// kubeContext is the kubeconfig context ("" the current one).
type Kube interface {
	// Cluster connects to a context and says which server it reaches.
	Cluster(ctx context.Context, kubeContext string) (server string, err error)
	// Namespace reads a namespace.
	Namespace(ctx context.Context, kubeContext, ns string) (Lookup, error)
	// Deployment reads a deployment.
	Deployment(ctx context.Context, kubeContext, ns, name string) (Lookup, error)
	// Allowed asks the API server whether the identity may do something
	// (a SelfSubjectAccessReview): it creates a review object, changes
	// nothing.
	Allowed(ctx context.Context, kubeContext string, a Access) (Decision, error)
}

// Access is a verb on a resource, as RBAC names it.
type Access struct {
	Namespace   string
	Verb        string
	Group       string
	Resource    string
	Subresource string
}

// String is "update deployments/scale (apps) in bat-staging".
func (a Access) String() string {
	r := a.Resource
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Group != "" {
		r += " (" + a.Group + ")"
	}
	return fmt.Sprintf("%s %s in %s", a.Verb, r, a.Namespace)
}

// Decision is the API server's answer.
type Decision struct {
	Allowed bool
	Reason  string
}

// KubeTarget is what the runbooks do on Kubernetes for one environment.
type KubeTarget struct {
	Context     string
	ContextKey  string // drbot.yaml key of kube_context
	Namespace   string
	Deployments []string
	// Key is the drbot.yaml key of the environment (namespace, deployments).
	Key string
}

// scaleAccess is what drbot's scale steps need: `kubectl scale` reads and
// updates the scale subresource (deploy/kubernetes.yaml grants it).
var scaleAccess = []Access{
	{Verb: "get", Group: "apps", Resource: "deployments", Subresource: "scale"},
	{Verb: "update", Group: "apps", Resource: "deployments", Subresource: "scale"},
}

func checkKube(ctx context.Context, k Kube, t KubeTarget) []Check {
	var out []Check
	add := func(name string, st Status, detail, fix string) {
		out = append(out, Check{Family: FamilyKube, Name: name, Status: st, Detail: detail, Fix: fix})
	}
	ctxName := t.Context
	if ctxName == "" {
		ctxName = "(current)"
	}
	server, err := k.Cluster(ctx, t.Context)
	if err != nil {
		add("context "+ctxName, Fail, err.Error(), fmt.Sprintf("check %s in drbot.yaml and KUBECONFIG", t.ContextKey))
		return out
	}
	add("context "+ctxName, OK, "reaches "+server, "")

	ns, err := k.Namespace(ctx, t.Context, t.Namespace)
	switch {
	case err != nil:
		add("namespace "+t.Namespace, Fail, err.Error(), "")
	case ns == Forbidden:
		add("namespace "+t.Namespace, Skip, "the identity may not get namespaces (drbot does not need to); the deployments below show whether it exists", "")
	case ns == Missing:
		add("namespace "+t.Namespace, Fail, "not found in "+ctxName, fmt.Sprintf("check %s.namespace in drbot.yaml", t.Key))
	default:
		add("namespace "+t.Namespace, OK, "found", "")
	}
	for _, d := range t.Deployments {
		look, err := k.Deployment(ctx, t.Context, t.Namespace, d)
		name := "deployment " + d
		switch {
		case err != nil:
			add(name, Fail, err.Error(), "")
		case look == Forbidden:
			add(name, Fail, fmt.Sprintf("the identity may not get deployments in %s", t.Namespace),
				fmt.Sprintf("grant get on deployments (apps) in %s (deploy/kubernetes.yaml has the role)", t.Namespace))
		case look == Missing:
			add(name, Fail, fmt.Sprintf("not found in %s", t.Namespace), fmt.Sprintf("check %s.deployments in drbot.yaml", t.Key))
		default:
			add(name, OK, "found", "")
		}
	}
	for _, a := range scaleAccess {
		a.Namespace = t.Namespace
		dec, err := k.Allowed(ctx, t.Context, a)
		switch {
		case err != nil:
			add("may "+a.Verb+" deployments/scale", Fail, err.Error(), "")
		case !dec.Allowed:
			reason := ""
			if dec.Reason != "" {
				reason = " (" + dec.Reason + ")"
			}
			add("may "+a.Verb+" deployments/scale", Fail, "RBAC does not allow "+a.String()+reason,
				fmt.Sprintf("grant %s on deployments/scale (apps) in %s to drbot's identity (deploy/kubernetes.yaml has the role)", a.Verb, t.Namespace))
		default:
			add("may "+a.Verb+" deployments/scale", OK, "RBAC allows "+a.String(), "")
		}
	}
	return out
}
