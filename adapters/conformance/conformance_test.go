// Package conformance checks that every action kind's real adapter and its
// simulated one keep one contract: for the same parameters both accept or
// both refuse, with the kind's decoder's words, and a refusal reaches no
// system. A rehearsal on the simulator then proves what the live run accepts.
package conformance_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"k8s.io/client-go/rest"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/adapters/github"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/adapters/httpcheck"
	"github.com/drbot-dev/drbot/adapters/kube"
	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/runbook"
)

// counter is a system that only counts the requests that reach it.
type counter struct {
	srv *httptest.Server
	n   atomic.Int64
}

func newCounter(t *testing.T) *counter {
	c := &counter{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// real is one kind's real adapter and how to count what reached its system.
type real struct {
	action   runbook.Action
	requests func() int
}

func realAdapters(t *testing.T) map[string]real {
	gh := githubtest.New(t, githubtest.Config{Token: "ghp_conformance"})
	ghc, err := github.New(github.Options{BaseURL: gh.URL(), Token: "ghp_conformance"})
	if err != nil {
		t.Fatal(err)
	}
	ghRequests := func() int { return len(gh.Requests()) }

	k8s := newCounter(t)
	kc, err := kube.NewForConfig(&rest.Config{Host: k8s.srv.URL}, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	web := newCounter(t)
	out := map[string]real{
		runbook.KindScale:     {kc.Actions()[runbook.KindScale], func() int { return int(k8s.n.Load()) }},
		runbook.KindImage:     {kc.Actions()[runbook.KindImage], func() int { return int(k8s.n.Load()) }},
		runbook.KindHTTPCheck: {httpcheck.New(web.srv.Client()), func() int { return int(web.n.Load()) }},
	}
	for kind, act := range ghc.Actions() {
		out[kind] = real{act, ghRequests}
	}

	// Azure: ARM through the SDK's fake server, blobs to a server that counts.
	servers := azuretest.NewServers()
	blobs := newCounter(t)
	az, err := azure.New(azure.Options{
		Credential: azuretest.Credential(), Subscription: "00000000-0000-0000-0000-000000000000",
		ARM: azuretest.ClientOptions(servers, nil), PollInterval: time.Millisecond, Clock: testClock{},
		Blob: func(account string) (*azblob.Client, error) {
			return azblob.NewClientWithNoCredential(blobs.srv.URL+"/"+account, nil)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for kind, act := range az.Actions() {
		count := func() int { return len(servers.Calls()) }
		if strings.HasPrefix(kind, "azure.backups.") {
			count = func() int { return int(blobs.n.Load()) }
		}
		out[kind] = real{act, count}
	}
	return out
}

// testClock is the time of both worlds: the cases' restore times are
// inside the restore window whatever day the tests run.
type testClock struct{}

func (testClock) Now() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }

type paramCase struct {
	name   string
	params runbook.Params
	refuse string // "" accepts; else a part of the refusal
}

// cases are, per kind, parameters to accept and to refuse. URL is replaced by
// the counting web server's address.
var cases = map[string][]paramCase{
	runbook.KindScale: {
		{name: "list and one count", params: runbook.Params{"namespace": "bat-staging", "deployments": []any{"web", "worker"}, "replicas": 0}},
		{name: "remembered counts", params: runbook.Params{"namespace": "bat-staging", "replicas": map[string]any{"web": 2, "worker": 1}}},
		{name: "empty deployment list", params: runbook.Params{"namespace": "bat-staging", "deployments": []any{}, "replicas": 0}, refuse: "no deployments to scale"},
		{name: "negative replicas", params: runbook.Params{"namespace": "bat-staging", "deployments": []any{"web"}, "replicas": -1}, refuse: "want 0 or more"},
		{name: "no namespace", params: runbook.Params{"deployments": []any{"web"}, "replicas": 0}, refuse: `parameter "namespace" is missing`},
		{name: "bad namespace", params: runbook.Params{"namespace": "Bat_Staging", "deployments": []any{"web"}, "replicas": 0}, refuse: "not a Kubernetes namespace name"},
		{name: "bad deployment", params: runbook.Params{"namespace": "ns", "deployments": []any{"web; rm"}, "replicas": 0}, refuse: "not a Kubernetes deployment name"},
		{name: "missing replicas", params: runbook.Params{"namespace": "ns", "deployments": []any{"web"}}, refuse: `parameter "replicas" is missing`},
		{name: "listed deployment without a count", params: runbook.Params{"namespace": "ns", "deployments": []any{"web", "worker"}, "replicas": map[string]any{"web": 1}}, refuse: `no count for deployment "worker"`},
	},
	runbook.KindImage: {
		{name: "read", params: runbook.Params{"namespace": "bat-staging", "deployment": "web"}},
		{name: "bad deployment", params: runbook.Params{"namespace": "bat-staging", "deployment": "Web App"}, refuse: "not a Kubernetes deployment name"},
		{name: "no namespace", params: runbook.Params{"deployment": "web"}, refuse: `parameter "namespace" is missing`},
	},
	runbook.KindPostgresWait: {
		{name: "wait", params: runbook.Params{"resource_group": "s189t01-rg", "server": "app-pg-ptr"}},
		{name: "bad server name", params: runbook.Params{"resource_group": "s189t01-rg", "server": "App_PG"}, refuse: "is not a flexible server name"},
		{name: "bad subscription", params: runbook.Params{"resource_group": "rg", "server": "app-pg", "subscription": "prod"}, refuse: "is not an Azure subscription id"},
	},
	runbook.KindPostgresDelete: {
		{name: "delete the copy", params: runbook.Params{"resource_group": "s189t01-rg", "server": "app-pg-ptr"}},
		{name: "shell in the name", params: runbook.Params{"resource_group": "rg", "server": "x; rm -rf /"}, refuse: "is not a flexible server name"},
		{name: "no resource group", params: runbook.Params{"server": "app-pg-ptr"}, refuse: `parameter "resource_group" is missing`},
	},
	runbook.KindPostgresCheckGone: {
		{name: "check", params: runbook.Params{"resource_group": "s189t01-rg", "server": "app-pg"}},
		{name: "bad resource group", params: runbook.Params{"resource_group": "rg/../x", "server": "app-pg"}, refuse: "is not an Azure resource group name"},
	},
	runbook.KindPostgresPreparePTR: {
		{name: "prepare", params: runbook.Params{"resource_group": "rg", "server": "app-pg", "ptr_server": "app-pg-ptr", "restore_time": "2026-11-26T09:30:00Z"}},
		{name: "copy named as the live server", params: runbook.Params{"resource_group": "rg", "server": "app-pg", "ptr_server": "APP-PG", "restore_time": "2026-11-26T09:30:00Z"}, refuse: "is not a flexible server name"},
		{name: "time without a zone", params: runbook.Params{"resource_group": "rg", "server": "app-pg", "ptr_server": "app-pg-ptr", "restore_time": "2026-11-26 09:30"}, refuse: "has no time zone"},
	},
	runbook.KindBackupsList: {
		{name: "list", params: runbook.Params{"account": "s189t01bkp", "container": "database-backup"}},
		{name: "bad account", params: runbook.Params{"account": "S189-bkp", "container": "database-backup"}, refuse: "is not a storage account name"},
	},
	runbook.KindBackupsCheck: {
		{name: "exists", params: runbook.Params{"account": "s189t01bkp", "container": "database-backup", "name": "app_stg.sql.gz", "expect": "exists"}},
		{name: "not a backup name", params: runbook.Params{"account": "s189t01bkp", "container": "database-backup", "name": "app_stg", "expect": "exists"}, refuse: "is not a backup blob name"},
		{name: "unknown expectation", params: runbook.Params{"account": "s189t01bkp", "container": "database-backup", "name": "a.sql.gz", "expect": "maybe"}, refuse: `parameter "expect"`},
	},
	runbook.KindRequiredApprovals: {
		{name: "freeze", params: runbook.Params{"repo": "DFE-Digital/app", "branch": "main", "count": 6}},
		{name: "over GitHub's maximum", params: runbook.Params{"repo": "DFE-Digital/app", "branch": "main", "count": 7}, refuse: "GitHub allows 0 to 6"},
		{name: "repo without owner", params: runbook.Params{"repo": "app", "branch": "main", "count": 1}, refuse: "want owner/name"},
		{name: "bad branch", params: runbook.Params{"repo": "DFE-Digital/app", "branch": "a..b", "count": 1}, refuse: "not a branch or ref name"},
		{name: "count not a number", params: runbook.Params{"repo": "DFE-Digital/app", "branch": "main", "count": "six"}, refuse: "want a whole number"},
	},
	runbook.KindWorkflow: {
		{name: "dispatch", params: runbook.Params{"repo": "DFE-Digital/app", "ref": "main", "workflow": "backup.yml", "inputs": map[string]any{"environment": "staging"}}},
		{name: "not a workflow file", params: runbook.Params{"repo": "DFE-Digital/app", "ref": "main", "workflow": "backup.sh"}, refuse: "not a workflow file name"},
		{name: "bad capture pattern", params: runbook.Params{"repo": "DFE-Digital/app", "ref": "main", "workflow": "m.yml", "capture_url": "("}, refuse: "is not a regular expression"},
		{name: "no ref", params: runbook.Params{"repo": "DFE-Digital/app", "workflow": "m.yml"}, refuse: `parameter "ref" is missing`},
		{name: "inputs not a mapping", params: runbook.Params{"repo": "DFE-Digital/app", "ref": "main", "workflow": "m.yml", "inputs": "env=staging"}, refuse: "want a mapping"},
	},
	runbook.KindBranchWithChange: {
		{name: "branch with a change", params: runbook.Params{"repo": "DFE-Digital/app", "base": "main", "branch": "dr-1", "file": "a.tfvars.json", "set": map[string]any{"k": true}}},
		{name: "branch is the base", params: runbook.Params{"repo": "DFE-Digital/app", "base": "main", "branch": "main", "file": "a.json", "set": map[string]any{"k": true}}, refuse: "must differ from the base branch"},
		{name: "nothing to set", params: runbook.Params{"repo": "DFE-Digital/app", "base": "main", "branch": "dr-1", "file": "a.json", "set": map[string]any{}}, refuse: `parameter "set" is empty`},
	},
	runbook.KindHTTPCheck: {
		{name: "get", params: runbook.Params{"url": "URL", "path": "/healthcheck", "retries": 0}},
		{name: "not http", params: runbook.Params{"url": "ftp://example.com"}, refuse: "want an http(s) URL"},
		{name: "negative retries", params: runbook.Params{"url": "URL", "retries": -1}, refuse: "want 0 or more"},
		{name: "not a status", params: runbook.Params{"url": "URL", "expect_status": 42}, refuse: "want an HTTP status"},
		{name: "bad timeout", params: runbook.Params{"url": "URL", "timeout": "soon"}, refuse: "want a duration"},
	},
}

func request(p runbook.Params) runbook.Request {
	return runbook.Request{
		RunID: "dr-conformance", StepID: "step", Attempt: 1, Actor: "U1", Params: p,
		Save:     func(context.Context, map[string]string) error { return nil },
		Progress: func(context.Context, string, ...runbook.Link) {},
	}
}

// withURL puts the counting web server's address where a case says URL.
func withURL(p runbook.Params, url string) runbook.Params {
	out := runbook.Params{}
	for k, v := range p {
		if v == "URL" {
			v = url
		}
		out[k] = v
	}
	return out
}

func TestRealAndSimulatedAdaptersShareOneContract(t *testing.T) {
	ctx := context.Background()
	reals := realAdapters(t)
	sims := sim.New(sim.Options{Clock: testClock{}}).Actions()
	web := newCounter(t)
	reals[runbook.KindHTTPCheck] = real{httpcheck.New(web.srv.Client()), func() int { return int(web.n.Load()) }}

	for kind := range runbook.Kinds {
		// Slack's kinds post through the bot (one decoder, DecodeText, in both);
		// manual has no adapter.
		if _, ok := cases[kind]; !ok && !strings.HasPrefix(kind, "slack.") && kind != runbook.ManualKind {
			t.Errorf("kind %s has no conformance cases", kind)
		}
	}
	for kind, tests := range cases {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				params := withURL(tt.params, web.srv.URL)
				_, decodeErr := runbook.Kinds[kind].Decode(params)
				if (decodeErr == nil) != (tt.refuse == "") || (decodeErr != nil && !strings.Contains(decodeErr.Error(), tt.refuse)) {
					t.Fatalf("decoder: %v, want refuse %q", decodeErr, tt.refuse)
				}
				r := reals[kind]
				before := r.requests()
				// Only whether the adapter reaches its system matters here, not
				// how long it would follow what it started.
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				_, realErr := r.action.Run(rctx, request(params))
				cancel()
				reached := r.requests() - before
				_, simErr := sims[kind].Run(ctx, request(params))
				if tt.refuse != "" {
					for who, err := range map[string]error{"real": realErr, "simulated": simErr} {
						if err == nil || err.Error() != decodeErr.Error() {
							t.Errorf("%s adapter: %v, want the decoder's refusal %q", who, err, decodeErr)
						}
					}
					if reached != 0 {
						t.Errorf("the real adapter sent %d requests with refused parameters", reached)
					}
					return
				}
				if simErr != nil {
					t.Errorf("simulated adapter refused valid parameters: %v", simErr)
				}
				// The real adapter may fail against a system that only
				// counts, but it must have got past its parameters to it.
				if reached == 0 {
					t.Errorf("the real adapter did not reach its system (err %v)", realErr)
				}
			})
		}
	}
}
