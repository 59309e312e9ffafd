package azuretest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Permissions answers Microsoft.Authorization's "Permissions - List For
// Resource Group" (GET .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions)
// with one role's Actions and NotActions, or with Status when it is set (e.g.
// 403 for an identity that may not read its permissions), and hands every
// other request to Next (the servers fake). It is safe for concurrent use.
type Permissions struct {
	Next       policy.Transporter
	Actions    []string
	NotActions []string
	Status     int

	calls atomic.Int64
}

// Calls returns how many requests it answered.
func (p *Permissions) Calls() int { return int(p.calls.Load()) }

// Do answers the permissions route or passes the request on.
func (p *Permissions) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(strings.ToLower(req.URL.Path), "/providers/microsoft.authorization/permissions") {
		return p.Next.Do(req)
	}
	p.calls.Add(1)
	status, body := http.StatusOK, []byte(nil)
	if p.Status != 0 && p.Status != http.StatusOK {
		status = p.Status
		body, _ = json.Marshal(map[string]any{"error": map[string]string{"code": "AuthorizationFailed", "message": "The client does not have authorization to perform action 'Microsoft.Authorization/permissions/read'."}})
	} else {
		body, _ = json.Marshal(map[string]any{"value": []map[string]any{{
			"actions": orEmpty(p.Actions), "notActions": orEmpty(p.NotActions), "dataActions": []string{}, "notDataActions": []string{},
		}}})
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: req,
		Header: http.Header{"Content-Type": []string{"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(body)),
	}, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
