package kube

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/drbot-dev/drbot/runbook"
)

func TestAPIError(t *testing.T) {
	get := op{verb: "get", resource: "deployments/scale", namespace: ns, name: "web"}
	list := op{verb: "list", resource: "deployments", namespace: ns}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		op        op
		ctx       context.Context
		err       error
		want      string
		wantRetry bool
	}{
		{"not found", get, context.Background(), apierrors.NewNotFound(deploymentsGR, "web"),
			"deployment bat-staging/web not found; check the namespace and deployment names in drbot.yaml", false},
		{"list forbidden", list, context.Background(),
			apierrors.NewForbidden(deploymentsGR, "", errors.New(`User "system:serviceaccount:ops:drbot" cannot list resource "deployments" in API group "apps" in the namespace "bat-staging"`)),
			`forbidden: drbot's identity "system:serviceaccount:ops:drbot" may not list deployments in namespace bat-staging; grant it the "list" verb on "deployments" in API group "apps"`, false},
		{"unauthorized", get, context.Background(), apierrors.NewUnauthorized("Unauthorized"),
			"unauthorized: the Kubernetes API server did not accept drbot's credentials", false},
		{"server timeout", get, context.Background(), apierrors.NewServerTimeout(deploymentsGR, "get", 1), "read: The get operation against deployments.apps could not be completed", true},
		{"internal error", get, context.Background(), apierrors.NewInternalError(errors.New("etcdserver: leader changed")), "read: Internal error occurred: etcdserver: leader changed", true},
		{"connection refused", get, context.Background(), refused, "read: dial tcp: connect: connection refused", true},
		{"step cancelled", get, cancelled, apierrors.NewTooManyRequests("slow down", 1), "read: slow down", false},
		{"other", get, context.Background(), apierrors.NewBadRequest("bad"), "read: bad", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op.apiError(tt.ctx, "read", tt.err)
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			if got := runbook.IsRetryable(err); got != tt.wantRetry {
				t.Errorf("IsRetryable = %v, want %v", got, tt.wantRetry)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error does not wrap the API error")
			}
		})
	}
}
