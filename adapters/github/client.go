// Package github runs drbot's GitHub steps through the REST API: it freezes
// and unfreezes merges by changing only the required review count of a branch
// protection, dispatches workflows and follows the runs they start to their
// conclusion (reading a temporary URL from a run's annotations when asked),
// and commits a JSON configuration change on a new branch. It
// works against github.com and GitHub Enterprise Server alike, authenticated
// by a token or as a GitHub App installation.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Defaults for Options.
const (
	// DefaultPollInterval spaces the polls of a workflow run. Polls are
	// conditional requests: GitHub does not count a 304 against the rate
	// limit, so a 10-minute run costs about 60 uncharged calls.
	DefaultPollInterval = 10 * time.Second
	// DefaultFindTimeout bounds the search for a dispatched run when the
	// server did not say which run it started. GitHub lists a new run within
	// seconds; two minutes leaves room for a busy instance.
	DefaultFindTimeout = 2 * time.Minute
	// DefaultDispatchSearch is how long drbot looks for the run of a
	// dispatch whose answer was lost before it takes the dispatch for
	// refused and dispatches again. GitHub lists a dispatched run within a
	// few seconds; users of return-dispatch report up to 8 s from dispatch
	// to a started job (Codex-/return-dispatch#183). 20 s is over twice that,
	// so a dispatch that did start a run is rarely taken for refused (and
	// if it is, the second run is reported), while a refused one costs
	// seconds, not FindTimeout and a click.
	DefaultDispatchSearch = 20 * time.Second
)

// Clock tells the time and waits. Tests inject a clock whose Sleep returns at
// once, so a simulated ten-minute run is followed in milliseconds.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, whichever comes first; it returns
	// ctx.Err() in the second case.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Sleep waits for d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Options configure a Client. Give either Token or the three GitHub App
// fields.
type Options struct {
	// BaseURL is the REST API root, e.g. https://ghe.example.com/api/v3/
	// for GitHub Enterprise Server (GITHUB_API_URL). Empty means
	// https://api.github.com/. It is used exactly as given (a trailing slash
	// is added), so a test server may mount the API on any path.
	BaseURL string
	// Token is a personal access token or an installation token.
	Token string
	// AppID, InstallationID and PrivateKeyPEM authenticate as a GitHub App
	// installation: drbot signs a JWT as the app and exchanges it for an
	// installation token, cached until shortly before it expires.
	AppID          int64
	InstallationID int64
	PrivateKeyPEM  []byte
	// HTTPClient is the client to send requests with (its Transport and
	// Timeout are kept); nil means a default client.
	HTTPClient *http.Client
	// Logger receives the adapter's logs; nil means no logs.
	Logger *zap.Logger
	// Clock defaults to SystemClock.
	Clock Clock
	// PollInterval spaces workflow run polls (DefaultPollInterval if zero).
	// A longer X-Poll-Interval from GitHub wins.
	PollInterval time.Duration
	// FindTimeout bounds the search for a dispatched run by listing
	// (DefaultFindTimeout if zero).
	FindTimeout time.Duration
	// DispatchSearch bounds the search for the run of a dispatch whose
	// answer was lost before drbot dispatches again, once
	// (DefaultDispatchSearch if zero).
	DispatchSearch time.Duration
	// Actor is the login that dispatches drbot's workflow runs. Empty means
	// discover it: GET /user for a token, "<app slug>[bot]" for an app.
	Actor string
}

// Client performs drbot's GitHub actions. Build it with New.
type Client struct {
	gh          *gh.Client
	web         *url.URL // root of the web UI, for links
	log         *zap.Logger
	clock       Clock
	poll        time.Duration
	findTimeout time.Duration
	// dispatchSearch: see Options.DispatchSearch.
	dispatchSearch time.Duration
	actor          *actorCache
	app            *appTransport // nil with a token
}

