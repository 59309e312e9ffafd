package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Retry policy.
const (
	// readAttempts bounds tries of an idempotent request on 5xx or network
	// errors before the error goes to the engine, marked retryable.
	readAttempts = 4
	// writeAttempts is for requests that must not be sent twice when the
	// first answer is lost: only rate limits (a refusal) are waited out.
	writeAttempts = 1
	// untilDone keeps trying transient failures until ctx ends: used once a
	// workflow run exists, so that a blip never leads to a second dispatch.
	untilDone = 0

	backoffStart = time.Second
	backoffMax   = time.Minute
	// secondaryLimitWait is GitHub's advice for a secondary rate limit that
	// names no time: "wait for at least one minute before retrying"
	// (docs.github.com, "Rate limits for the REST API").
	secondaryLimitWait = time.Minute
	// resetSlack is added to X-RateLimit-Reset, which has a resolution of
	// one second.
	resetSlack = time.Second
)

// attemptTimeout bounds one request, so that a connection that hangs costs
// a retry, not the step's whole timeout. GitHub answers the REST calls
// drbot makes in well under a second and gives up on a request itself after
// 10 s ("Timeouts", docs.github.com, REST API best practices): 30 s is past
// any answer still coming. A variable only so tests can shorten it.
var attemptTimeout = 30 * time.Second

// jittered spreads a backoff over [d/2, d) ("equal jitter", AWS
// Architecture Blog, "Exponential Backoff And Jitter"), so that the steps
// of several runs that failed together do not retry together.
func jittered(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half)
}

// afterLimit adds up to a tenth to a rate-limit wait: never earlier than
// GitHub asked, and not all at the same instant.
func afterLimit(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d + rand.N(d/10)
}

// call runs fn, waiting out rate limits (bounded by ctx) and retrying
// transient failures (5xx, network, an attempt past attemptTimeout) with
// jittered exponential backoff up to attempts tries (untilDone: until ctx
// ends). A transient error it gives up on is returned marked
// runbook.Retryable; any other error, and the end of ctx, is returned as is:
// whoever ended ctx decides what happens next.
func (c *Client) call(ctx context.Context, attempts int, fn func(context.Context) error) error {
	backoff := backoffStart
	for n := 1; ; n++ {
		err := c.attempt(ctx, fn)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if wait, ok := rateLimitWait(err, c.clock.Now()); ok {
			wait = afterLimit(wait)
			c.logger(ctx).Warn("rate limited, waiting", zap.Duration("wait", wait), zap.Error(err))
			if c.clock.Sleep(ctx, wait) != nil {
				return fmt.Errorf("%w while waiting out: %v", ctx.Err(), err)
			}
			continue
		}
		if !transient(err) {
			return err
		}
		if attempts != untilDone && n >= attempts {
			return runbook.Retryable(err)
		}
		wait := jittered(backoff)
		c.logger(ctx).Warn("transient error, retrying", zap.Duration("wait", wait), zap.Int("attempt", n), zap.Error(err))
		if c.clock.Sleep(ctx, wait) != nil {
			return fmt.Errorf("%w while retrying: %v", ctx.Err(), err)
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// attempt runs fn once within attemptTimeout.
func (c *Client) attempt(ctx context.Context, fn func(context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	return fn(actx)
}

// rateLimitWait says how long to wait before retrying a request GitHub refused
// for rate limiting, following "Rate limits for the REST API": Retry-After if
// present; else, when X-RateLimit-Remaining is 0, until X-RateLimit-Reset;
// else at least a minute for a secondary limit. Times come from the headers
// and now, never from go-github's own reading of the wall clock.
func rateLimitWait(err error, now time.Time) (time.Duration, bool) {
	var (
		primary   *gh.RateLimitError
		secondary *gh.AbuseRateLimitError
		other     *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &primary):
		if d, ok := headerWait(primary.Response, now); ok {
			return d, true
		}
		return untilReset(primary.Rate.Reset.Time, now), true
	case errors.As(err, &secondary):
		if d, ok := headerWait(secondary.Response, now); ok {
			return d, true
		}
		if secondary.RetryAfter != nil && *secondary.RetryAfter > 0 {
			return *secondary.RetryAfter, true
		}
		return secondaryLimitWait, true
	case errors.As(err, &other) && other.Response != nil:
		code := other.Response.StatusCode
		if code != http.StatusForbidden && code != http.StatusTooManyRequests {
			return 0, false
		}
		if d, ok := headerWait(other.Response, now); ok {
			return d, true
		}
		if code == http.StatusTooManyRequests {
			return secondaryLimitWait, true
		}
	}
	return 0, false
}

// headerWait reads Retry-After, or X-RateLimit-Reset when nothing remains.
func headerWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return max(time.Duration(n)*time.Second, resetSlack), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return untilReset(time.Unix(n, 0), now), true
		}
	}
	return 0, false
}

func untilReset(reset, now time.Time) time.Duration {
	return max(reset.Sub(now)+resetSlack, resetSlack)
}

// transient reports whether err is worth trying again: a 5xx answer or a
// network failure.
func transient(err error) bool {
	var resp *gh.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Response != nil && resp.Response.StatusCode >= 500
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() // a client timeout, not ours
	}
	var (
		ne net.Error
		ue *url.Error
	)
	return errors.As(err, &ne) || errors.As(err, &ue) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// statusOf returns the HTTP status of a GitHub error answer, or 0.
func statusOf(err error) int {
	var resp *gh.ErrorResponse
	if errors.As(err, &resp) && resp.Response != nil {
		return resp.Response.StatusCode
	}
	return 0
}

// messageOf returns GitHub's message in an error answer, or "".
func messageOf(err error) string {
	var resp *gh.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Message
	}
	return ""
}
