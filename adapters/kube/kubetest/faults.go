package kubetest

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Faults are failures a FaultProxy injects in front of the real API server,
// drawn from Seed so a failing run can be replayed. Shares are of all
// requests, except Lost and Conflicts, which are of writes.
type Faults struct {
	Seed uint64
	// Unavailable: answered 503 ServiceUnavailable, not forwarded.
	Unavailable float64
	// Timeouts: answered 504 Timeout ("the request did not complete"), not
	// forwarded.
	Timeouts float64
	// Lost: a write forwarded and carried out, its answer replaced by a 503
	// (the API server acted; drbot cannot know).
	Lost float64
	// Conflicts: a write answered 409 Conflict, as when someone else changed
	// the object first; not forwarded.
	Conflicts float64
}

// Fault kinds FaultProxy counts.
const (
	FaultUnavailable = "503"
	FaultTimeout     = "504 timeout"
	FaultLost        = "handled, answer lost"
	FaultConflict    = "409 conflict"
)

// FaultProxy is an HTTP proxy to a real API server that injects Faults.
type FaultProxy struct {
	// Kubeconfig is a kubeconfig file whose context goes through the proxy
	// (with the original kubeconfig's identity).
	Kubeconfig string

	mu       sync.Mutex
	rng      *rand.Rand
	faults   Faults
	injected map[string]int
	writes   int
}

// NewFaultProxy starts a proxy to the API server of the kubeconfig at path,
// acting as that kubeconfig's user; it stops when the test ends.
func NewFaultProxy(t testing.TB, path string, f Faults) *FaultProxy {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	upstream, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatalf("API server URL %q: %v", cfg.Host, err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatalf("transport for %s: %v", path, err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Header.Del("Authorization") // the transport speaks for the kubeconfig's user
		},
		Transport:     transport,
		FlushInterval: -1,
	}
	p := &FaultProxy{rng: rand.New(rand.NewPCG(f.Seed, 0x6b75)), faults: f, injected: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, proxy) }))
	t.Cleanup(srv.Close)

	kc := clientcmdapi.NewConfig()
	kc.Clusters["faulty"] = &clientcmdapi.Cluster{Server: srv.URL}
	kc.AuthInfos["through-proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["faulty"] = &clientcmdapi.Context{Cluster: "faulty", AuthInfo: "through-proxy"}
	kc.CurrentContext = "faulty"
	p.Kubeconfig = filepath.Join(t.TempDir(), "faulty.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p.Kubeconfig); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return p
}

// Injected counts the faults injected so far by kind.
func (p *FaultProxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.injected))
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Writes counts the writes that reached the API server.
func (p *FaultProxy) Writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes
}

// draw picks the fault for a request, or "".
func (p *FaultProxy) draw(write bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	x := p.rng.Float64()
	kind := ""
	switch {
	case x < f.Unavailable:
		kind = FaultUnavailable
	case x < f.Unavailable+f.Timeouts:
		kind = FaultTimeout
	case write && x < f.Unavailable+f.Timeouts+f.Lost:
		kind = FaultLost
	case write && x < f.Unavailable+f.Timeouts+f.Lost+f.Conflicts:
		kind = FaultConflict
	}
	if kind != "" {
		p.injected[kind]++
	}
	if write && kind != FaultUnavailable && kind != FaultTimeout && kind != FaultConflict {
		p.writes++
	}
	return kind
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request, proxy *httputil.ReverseProxy) {
	// Watches stream; faults on them would only test client-go.
	if r.URL.Query().Get("watch") == "true" {
		proxy.ServeHTTP(w, r)
		return
	}
	switch p.draw(r.Method != http.MethodGet && r.Method != http.MethodHead) {
	case FaultUnavailable:
		status(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the server is currently unable to handle the request (injected)")
	case FaultTimeout:
		status(w, http.StatusGatewayTimeout, "Timeout", "the request did not complete within the allowed duration (injected)")
	case FaultConflict:
		status(w, http.StatusConflict, "Conflict", "the object has been modified; please apply your changes to the latest version and try again (injected)")
	case FaultLost:
		proxy.ServeHTTP(httptest.NewRecorder(), r)
		status(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the server is currently unable to handle the request (injected after the request was carried out)")
	default:
		proxy.ServeHTTP(w, r)
	}
}

// status answers a Kubernetes Status, as the API server words its errors.
func status(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": message, "reason": reason, "code": code,
	})
}