// New builds a Client. It makes no request: credentials are first used by the
// first action.
func New(opts Options) (*Client, error) {
	base, err := apiURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		web:         webURL(base),
		log:         opts.Logger,
		clock:       opts.Clock,
		poll:        opts.PollInterval,
		findTimeout: opts.FindTimeout,

		dispatchSearch: opts.DispatchSearch,
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("github")
	if c.clock == nil {
		c.clock = SystemClock{}
	}
	if c.poll <= 0 {
		c.poll = DefaultPollInterval
	}
	if c.findTimeout <= 0 {
		c.findTimeout = DefaultFindTimeout
	}
	if c.dispatchSearch <= 0 {
		c.dispatchSearch = DefaultDispatchSearch
	}

	hc := &http.Client{}
	if opts.HTTPClient != nil {
		copied := *opts.HTTPClient
		hc = &copied
	}
	transport := hc.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}

	useApp := opts.AppID != 0 || opts.InstallationID != 0 || len(opts.PrivateKeyPEM) > 0
	switch {
	case opts.Token != "" && useApp:
		return nil, errors.New("github: give a token or GitHub App credentials, not both")
	case opts.Token != "":
		hc.Transport = bearerTransport{base: transport, token: opts.Token}
		c.actor = newActorCache(opts.Actor, c.userLogin)
	case useApp:
		app, err := newAppTransport(appConfig{
			appID:          opts.AppID,
			installationID: opts.InstallationID,
			privateKeyPEM:  opts.PrivateKeyPEM,
			base:           transport,
			baseURL:        base,
			timeout:        hc.Timeout,
			clock:          c.clock,
		})
		if err != nil {
			return nil, err
		}
		hc.Transport = app
		c.app = app
		c.actor = newActorCache(opts.Actor, app.botLogin)
	default:
		return nil, errors.New("github: no credentials: set a token, or the GitHub App id, installation id and private key")
	}

	c.gh = gh.NewClient(hc)
	c.gh.BaseURL = base
	return c, nil
}

// Actions returns the client's actions keyed by the kinds in runbook.Kinds.
func (c *Client) Actions() runbook.Registry {
	return runbook.Registry{
		runbook.KindRequiredApprovals: &ApprovalsAction{c: c},
		runbook.KindWorkflow:          &WorkflowAction{c: c},
		runbook.KindBranchWithChange:  &BranchAction{c: c},
	}
}

// apiURL parses the API root, defaulting to github.com's.
func apiURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = "https://api.github.com/"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("github: base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("github: base URL %q: want an http(s) URL such as https://ghe.example.com/api/v3/", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// webURL derives the web UI root from the API root: api.github.com serves
// github.com; GitHub Enterprise Server serves the API under /api/v3/ of the
// web host.
func webURL(api *url.URL) *url.URL {
	if api.Host == "api.github.com" {
		return &url.URL{Scheme: "https", Host: "github.com", Path: "/"}
	}
	w := *api
	w.Path = strings.TrimSuffix(w.Path, "api/v3/")
	return &w
}

// link returns the web URL of a repository page, e.g. link("o/r", "settings/branches").
func (c *Client) link(repo, page string) string {
	u := *c.web
	u.Path += repo
	if page != "" {
		u.Path += "/" + page
	}
	return u.String()
}

// stepLogger returns the logger for one step of one run, and ctx carrying it
// so that the retry loop's warnings name the step too.
func (c *Client) stepLogger(ctx context.Context, req runbook.Request, fields ...zap.Field) (context.Context, *zap.Logger) {
	log := c.log.With(append([]zap.Field{zap.String("run_id", req.RunID), zap.String("step_id", req.StepID)}, fields...)...)
	return context.WithValue(ctx, loggerKey{}, log), log
}

// loggerKey is the context key of a step's logger.
type loggerKey struct{}

// logger returns the step's logger carried by ctx, or the client's.
func (c *Client) logger(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok {
		return l
	}
	return c.log
}

// userLogin asks GitHub who the token belongs to.
func (c *Client) userLogin(ctx context.Context) (string, error) {
	var u *gh.User
	err := c.call(ctx, readAttempts, func(ctx context.Context) (err error) {
		u, _, err = c.gh.Users.Get(ctx, "")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("find the token's login (GET /user): %w", err)
	}
	return u.GetLogin(), nil
}

// actorCache remembers the login that dispatches drbot's runs, looked up on
// first use and again after a failed lookup.
type actorCache struct {
	mu     sync.Mutex
	login  string
	lookup func(context.Context) (string, error)
}

func newActorCache(login string, lookup func(context.Context) (string, error)) *actorCache {
	return &actorCache{login: login, lookup: lookup}
}

func (a *actorCache) get(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.login != "" {
		return a.login, nil
	}
	login, err := a.lookup(ctx)
	if err != nil {
		return "", err
	}
	a.login = login
	return login, nil
}

// save persists a checkpoint if the engine gave a way to.
func save(ctx context.Context, req runbook.Request, cp map[string]string) error {
	if req.Save == nil {
		return nil
	}
	return req.Save(ctx, cp)
}

// progress reports progress if the engine listens.
func progress(ctx context.Context, req runbook.Request, text string, links ...runbook.Link) {
	if req.Progress != nil {
		req.Progress(ctx, text, links...)
	}
}

// copyCheckpoint returns a copy of cp that the action may change.
func copyCheckpoint(cp map[string]string) map[string]string {
	out := make(map[string]string, len(cp)+3)
	for k, v := range cp {
		out[k] = v
	}
	return out
}
