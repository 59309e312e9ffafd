// Package azuretest holds the Azure stand-ins of drbot's tests: a stateful
// set of Postgres flexible servers served through the SDK's own fake
// (armpostgresqlflexibleservers/v5/fake, plugged into the client's
// transport), a transport that injects throttling and server errors, and
// the Azurite blob service that scripts/test.sh starts.
package azuretest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5/fake"
)

// Subscription is the subscription id the tests use.
const Subscription = "00000000-0000-0000-0000-0000000000d1"

// Server is one flexible server of the fake. States, when set, are the
// states successive reads see (the last one stays), as a server being
// created goes Provisioning → Ready.
type Server struct {
	State    armpostgresqlflexibleservers.ServerState
	States   []armpostgresqlflexibleservers.ServerState
	Version  string
	Earliest time.Time // earliest restore point; zero: Azure reports none
	// AppearAfter makes the server answer 404 to that many reads first (a
	// PTR copy the workflow has yet to create).
	AppearAfter int
}

// Servers is a stateful set of flexible servers behind the SDK's fake
// ServersServer: Get reads them (404 ResourceNotFound for an unknown one),
// BeginDelete answers 202 (a non-terminal response first, as the real
// client accepts only 202 or 204 to begin with) and then removes the server.
type Servers struct {
	mu      sync.Mutex
	servers map[string]*Server // by lower-case "rg/name"
	reads   map[string]int
	calls   []string
	// DeletePolls is how many non-terminal 202s a deletion answers before
	// it ends (default 1).
	DeletePolls int
}

// NewServers returns an empty set.
func NewServers() *Servers {
	return &Servers{servers: map[string]*Server{}, reads: map[string]int{}, DeletePolls: 1}
}

func key(rg, name string) string { return strings.ToLower(rg + "/" + name) }

// Put adds or replaces a server.
func (s *Servers) Put(rg, name string, srv Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers[key(rg, name)] = &srv
	delete(s.reads, key(rg, name))
}

// Exists reports whether the server is there (deletions that ended removed it).
func (s *Servers) Exists(rg, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.servers[key(rg, name)]
	return ok
}

// Calls returns the calls the fake answered, e.g. "get rg/name",
// "delete rg/name" (one per deletion started, not per poll).
func (s *Servers) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Count returns how many calls start with prefix ("get ", "delete rg/x").
func (s *Servers) Count(prefix string) int {
	n := 0
	for _, c := range s.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// Fake is the SDK fake server backed by s.
func (s *Servers) Fake() *fake.ServersServer {
	return &fake.ServersServer{Get: s.get, BeginDelete: s.beginDelete}
}

func (s *Servers) get(_ context.Context, rg, name string, _ *armpostgresqlflexibleservers.ServersClientGetOptions,
) (resp azfake.Responder[armpostgresqlflexibleservers.ServersClientGetResponse], errResp azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(rg, name)
	s.calls = append(s.calls, "get "+k)
	srv, ok := s.servers[k]
	n := s.reads[k]
	s.reads[k]++
	if !ok || n < srv.AppearAfter {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return resp, errResp
	}
	state := srv.State
	if i := n - srv.AppearAfter; len(srv.States) > 0 {
		state = srv.States[min(i, len(srv.States)-1)]
	}
	props := &armpostgresqlflexibleservers.ServerProperties{State: &state}
	if srv.Version != "" {
		v := armpostgresqlflexibleservers.PostgresMajorVersion(srv.Version)
		props.Version = &v
	}
	if !srv.Earliest.IsZero() {
		t := srv.Earliest
		props.Backup = &armpostgresqlflexibleservers.Backup{EarliestRestoreDate: &t}
	}
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DBforPostgreSQL/flexibleServers/%s", Subscription, rg, name)
	loc := "uksouth"
	resp.SetResponse(http.StatusOK, armpostgresqlflexibleservers.ServersClientGetResponse{
		Server: armpostgresqlflexibleservers.Server{ID: &id, Name: &name, Location: &loc, Properties: props},
	}, nil)
	return resp, errResp
}

func (s *Servers) beginDelete(_ context.Context, rg, name string, _ *armpostgresqlflexibleservers.ServersClientBeginDeleteOptions,
) (resp azfake.PollerResponder[armpostgresqlflexibleservers.ServersClientDeleteResponse], errResp azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(rg, name)
	s.calls = append(s.calls, "delete "+k)
	if _, ok := s.servers[k]; !ok {
		resp.SetTerminalResponse(http.StatusNoContent, armpostgresqlflexibleservers.ServersClientDeleteResponse{}, nil)
		return resp, errResp
	}
	delete(s.servers, k)
	for range max(s.DeletePolls, 1) {
		resp.AddNonTerminalResponse(http.StatusAccepted, nil)
	}
	resp.SetTerminalResponse(http.StatusOK, armpostgresqlflexibleservers.ServersClientDeleteResponse{}, nil)
	return resp, errResp
}

// ClientOptions are ARM client options that send every request to servers
// through the SDK fake, after inject (if not nil), with retries 1 ms apart.
func ClientOptions(servers *Servers, inject *Inject) *arm.ClientOptions {
	var tr policy.Transporter = shield{fake.NewServersServerTransport(servers.Fake())}
	if inject != nil {
		inject.next = tr
		tr = inject
	}
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Transport: tr,
		Retry:     policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Second},
	}}
}

// shield hands the SDK fake requests whose context cannot end: the fake
// closes its result channel when a request's context ends while its
// responder runs, and the responder's send then panics (v5.0.0
// dispatchToMethodFake). The client still sees its own context end.
type shield struct{ next policy.Transporter }

func (s shield) Do(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return s.next.Do(req.WithContext(context.WithoutCancel(req.Context())))
}

// Credential is a token credential that hands out a fake token.
func Credential() azcore.TokenCredential { return &azfake.TokenCredential{} }

// Inject answers the first len(Responses) requests itself, in order, then
// passes requests on: throttling and server errors, as ARM sends them.
type Inject struct {
	mu        sync.Mutex
	Responses []Failure
	sent      int
	Requests  int // every request seen, injected or not
	next      policy.Transporter
}

// Failure is one injected error answer.
type Failure struct {
	Status     int
	Code       string // ARM error code, e.g. TooManyRequests
	RetryAfter string // the Retry-After header, if any
}

// Throttled is ARM's 429 with Retry-After in seconds.
func Throttled(retryAfter string) Failure {
	return Failure{Status: http.StatusTooManyRequests, Code: "TooManyRequests", RetryAfter: retryAfter}
}

// Unavailable is a 503.
func Unavailable() Failure {
	return Failure{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}
}

// Do implements policy.Transporter.
func (in *Inject) Do(req *http.Request) (*http.Response, error) {
	in.mu.Lock()
	in.Requests++
	var f *Failure
	if in.sent < len(in.Responses) {
		f = &in.Responses[in.sent]
		in.sent++
	}
	in.mu.Unlock()
	if f == nil {
		return in.next.Do(req)
	}
	body := fmt.Sprintf(`{"error":{"code":%q,"message":"injected by the test"}}`, f.Code)
	h := http.Header{"Content-Type": {"application/json"}, "X-Ms-Error-Code": {f.Code}}
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	return &http.Response{
		StatusCode: f.Status, Status: fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status)),
		Header: h, Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: req, ContentLength: int64(len(body)),
	}, nil
}

// Seen returns how many requests reached the transport.
func (in *Inject) Seen() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.Requests
}
