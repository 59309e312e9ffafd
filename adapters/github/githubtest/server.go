// Package githubtest is a fake GitHub REST API for tests, at the wire level:
// an httptest server with state — branch protection review counts, workflow
// runs that advance from queued to completed, their jobs' check-run
// annotations, refs, commits and files — that speaks the endpoints drbot's
// GitHub adapter uses. It mounts the API under /api/v3/ as GitHub Enterprise
// Server does, so a client that builds absolute paths misses it; such
// requests fail the test. Every request is recorded for assertions.
package githubtest

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// apiPrefix is where the fake mounts the API.
const apiPrefix = "/api/v3"

// Config sets up a Server. The zero value accepts any credentials.
type Config struct {
	// Clock drives run progress, token expiry and rate-limit resets; nil
	// means NewClock(Epoch).
	Clock *Clock
	// Token, if set, is the only token API requests may carry.
	Token string
	// App, if set, makes the server a GitHub App host: API requests must
	// carry an installation token it issued in exchange for the app's JWT.
	App *App
	// Login is the token's user (GET /user) and the actor of the runs it
	// dispatches; default "drbot". An app's runs are by "<slug>[bot]".
	Login string
}

// App is a GitHub App the server knows.
type App struct {
	ID             int64
	InstallationID int64
	PublicKey      *rsa.PublicKey // verifies the app's JWTs
	Slug           string
	// Permissions are those of its installation tokens; nil means actions,
	// administration and contents write.
	Permissions map[string]string
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // without the /api/v3 prefix, unescaped
	Query  string
	Header http.Header
	Body   []byte
	Status int // the status the server answered
	// At is the server's clock (skew included) when the request arrived.
	At time.Time
	// Fault names the random fault that answered the request: FaultRefused,
	// FaultLost or FaultRateLimited; "" if none did.
	Fault string
}

// String renders the request as "METHOD /path?query -> status" for test failures.
func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return fmt.Sprintf("%s -> %d", s, r.Status)
}

// Fault makes the server answer matching requests with a canned response
// instead of handling them, e.g. a rate limit.
type Fault struct {
	Method string // "" matches any method
	Path   string // a substring of Request.Path; "" matches any
	Times  int    // how many requests it answers; 0 means 1
	Status int
	Header http.Header
	Body   string
	// Handled makes the server handle the request first (a dispatch starts
	// its run), then answer with the fault: the answer was lost.
	Handled bool
}

// RateLimit is GitHub's primary rate-limit answer: 403 with
// X-RateLimit-Remaining 0 and X-RateLimit-Reset at reset.
func RateLimit(method, path string, reset time.Time) Fault {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Used", "5000")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	return Fault{Method: method, Path: path, Status: http.StatusForbidden, Header: h,
		Body: `{"message":"API rate limit exceeded for installation ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`}
}

