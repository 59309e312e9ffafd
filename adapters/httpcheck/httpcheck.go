// Package httpcheck implements the http.check action: GET a URL and expect a
// status and, optionally, a substring of the body, with a timeout per attempt
// and retries with backoff. During a DR run it answers "does the app respond
// on the temporary URL (or its health or SHA endpoint)?", with the status and
// latency on the timeline.
package httpcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// The retry policy (the parameters' defaults are runbook.DefaultHTTP*).
const (
	// DefaultBackoff is the wait after the first failed attempt; it doubles
	// after each next one, up to maxBackoff.
	DefaultBackoff = time.Second
	maxBackoff     = 30 * time.Second
	// maxBody bounds how much of the body is searched for expect_body.
	maxBody = 1 << 20
)

// Check performs http.check steps.
type Check struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Backoff is the first wait between attempts; zero means DefaultBackoff.
	Backoff time.Duration
}

var _ runbook.Action = (*Check)(nil)

// New returns the http.check action sending requests with client (nil:
// http.DefaultClient).
func New(client *http.Client) runbook.Action {
	return &Check{Client: client}
}

// Actions returns the registry entry of http.check.
func Actions(client *http.Client) runbook.Registry {
	return runbook.Registry{runbook.KindHTTPCheck: New(client)}
}

// Run GETs the URL until it answers as expected or the retries are spent.
func (c *Check) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	t, err := runbook.DecodeHTTPCheck(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	attempts := t.Retries + 1
	var last *failure
	for n := 1; n <= attempts; n++ {
		status, latency, f := c.attempt(ctx, t)
		if f == nil {
			return runbook.Result{
				Summary: fmt.Sprintf("HTTP %d in %s from %s", status, latency, t.URL),
				Links:   []runbook.Link{{Label: "checked URL", URL: t.URL}},
			}, nil
		}
		last = f
		if ctx.Err() != nil || n == attempts {
			break
		}
		wait := jittered(backoff)
		if req.Progress != nil {
			req.Progress(ctx, fmt.Sprintf("attempt %d of %d: %v; retrying in %s", n, attempts, f, wait.Round(time.Millisecond)))
		}
		if err := sleep(ctx, wait); err != nil {
			break
		}
		backoff = min(backoff*2, maxBackoff)
	}
	err = fmt.Errorf("GET %s: %w (%d attempts)", t.URL, last, attempts)
	if last.transient {
		return runbook.Result{}, runbook.Retryable(err)
	}
	return runbook.Result{}, err
}

// failure is why one attempt did not pass. Transient failures (no answer,
// 5xx) are worth the engine's retry; a wrong answer needs a person.
type failure struct {
	err       error
	transient bool
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// attempt GETs the URL once within the timeout.
func (c *Check) attempt(ctx context.Context, t runbook.HTTPCheckSpec) (int, time.Duration, *failure) {
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	actx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, t.URL, nil)
	if err != nil {
		return 0, 0, &failure{err: err}
	}
	req.Header.Set("User-Agent", "drbot http.check")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", t.Timeout, err)
		}
		return 0, 0, &failure{err: err, transient: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	latency := time.Since(start).Round(time.Millisecond)
	switch {
	case err != nil:
		return 0, 0, &failure{err: fmt.Errorf("read the body: %w", err), transient: true}
	case resp.StatusCode != t.Status:
		return 0, 0, &failure{err: fmt.Errorf("HTTP %d, want %d", resp.StatusCode, t.Status), transient: resp.StatusCode >= 500}
	case t.Body != "" && !bytes.Contains(body, []byte(t.Body)):
		return 0, 0, &failure{err: fmt.Errorf("HTTP %d but the body lacks %q", resp.StatusCode, t.Body)}
	}
	return resp.StatusCode, latency, nil
}

// jittered spreads a backoff over [d/2, d) ("equal jitter"), so that checks
// of an app that came back for everyone at once do not all retry together.
func jittered(d time.Duration) time.Duration {
	half := d / 2
	if d-half <= 0 {
		return d
	}
	return half + rand.N(d-half)
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
