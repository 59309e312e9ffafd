package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
)

const (
	testAppID          = 4242
	testInstallationID = 77
)

// appKey returns a new RSA key and its PKCS#1 PEM, as GitHub hands it out.
func appKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// newAppFake starts a fake GitHub that knows the app by key's public half.
func newAppFake(t *testing.T, key *rsa.PrivateKey) *githubtest.Server {
	t.Helper()
	return githubtest.New(t, githubtest.Config{App: &githubtest.App{
		ID: testAppID, InstallationID: testInstallationID, PublicKey: &key.PublicKey, Slug: "drbot-dr",
	}})
}

func asApp(pemKey []byte) func(*github.Options) {
	return func(o *github.Options) {
		o.Token = ""
		o.AppID, o.InstallationID, o.PrivateKeyPEM = testAppID, testInstallationID, pemKey
	}
}

func TestAppTokenExchangedCachedAndRenewed(t *testing.T) {
	key, pemKey := appKey(t)
	srv := newAppFake(t, key)
	srv.SetReviewCount(testRepo, "main", 1)
	core, logs := observer.New(zap.DebugLevel)
	c := newClient(t, srv, asApp(pemKey), func(o *github.Options) { o.Logger = zap.New(core) })
	a := action(t, c, "github.required_approvals")
	run := func(count int) {
		t.Helper()
		var s step
		if _, err := a.Run(context.Background(), s.request(approvalsParams(count), nil)); err != nil {
			t.Fatal(err)
		}
	}

	run(6)
	run(1)
	if n := srv.TokenExchanges(); n != 1 {
		t.Errorf("%d token exchanges for 4 calls, want 1 (cached)", n)
	}
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/repos/") && r.Header.Get("Authorization") != "Bearer ghs_fake0001" {
			t.Errorf("%v sent %q, want the installation token", r, r.Header.Get("Authorization"))
		}
	}

	// Tokens live an hour; drbot renews one a few minutes before it expires.
	srv.Clock().Advance(56 * time.Minute)
	run(6)
	if n := srv.TokenExchanges(); n != 2 {
		t.Errorf("%d token exchanges after 56 minutes, want 2 (renewed)", n)
	}

	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "ghs_") || strings.Contains(line, "Bearer") {
			t.Errorf("a log line carries a token: %s", line)
		}
	}
}

func TestAppActorIsTheBotWhenListing(t *testing.T) {
	key, pemKey := appKey(t)
	srv := newAppFake(t, key)
	srv.SetRunDetails(422)
	var s step
	if _, err := runWorkflow(t, newClient(t, srv, asApp(pemKey)), &s, nil); err != nil {
		t.Fatal(err)
	}
	if len(srv.Dispatches()) != 1 {
		t.Fatalf("%d dispatches, want 1", len(srv.Dispatches()))
	}
	if n := srv.Count("GET", "/user"); n != 0 {
		t.Errorf("asked /user, which an installation token may not read")
	}
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/runs") {
			if q, _ := url.ParseQuery(r.Query); q.Get("actor") != "drbot-dr[bot]" {
				t.Errorf("listing by actor %q, want drbot-dr[bot]", q.Get("actor"))
			}
		}
	}
}

func TestCredentialsRefused(t *testing.T) {
	key, _ := appKey(t)
	_, otherPEM := appKey(t)
	tests := []struct {
		name string
		srv  func(t *testing.T) *githubtest.Server
		opts func(*github.Options)
		want string
	}{
		{name: "wrong token", srv: newFake, opts: func(o *github.Options) { o.Token = "ghp_wrong" }, want: "401 Bad credentials"},
		{name: "app key GitHub does not know", srv: func(t *testing.T) *githubtest.Server { return newAppFake(t, key) },
			opts: asApp(otherPEM), want: "exchange the app JWT for an installation token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv(t)
			srv.SetReviewCount(testRepo, "main", 1)
			var s step
			_, err := action(t, newClient(t, srv, tt.opts), "github.required_approvals").Run(context.Background(), s.request(approvalsParams(6), nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, pemKey := appKey(t)
	tests := []struct {
		name string
		opts github.Options
		want string
	}{
		{name: "no credentials", opts: github.Options{}, want: "no credentials"},
		{name: "token and app", opts: github.Options{Token: "x", AppID: 1, InstallationID: 2, PrivateKeyPEM: pemKey}, want: "not both"},
		{name: "app without installation", opts: github.Options{AppID: 1, PrivateKeyPEM: pemKey}, want: "installation id"},
		{name: "bad key", opts: github.Options{AppID: 1, InstallationID: 2, PrivateKeyPEM: []byte("nope")}, want: "private key"},
		{name: "bad base URL", opts: github.Options{Token: "x", BaseURL: "ghe.example.com"}, want: "want an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := github.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