// SecondaryRateLimit is a secondary rate-limit answer: 429 with Retry-After.
func SecondaryRateLimit(method, path string, retryAfter time.Duration) Fault {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	return Fault{Method: method, Path: path, Status: http.StatusTooManyRequests, Header: h,
		Body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`}
}

// ServerError is a 502 Bad Gateway, as GitHub answers now and then.
func ServerError(method, path string) Fault {
	return Fault{Method: method, Path: path, Status: http.StatusBadGateway, Body: `{"message":"Server Error"}`}
}

// LostAnswer is a request the server handles but whose answer the client
// gets as a 502: a dispatch that started its run though drbot cannot tell.
func LostAnswer(method, path string) Fault {
	f := ServerError(method, path)
	f.Handled = true
	return f
}

// Random fault kinds, as recorded in Request.Fault and counted by FaultCounts.
const (
	// FaultRefused: a 502 answered instead of handling the request.
	FaultRefused = "refused"
	// FaultLost: the request was handled (a dispatch started its run) but
	// the client got a 502, as when GitHub's front end loses the answer.
	FaultLost = "handled_but_lost"
	// FaultRateLimited: a secondary rate limit (429, or 403 as GitHub also
	// answers) with Retry-After, the request not handled.
	FaultRateLimited = "rate_limited"
)

// Faults injects faults at random into matching requests, drawn from an RNG
// seeded with Seed so that a failing seed replays. Rates are shares of the
// matching requests, in [0, 1].
type Faults struct {
	Seed   uint64
	Method string // "" matches any method
	Path   string // a substring of Request.Path; "" matches any
	// ServerErrors is the share answered 502.
	ServerErrors float64
	// Handled is the share of those 502s answered only after the request
	// was handled ("handled but answer lost").
	Handled float64
	// RateLimits is the share answered with a secondary rate limit, 429 or
	// 403 alike, with Retry-After: RetryAfter (default 2s).
	RateLimits float64
	RetryAfter time.Duration
}

// randomFaults is a Faults plan with its RNG.
type randomFaults struct {
	Faults
	rng *rand.Rand
}

// Server is the fake GitHub. Build it with New.
type Server struct {
	srv   *httptest.Server
	mux   *http.ServeMux
	cfg   Config
	clock *Clock

	mu           sync.Mutex
	repos        map[string]*repo
	runs         map[int64]*run
	nextID       int64
	requests     []Request
	unhandled    []Request
	dispatches   []Dispatch
	issues       []Issue // created by POST /repos/{owner}/{repo}/issues (issues.go)
	faults       []*Fault
	tokens       map[string]time.Time // installation token -> expiry
	exchanges    int
	detailsMode  int // status for dispatches that ask for run details
	pollInterval int // seconds, sent as X-Poll-Interval on run reads
	skew         time.Duration
	random       *randomFaults
	faultCounts  map[string]int
}

// New starts a fake GitHub for the test and stops it at cleanup. The test
// fails if any request reached no route (e.g. an absolute path that skipped
// the /api/v3/ prefix, or a method the fake does not serve, such as the PUT
// that replaces a whole branch protection).
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = NewClock(Epoch)
	}
	if cfg.Login == "" {
		cfg.Login = "drbot"
	}
	s := &Server{
		cfg:         cfg,
		clock:       cfg.Clock,
		repos:       map[string]*repo{},
		runs:        map[int64]*run{},
		nextID:      1000,
		tokens:      map[string]time.Time{},
		detailsMode: http.StatusOK,
		faultCounts: map[string]int{},
	}
	s.routes()
	s.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		s.srv.Close()
		if u := s.Unhandled(); len(u) > 0 {
			t.Errorf("githubtest: requests no route serves: %v", u)
		}
	})
	return s
}

// URL is the API root to give the client, ending in /api/v3/.
func (s *Server) URL() string { return s.srv.URL + apiPrefix + "/" }

// WebURL is the root of the fake's web pages (links in answers).
func (s *Server) WebURL() string { return s.srv.URL + "/" }

// Clock is the server's clock.
func (s *Server) Clock() *Clock { return s.clock }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Inject queues a fault; faults answer in the order they were injected.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// SetFaults injects random faults from now on (a zero Faults stops them).
// Queued faults (Inject) answer first.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RetryAfter <= 0 {
		f.RetryAfter = 2 * time.Second
	}
	s.random = &randomFaults{Faults: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
}

// FaultCounts returns how many requests each kind of random fault answered.
func (s *Server) FaultCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.faultCounts)
}

// SetSkew makes the server's clock run d ahead of the shared clock (behind
// if negative) in what it reports: runs' created_at and the Date header.
func (s *Server) SetSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetNextRunID makes the next run created get id.
func (s *Server) SetNextRunID(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID = id - 1
}

// now is the server's own clock, skew included. Callers hold s.mu.
func (s *Server) now() time.Time { return s.clock.Now().Add(s.skew) }

// SetPollInterval makes run reads carry X-Poll-Interval (0 removes it).
func (s *Server) SetPollInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollInterval = int(d / time.Second)
}

// Requests returns every request so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many requests had the method (any if "") and a path
// containing path.
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, path) {
			n++
		}
	}
	return n
}

// Unhandled returns the requests no route served.
func (s *Server) Unhandled() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.unhandled...)
}

// TokenExchanges returns how many installation tokens the server issued.
func (s *Server) TokenExchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// ServeHTTP records the request, answers injected faults and checks
// credentials before routing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	// Date as GitHub sends it, from the server's clock: clients may read
	// GitHub's time from it (net/http keeps a Date the handler set).
	rec.Header().Set("Date", now.Format(http.TimeFormat))
	req := Request{
		At:     now,
		Method: r.Method,
		Path:   strings.TrimPrefix(r.URL.Path, apiPrefix),
		Query:  r.URL.RawQuery,
		Header: r.Header.Clone(),
		Body:   body,
	}
	routed := true
	defer func() {
		req.Status = rec.status
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, req)
		if !routed || rec.status == http.StatusMethodNotAllowed {
			s.unhandled = append(s.unhandled, req)
		}
	}()

	if !strings.HasPrefix(r.URL.Path, apiPrefix+"/") {
		routed = false
		writeJSON(rec, http.StatusNotFound, msg("Not Found"))
		return
	}
	if !s.authorized(rec, r, req.Path) {
		return
	}
	if f := s.takeFault(req); f != nil {
		if f.Handled {
			s.mux.ServeHTTP(&discard{header: http.Header{}}, r)
		}
		for k, v := range f.Header {
			rec.Header()[k] = v
		}
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(f.Status)
		io.WriteString(rec, f.Body)
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		routed = false
	}
	switch req.Fault = s.drawFault(req); req.Fault {
	case FaultRefused:
		writeJSON(rec, http.StatusBadGateway, msg("Server Error"))
		return
	case FaultLost:
		s.mux.ServeHTTP(&discard{header: http.Header{}}, r)
		writeJSON(rec, http.StatusBadGateway, msg("Server Error"))
		return
	case FaultRateLimited:
		s.writeRateLimit(rec)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// drawFault draws the random fault for r, if any, and counts it.
func (s *Server) drawFault(r Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.random
	if f == nil || (f.Method != "" && f.Method != r.Method) || !strings.Contains(r.Path, f.Path) {
		return ""
	}
	kind := ""
	switch x := f.rng.Float64(); {
	case x < f.ServerErrors && f.rng.Float64() < f.Handled:
		kind = FaultLost
	case x < f.ServerErrors:
		kind = FaultRefused
	case x < f.ServerErrors+f.RateLimits:
		kind = FaultRateLimited
	}
	if kind != "" {
		s.faultCounts[kind]++
	}
	return kind
}

// writeRateLimit answers a secondary rate limit, 429 or 403 at random (GitHub
// uses both), with Retry-After.
func (s *Server) writeRateLimit(w http.ResponseWriter) {
	s.mu.Lock()
	status := http.StatusTooManyRequests
	if s.random.rng.IntN(2) == 0 {
		status = http.StatusForbidden
	}
	wait := s.random.RetryAfter
	s.mu.Unlock()
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
	writeJSON(w, status, msg("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."))
}

// discard is the ResponseWriter of a request whose answer is lost.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func (s *Server) takeFault(r Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == r.Method) && strings.Contains(r.Path, f.Path) {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// authorized checks the request's credentials: the app's JWT on /app
// endpoints, otherwise the configured token or an issued installation token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, path string) bool {
	auth := r.Header.Get("Authorization")
	token := strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ")
	if path == "/app" || strings.HasPrefix(path, "/app/") {
		if s.cfg.App == nil {
			writeJSON(w, http.StatusNotFound, msg("Not Found"))
			return false
		}
		if err := s.verifyJWT(token); err != nil {
			writeJSON(w, http.StatusUnauthorized, msg("A JSON web token could not be decoded: "+err.Error()))
			return false
		}
		return true
	}
	ok := true
	switch {
	case s.cfg.App != nil:
		s.mu.Lock()
		exp, issued := s.tokens[token]
		s.mu.Unlock()
		ok = issued && s.clock.Now().Before(exp)
	case s.cfg.Token != "":
		ok = token == s.cfg.Token
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, msg("Bad credentials"))
	}
	return ok
}

// verifyJWT checks an app JWT as GitHub does: RS256 signed by the app's key,
// issued by the app id, not expired, at most 10 minutes of validity.
func (s *Server) verifyJWT(token string) error {
	app := s.cfg.App
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return app.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithTimeFunc(s.clock.Now),
		jwt.WithIssuer(strconv.FormatInt(app.ID, 10)),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return err
	}
	if claims.ExpiresAt.Sub(s.clock.Now()) > 10*time.Minute {
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	p := func(method, path string) string { return method + " " + apiPrefix + path }
	m.HandleFunc(p("GET", "/user"), s.getUser)
	m.HandleFunc(p("GET", "/app"), s.getApp)
	m.HandleFunc(p("POST", "/app/installations/{id}/access_tokens"), s.createToken)
	const reviews = "/repos/{owner}/{repo}/branches/{branch}/protection/required_pull_request_reviews"
	m.HandleFunc(p("GET", reviews), s.getReviews)
	m.HandleFunc(p("PATCH", reviews), s.patchReviews)
	m.HandleFunc(p("POST", "/repos/{owner}/{repo}/actions/workflows/{file}/dispatches"), s.dispatch)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/actions/workflows/{file}/runs"), s.listRuns)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/actions/runs/{id}"), s.getRun)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/actions/runs/{id}/jobs"), s.listJobs)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/check-runs/{id}/annotations"), s.listAnnotations)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/git/ref/{ref...}"), s.getRef)
	m.HandleFunc(p("POST", "/repos/{owner}/{repo}/git/refs"), s.createRef)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/git/commits/{sha}"), s.getCommit)
	m.HandleFunc(p("GET", "/repos/{owner}/{repo}/contents/{path...}"), s.getContents)
	m.HandleFunc(p("PUT", "/repos/{owner}/{repo}/contents/{path...}"), s.putContents)
	s.preflightRoutes(m, p)
	m.HandleFunc(p("POST", "/repos/{owner}/{repo}/issues"), s.createIssue)
	s.mux = m
}

// actor is the login the credentials act as.
func (s *Server) actor() string {
	if s.cfg.App != nil {
		return s.cfg.App.Slug + "[bot]"
	}
	return s.cfg.Login
}

func (s *Server) getUser(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.App != nil {
		writeJSON(w, http.StatusForbidden, msg("Resource not accessible by integration"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": s.cfg.Login, "id": 1, "type": "User"})
}

func (s *Server) getApp(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"id": s.cfg.App.ID, "slug": s.cfg.App.Slug, "name": s.cfg.App.Slug})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != strconv.FormatInt(s.cfg.App.InstallationID, 10) {
		writeJSON(w, http.StatusNotFound, msg("Not Found"))
		return
	}
	s.mu.Lock()
	s.exchanges++
	token := fmt.Sprintf("ghs_fake%04d", s.exchanges)
	exp := s.clock.Now().Add(time.Hour)
	s.tokens[token] = exp
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":       token,
		"expires_at":  exp.Format(time.RFC3339),
		"permissions": s.appPermissions(),
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records code and passes it on.
func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func msg(text string) map[string]string {
	return map[string]string{"message": text, "documentation_url": "https://docs.github.com/rest"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body, answering 400 if it is malformed.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, msg("Problems parsing JSON"))
		return false
	}
	return true
}
