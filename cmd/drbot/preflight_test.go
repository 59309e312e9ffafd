package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sversion "k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/adapters/azure"
	"github.com/drbot-dev/drbot/adapters/azure/azuretest"
	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/adapters/kube"
	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/preflight"
	"github.com/drbot-dev/drbot/preflight/preflighttest"
)

// preflightNow is the fakes' time: backups and restore points are dated
// from it.
var preflightNow = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

// preflightWorld is examples/drbot.yaml's world on the fakes: GitHub with
// itt-mentor-services' workflow files (deploy.yml offers no production) and
// a claim repository missing three of its configured files; Slack whose
// token lacks chat:write.public and whose developer channel drbot is not
// in; Kubernetes where production may not update deployments/scale; Azure
// with every server Ready and fresh backups.
func preflightWorld(t *testing.T) map[string]string {
	t.Helper()
	gh := githubtest.New(t, githubtest.Config{Token: "ghp_preflight"})
	preflighttest.SeedRepo(gh, "DFE-Digital/itt-mentor-services", "main")
	const claim = "DFE-Digital/claim-additional-payments-for-teaching"
	gh.SetFile(claim, "master", ".github/workflows/maintenance.yml", preflighttest.Workflow("maintenance.yml"))
	gh.SetFile(claim, "master", ".github/workflows/postgres-ptr.yml", preflighttest.Workflow("postgres-ptr.yml"))
	gh.SetFile(claim, "master", "terraform/application/config/test.tfvars.json", []byte(preflighttest.TFVars))
	gh.SetReviewCount(claim, "master", 1)

	sl := slacktest.New()
	t.Cleanup(sl.Close)
	sl.AddChannel("C0DRSTAKE1", "dr-stakeholders")
	sl.AddChannelWithout("C0DEVELOP1", "developers")
	sl.SetGroup("S0PLATFORM", "U0INCLEAD1", "U0COMMSLD1")
	sl.SetScopes(slacktest.ScopesWithout("chat:write.public")...)

	servers := azuretest.NewServers()
	for rg, server := range map[string]string{"s189t01-ittms-stg-rg": "s189t01-ittms-stg-pg", "s189p01-ittms-pd-rg": "s189p01-ittms-pd-pg", "s189t01-capt-tst-rg": "s189t01-capt-tst-pg"} {
		servers.Put(rg, server, azuretest.Server{State: armpostgresqlflexibleservers.ServerStateReady, Earliest: preflightNow.Add(-7 * 24 * time.Hour)})
	}
	setAzureTestOptions(t, func(o azure.Options) azure.Options {
		arm := azuretest.ClientOptions(servers, nil)
		arm.Transport = &azuretest.Permissions{Next: arm.Transport, Actions: []string{"Microsoft.DBforPostgreSQL/flexibleServers/*"}}
		o.ARM, o.Credential = arm, azuretest.Credential()
		return o
	})

	var objects []runtime.Object
	for ns, deployments := range map[string][]string{
		"bat-staging":    {"itt-mentor-services-staging", "itt-mentor-services-staging-worker"},
		"bat-production": {"itt-mentor-services-production", "itt-mentor-services-production-worker"},
		"srtl-test":      {"claim-additional-payments-for-teaching-test-web", "claim-additional-payments-for-teaching-test-worker"},
	} {
		objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		for _, d := range deployments {
			objects = append(objects, kubetest.Deployment(ns, d, 2))
		}
	}
	cs := fake.NewClientset(objects...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &k8sversion.Info{GitVersion: "v1.37.2"}
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attr := r.Spec.ResourceAttributes
		r.Status.Allowed = !(attr.Namespace == "bat-production" && attr.Verb == "update")
		return true, r, nil
	})
	preflightTestSources = func(s *preflight.Sources) {
		s.Kube = kube.NewForClientset(cs, kube.Options{})
		s.KubeSkip = ""
		s.Azure = freshBackups{s.Azure}
		s.Now = func() time.Time { return preflightNow }
	}
	t.Cleanup(func() { preflightTestSources = nil })

	return map[string]string{
		"GITHUB_TOKEN": "ghp_preflight", "GITHUB_API_URL": gh.URL(),
		"SLACK_BOT_TOKEN": "xoxb-preflight", "SLACK_API_URL": sl.URL(),
		"AZURE_SUBSCRIPTION_ID": azuretest.Subscription, "KUBECONFIG": "/nonexistent/kubeconfig",
	}
}

// freshBackups answers the backup listing (Azurite is for the adapter's own
// tests) with last night's backup.
type freshBackups struct{ preflight.Azure }

func (freshBackups) NewestBackup(_ context.Context, _, _ string) (preflight.BackupInfo, error) {
	return preflight.BackupInfo{Lookup: preflight.Found, Count: 7, Name: "nightly_" + preflightNow.Format("2006-01-02") + ".sql.gz", LastModified: preflightNow.Add(-6 * time.Hour)}, nil
}

