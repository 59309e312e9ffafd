package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/drbot-dev/drbot/runbook"
)

// explainedError gives an Azure error a message a person can act on (the
// SDK's own is a page of response dump); errors.As still finds the
// *azcore.ResponseError beneath.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// op is one Azure call drbot makes, with the permission it needs, so a
// refusal says what to grant and where.
type op struct {
	what       string // e.g. "read server x in resource group y"
	permission string // an Azure RBAC action or role
	scope      string // where it must be granted, e.g. "resource group y"
}

// Permissions of the calls (Azure RBAC actions; see the package doc).
const (
	permServerRead   = "Microsoft.DBforPostgreSQL/flexibleServers/read"
	permServerDelete = "Microsoft.DBforPostgreSQL/flexibleServers/delete"
	permBlobRead     = "the Storage Blob Data Reader role (Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read)"
)

// apiError classifies err from the call o: a refusal of drbot's identity
// says which permission to grant, a transient failure (408, 429, 5xx or a
// broken connection, still failing after azcore's own retries) is marked
// runbook.Retryable, anything else says what Azure answered. Once ctx is
// done nothing is retryable: the step was cancelled or timed out as a whole.
func (c *Client) apiError(ctx context.Context, o op, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", o.what, err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if isNetwork(err) {
			return runbook.Retryable(fmt.Errorf("%s: %w", o.what, err))
		}
		return fmt.Errorf("%s: %w", o.what, err)
	}
	answer := fmt.Sprintf("%d %s", re.StatusCode, errorCode(re))
	switch {
	case re.StatusCode == http.StatusForbidden:
		return &explainedError{err: err, msg: fmt.Sprintf("forbidden: Azure refused drbot's identity to %s (%s); grant it %s on %s",
			o.what, answer, o.permission, o.scope)}
	case re.StatusCode == http.StatusUnauthorized:
		return &explainedError{err: err, msg: fmt.Sprintf("unauthorized: Azure did not accept drbot's token to %s (%s); check the workload or managed identity (AZURE_CLIENT_ID, AZURE_TENANT_ID)",
			o.what, answer)}
	case transientStatus(re.StatusCode):
		return runbook.Retryable(&explainedError{err: err, msg: fmt.Sprintf("%s: Azure answered %s, still after %d tries",
			o.what, answer, c.tries)})
	}
	return &explainedError{err: err, msg: fmt.Sprintf("%s: Azure answered %s", o.what, answer)}
}

// isNotFound reports whether Azure answered 404: the resource, its resource
// group or its container does not exist.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// errorCode is the service's error code, else the status text.
func errorCode(re *azcore.ResponseError) string {
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	return http.StatusText(re.StatusCode)
}

// transientStatus lists the answers azcore itself retries (policy.RetryOptions'
// default StatusCodes): worth another try later.
func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isNetwork reports a connection that failed or broke.
func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
