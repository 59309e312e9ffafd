package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/drbot-dev/drbot/runbook"
)

// explainedError gives an API error a message a person can act on; errors.As
// and apierrors.IsNotFound and friends still see the API error beneath.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// op is one API call drbot makes, named as RBAC names it, so a refusal can
// say which permission is missing.
type op struct {
	verb      string // RBAC verb: get, list, update
	resource  string // RBAC resource with subresource: deployments/scale
	namespace string
	name      string // deployment name; empty for a list
}

// apiError classifies err from the call o: a missing deployment or an RBAC
// refusal becomes a self-explaining error, a transient failure is marked
// runbook.Retryable, and anything else is wrapped with what. Once ctx is done
// nothing is retryable: the step was cancelled or timed out as a whole.
func (o op) apiError(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, err)
	case apierrors.IsNotFound(err) && o.name != "":
		return &explainedError{
			msg: fmt.Sprintf("deployment %s/%s not found; check the namespace and deployment names in drbot.yaml", o.namespace, o.name),
			err: err,
		}
	case apierrors.IsForbidden(err):
		return &explainedError{msg: o.forbidden(err), err: err}
	case apierrors.IsUnauthorized(err):
		return &explainedError{
			msg: "unauthorized: the Kubernetes API server did not accept drbot's credentials; check the kubeconfig user or the service account token",
			err: err,
		}
	case isTransient(err):
		return runbook.Retryable(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// forbiddenRE parses the API server's authorization refusal, e.g.
// `User "limited" cannot update resource "deployments/scale" in API group
// "apps" in the namespace "bat-staging"` (k8s.io/apiserver
// endpoints/handlers/responsewriters.forbiddenMessage).
var forbiddenRE = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"`)

// forbidden says which verb on which resource drbot's identity lacks, taken
// from the API server's status where it says so, else from o.
func (o op) forbidden(err error) string {
	verb, resource, group, user := o.verb, o.resource, "apps", ""
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		if m := forbiddenRE.FindStringSubmatch(s.Message); m != nil {
			user, verb, resource, group = m[1], m[2], m[3], m[4]
		} else if d := s.Details; d != nil && d.Kind != "" {
			group = d.Group
		}
	}
	who := "drbot's identity"
	if user != "" {
		who = fmt.Sprintf("drbot's identity %q", user)
	}
	return fmt.Sprintf("forbidden: %s may not %s %s in namespace %s; grant it the %q verb on %q in API group %q",
		who, verb, resource, o.namespace, verb, resource, group)
}

// isTransient reports whether err is worth retrying: API server overload or
// timeouts, an optimistic-lock conflict that outlived our own retries, or a
// connection that broke.
func isTransient(err error) bool {
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsConflict(err) {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