func TestPreflightAgainstTheFakes(t *testing.T) {
	env := preflightWorld(t)
	code, out, errOut := runCLI(t, env, "", "preflight", "--config", "../../examples/drbot.yaml")
	if code != 1 {
		t.Errorf("exit %d, want 1 (checks fail); stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"itt-mentor-services/staging — 0 fail, 0 warn,",
		`drbot would send "production", not among the options [qa, review, staging, sandbox]; used by scenario-1/deploy`,
		"→ add \"production\" to the options of environment, or change the value in drbot.yaml (.github/workflows/deploy.yml line 7; drbot.yaml services.itt-mentor-services.workflows.deploy.inputs)",
		"GitHub Actions has no workflow build_and_deploy.yml in DFE-Digital/claim-additional-payments-for-teaching",
		"GitHub Actions has no workflow database_backup.yml",
		"RBAC does not allow update deployments/scale (apps) in bat-production",
		"the bot token lacks chat:write.public",
		"/invite @drbot in #developers",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for check, status := range map[string]string{
		"azure: may delete servers in s189t01-ittms-stg-rg": "ok", "github: branch protection main": "ok",
		"kubernetes: may update deployments/scale": "fail", "github: workflow build_and_deploy.yml": "fail",
	} {
		if !hasCheck(out, check, status) {
			t.Errorf("no line %q with %s", check, status)
		}
	}
	if strings.Contains(out+errOut, "ghp_preflight") || strings.Contains(out+errOut, "xoxb-preflight") {
		t.Error("a token was printed")
	}
	if path := os.Getenv("DRBOT_PREFLIGHT_EXAMPLE"); path != "" {
		// The README's example table: DRBOT_PREFLIGHT_EXAMPLE=/tmp/x go test -run AgainstTheFakes ./cmd/drbot/
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

func TestPreflightJSONAndFilters(t *testing.T) {
	env := preflightWorld(t)
	code, out, errOut := runCLI(t, env, "", "preflight", "--config", "../../examples/drbot.yaml", "--service", "itt-mentor-services", "--env", "staging", "--json")
	var res struct {
		Failed bool `json:"failed"`
		Tables []struct {
			Service, Env string
			Checks       []preflight.Check
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s\n%s", err, out, errOut)
	}
	if len(res.Tables) != 2 || res.Tables[0].Env != "staging" || res.Tables[1].Service != "" {
		t.Fatalf("tables = %+v, want staging and slack", res.Tables)
	}
	if code != 1 || !res.Failed { // Slack's missing scope
		t.Errorf("exit %d, failed %v; want 1, true", code, res.Failed)
	}
	for _, c := range res.Tables[0].Checks {
		if c.Status != preflight.OK {
			t.Errorf("staging: %+v", c)
		}
	}

	if code, _, errOut := runCLI(t, env, "", "preflight", "--config", "../../examples/drbot.yaml", "--service", "nope"); code != 2 || !strings.Contains(errOut, "unknown service") {
		t.Errorf("unknown service: exit %d, %s", code, errOut)
	}
}

func TestPreflightSkipsWithoutCredentials(t *testing.T) {
	code, out, _ := runCLI(t, map[string]string{"KUBECONFIG": ""}, "", "preflight", "--config", "../../examples/drbot.yaml", "--simulate=kubernetes", "--service", "itt-mentor-services", "--env", "staging")
	if code != 0 {
		t.Errorf("exit %d, want 0: nothing failed, nothing was checked", code)
	}
	for _, want := range []string{
		"github: all checks      skipped  no credentials: set GITHUB_TOKEN",
		"kubernetes: all checks  skipped  simulated (--simulate)",
		"azure: all checks       skipped  no subscription: set AZURE_SUBSCRIPTION_ID",
		"slack: all checks  skipped  no credentials: set SLACK_BOT_TOKEN",
		"preflight: 0 fail, 0 warn, 0 ok, 4 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// hasCheck reports whether a table line names check with status.
func hasCheck(out, check, status string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(line); strings.HasPrefix(f, check+" ") && strings.Fields(strings.TrimPrefix(f, check))[0] == status {
			return true
		}
	}
	return false
}

// TestServeStartupPreflight: drbot serve checks its setup as it starts; a
// failed check is logged and posted to the developer channel, and the bot
// serves all the same (here /dr preflight answers with the same problem).
func TestServeStartupPreflight(t *testing.T) {
	fake := slacktest.New()
	fake.AddChannel(general, "general")
	fake.AddChannel(stakeChan, "dr-stakeholders")
	fake.AddChannel(devChan, "developers") // no S0PLATFORM user group
	s := newServed(t, fake, examples.Config, 60*time.Second, nil)
	s.launch()
	m, err := fake.WaitMessage(s.ctx, devChan, func(m slacktest.Message) bool { return strings.Contains(m.Text, "*Preflight*") })
	if err != nil {
		t.Fatalf("no preflight post in the developer channel: %v", err)
	}
	if !strings.Contains(m.Text, "❌ slack: user group S0PLATFORM — not found") || !strings.Contains(m.Text, "⏭️ github: all checks — simulated (--simulate)") {
		t.Errorf("post:\n%s", m.Text)
	}
	for !strings.Contains(s.logs.String(), `"msg":"preflight"`) && s.ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if logs := s.logs.String(); !strings.Contains(logs, `"failed":true`) || !strings.Contains(logs, "user group S0PLATFORM (fail): not found") {
		t.Errorf("logs lack the preflight summary or problem:\n%s", logs)
	}
	text, _ := s.command(platform1, general, "preflight service=itt-mentor-services env=staging")
	if !strings.Contains(text, "Running preflight") {
		t.Errorf("/dr preflight ack = %q", text)
	}
}
