package azure

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/runbook"
)

func TestThrottlingAndServerErrors(t *testing.T) {
	tests := []struct {
		name      string
		failures  []azuretest.Failure
		requests  int           // that reached the transport
		minTime   time.Duration // Retry-After honoured
		wantErr   string        // "" succeeds
		retryable bool
	}{
		{name: "429 with Retry-After, then success", failures: []azuretest.Failure{azuretest.Throttled("1")},
			requests: 2, minTime: 900 * time.Millisecond},
		{name: "two 503s, then success", failures: []azuretest.Failure{azuretest.Unavailable(), azuretest.Unavailable()},
			requests: 3},
		{name: "503 every time: a clear, retryable failure",
			failures: []azuretest.Failure{azuretest.Unavailable(), azuretest.Unavailable(), azuretest.Unavailable(), azuretest.Unavailable()},
			requests: 4, wantErr: "read server " + live + " in resource group " + rg + ": Azure answered 503 ServiceUnavailable, still after 4 tries", retryable: true},
		{name: "403: what to grant, not retried", failures: []azuretest.Failure{{Status: http.StatusForbidden, Code: "AuthorizationFailed"}},
			requests: 1, wantErr: "forbidden: Azure refused drbot's identity to read server " + live + " in resource group " + rg +
				" (403 AuthorizationFailed); grant it Microsoft.DBforPostgreSQL/flexibleServers/read on resource group " + rg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.failures...)
			start := time.Now()
			res, _, err := f.run(t, runbook.KindPostgresCheckGone, serverParams(live))
			took := time.Since(start)
			if n := f.inject.Seen(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if took < tt.minTime {
				t.Errorf("took %s; Retry-After asked for at least %s", took, tt.minTime)
			}
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(res.Summary, "is gone") {
					t.Fatalf("err %v, summary %q", err, res.Summary)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v\nwant %s", err, tt.wantErr)
			}
			if runbook.IsRetryable(err) != tt.retryable {
				t.Errorf("retryable = %v, want %v", runbook.IsRetryable(err), tt.retryable)
			}
			var re *azcore.ResponseError
			if !errors.As(err, &re) {
				t.Error("the Azure error is not kept beneath")
			}
		})
	}
}

func TestTransientErrorsWhileWaitingAreWaitedOut(t *testing.T) {
	// Four 503s exhaust one read's tries; the wait goes on and sees Ready.
	f := newFixture(t, azuretest.Unavailable(), azuretest.Unavailable(), azuretest.Unavailable(), azuretest.Unavailable())
	f.servers.Put(rg, ptr, azuretest.Server{State: stateReady})
	res, rec, err := f.run(t, runbook.KindPostgresWait, serverParams(ptr))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Summary, "is Ready") || len(rec.progress) != 1 || !strings.Contains(rec.progress[0], "unreadable for now") {
		t.Errorf("summary %q, progress %v", res.Summary, rec.progress)
	}
}
