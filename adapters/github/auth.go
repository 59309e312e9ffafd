package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gh "github.com/google/go-github/v62/github"
)

// GitHub App JWT and token lifetimes, from "Generating a JSON Web Token (JWT)
// for a GitHub App": iat 60 s in the past against clock drift, exp at most
// 10 minutes ahead. Installation tokens live one hour; renewing 5 minutes
// early keeps a long poll from starting with a token about to expire.
const (
	jwtBackdate        = 60 * time.Second
	jwtLifetime        = 9 * time.Minute
	tokenRenewalMargin = 5 * time.Minute
)

// bearerTransport sends a fixed token.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

// RoundTrip adds the Authorization header to a copy of req.
func (t bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// appConfig is what an appTransport needs.
type appConfig struct {
	appID, installationID int64
	privateKeyPEM         []byte
	base                  http.RoundTripper
	baseURL               *url.URL
	timeout               time.Duration
	clock                 Clock
}

// appTransport authenticates requests as a GitHub App installation: it signs
// an RS256 JWT as the app, exchanges it at
// POST /app/installations/{id}/access_tokens and caches the installation
// token until shortly before it expires. A 401 drops the cached token so the
// next request fetches a fresh one.
type appTransport struct {
	base           http.RoundTripper
	appID          int64
	installationID int64
	key            *rsa.PrivateKey
	clock          Clock
	app            *gh.Client // authenticated as the app itself (JWT)

	mu      sync.Mutex
	token   string
	expires time.Time
	perms   *gh.InstallationPermissions // of the last token, for preflight
}

func newAppTransport(cfg appConfig) (*appTransport, error) {
	if cfg.appID == 0 || cfg.installationID == 0 || len(cfg.privateKeyPEM) == 0 {
		return nil, errors.New("github: a GitHub App needs its app id, installation id and private key")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github: app private key: %w", err)
	}
	t := &appTransport{
		base:           cfg.base,
		appID:          cfg.appID,
		installationID: cfg.installationID,
		key:            key,
		clock:          cfg.clock,
	}
	t.app = gh.NewClient(&http.Client{Transport: jwtTransport{t}, Timeout: cfg.timeout})
	t.app.BaseURL = cfg.baseURL
	return t, nil
}

// RoundTrip sends req with the installation token.
func (t *appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := t.installationToken(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.forget(token)
	}
	return resp, err
}

// installationToken returns the cached token or exchanges a new JWT for one.
func (t *appTransport) installationToken(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.clock.Now().Before(t.expires.Add(-tokenRenewalMargin)) {
		return t.token, nil
	}
	it, _, err := t.app.Apps.CreateInstallationToken(ctx, t.installationID, nil)
	if err != nil {
		return "", fmt.Errorf("exchange the app JWT for an installation token (app %d, installation %d): %w", t.appID, t.installationID, err)
	}
	if it.GetToken() == "" {
		return "", fmt.Errorf("exchange the app JWT for an installation token (app %d, installation %d): empty token", t.appID, t.installationID)
	}
	t.token, t.expires, t.perms = it.GetToken(), it.GetExpiresAt().Time, it.GetPermissions()
	return t.token, nil
}

// forget drops token if it is still the cached one.
func (t *appTransport) forget(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == token {
		t.token = ""
	}
}

// botLogin is the login an app's installation acts as: "<slug>[bot]".
func (t *appTransport) botLogin(ctx context.Context) (string, error) {
	app, _, err := t.app.Apps.Get(ctx, "")
	if err != nil {
		return "", fmt.Errorf("find the app's slug (GET /app): %w", err)
	}
	return app.GetSlug() + "[bot]", nil
}

// jwt signs a short-lived token that proves drbot is the app.
func (t *appTransport) jwt() (string, error) {
	now := t.clock.Now()
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(t.appID, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-jwtBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign the app JWT: %w", err)
	}
	return s, nil
}

// jwtTransport authenticates as the app itself, for the /app endpoints.
type jwtTransport struct{ t *appTransport }

// RoundTrip adds a freshly signed JWT to a copy of req.
func (j jwtTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := j.t.jwt()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return j.t.base.RoundTrip(r)
}
