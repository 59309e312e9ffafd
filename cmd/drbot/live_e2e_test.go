package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/drbot-dev/drbot/adapters/github/githubtest"
	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// liveKubeContext is the kube_context of testdata/live/drbot.yaml's
// environment; the test's kubeconfig names its API server so.
const liveKubeContext = "drbot-live"

// liveRepo is the service's repository in testdata/live/drbot.yaml.
const liveRepo = "DFE-Digital/itt-mentor-services"

// scaleChange is a deployment's spec.replicas as the stand-in controller saw
// it change, with where GitHub stood at that moment: it places the scaling
// among the GitHub steps without timestamps.
type scaleChange struct {
	Deployment string
	Replicas   int32
	Dispatches int // workflow dispatches the fake GitHub had accepted
	Approvals  int // required approvals on main
}

func (c scaleChange) String() string {
	return fmt.Sprintf("%s=%d (after %d dispatches, approvals %d)", c.Deployment, c.Replicas, c.Dispatches, c.Approvals)
}

// TestLiveScenario2OnFakes runs `drbot rehearse scenario-2 --live
// --simulate=azure` with the real GitHub, Kubernetes and HTTP check adapters:
// GitHub is githubtest's fake, Kubernetes the real API server of
// scripts/kube-test-env.sh (reached through a kubeconfig and the
// environment's kube_context), the temporary URL an httptest server. Azure
// and Slack are simulated. It checks the effects on each.
func TestLiveScenario2OnFakes(t *testing.T) {
	cluster := newLiveCluster(t)

	gh := githubtest.New(t, githubtest.Config{Token: "ghp_drbotlivetest"})
	gh.SetReviewCount(liveRepo, "main", 1)
	for _, file := range []string{"maintenance.yml", "deploy.yml", "database-backup.yml", "postgres-ptr.yml", "postgres-restore.yml"} {
		gh.SetWorkflow(liveRepo, file, githubtest.Workflow{Conclusion: "success"})
	}

	var (
		mu      sync.Mutex
		changes []scaleChange
	)
	kubetest.PlayController(t, cluster.admin, cluster.namespace, kubetest.ObserveReplicas(func(name string, replicas int32) {
		approvals, _ := gh.ReviewCount(liveRepo, "main")
		change := scaleChange{Deployment: name, Replicas: replicas, Dispatches: len(gh.Dispatches()), Approvals: approvals}
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, change)
	}))
	const web, worker = "itt-mentor-services-staging", "itt-mentor-services-staging-worker"
	kubetest.Deploy(t, cluster.admin, cluster.namespace, web, 2)
	kubetest.Deploy(t, cluster.admin, cluster.namespace, worker, 1)

	var (
		hitsMu sync.Mutex
		hits   []string
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsMu.Lock()
		hits = append(hits, r.Method+" "+r.URL.Path+" "+r.UserAgent())
		hitsMu.Unlock()
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(app.Close)

	dir := t.TempDir()
	cfg := writeLiveConfig(t, dir, cluster.namespace, app.URL)
	db := filepath.Join(dir, "r.db")
	restoreTime := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	env := map[string]string{
		"DRBOT_SIM_DELAY": "0s",
		"USER":            "ana",
		"GITHUB_TOKEN":    "ghp_drbotlivetest",
		"GITHUB_API_URL":  gh.URL(),
		"KUBECONFIG":      cluster.kubeconfig,
	}

	start := time.Now()
	// A person approves each step at the prompt (--yes is refused with
	// --live); bob is the second person of the two-person restore.
	code, out, errOut := runCLIAnswering(t, env, approveAll("bob"), "rehearse", "scenario-2", "--live", "--simulate=azure",
		"--db", db, "--config", cfg, "--service", "itt-mentor-services", "--env", "staging",
		"--var", "restore_time="+restoreTime.Format("2006-01-02 15:04")+" UTC", "--var", "dr_test=true")
	t.Logf("rehearsal took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	stored := storedRun(t, db)
	if stored.State != runbook.RunDone {
		t.Errorf("run %s is %s, want done", stored.ID, stored.State)
	}
	stamp := stored.StartedAt.UTC().Format("20060102T1504")

	t.Run("GitHub: approvals 6, then back to 1", func(t *testing.T) {
		var counts []int
		for _, r := range gh.Requests() {
			if r.Method != http.MethodPatch {
				continue
			}
			if !strings.HasSuffix(r.Path, "/repos/"+liveRepo+"/branches/main/protection/required_pull_request_reviews") {
				t.Errorf("PATCH of %s; only the review settings may be changed", r.Path)
				continue
			}
			var body struct {
				Count *int `json:"required_approving_review_count"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || body.Count == nil {
				t.Errorf("PATCH body %s: no required_approving_review_count (%v)", r.Body, err)
				continue
			}
			counts = append(counts, *body.Count)
		}
		if !slices.Equal(counts, []int{6, 1}) {
			t.Errorf("required approvals PATCHed to %v, want [6 1]", counts)
		}
		if n, ok := gh.ReviewCount(liveRepo, "main"); !ok || n != 1 {
			t.Errorf("required approvals at the end = %d, want the remembered 1", n)
		}
	})

	t.Run("GitHub: each workflow dispatched once with its inputs", func(t *testing.T) {
		ptrBackup := "ittms_stg_dr_ptr_" + stamp
		want := []string{
			"maintenance.yml@main environment=staging mode=enable",
			"database-backup.yml@main backup-file=ittms_stg_dr_flawed_" + stamp + " db-server=s189t01-ittms-stg-pg environment=staging",
			"postgres-ptr.yml@main confirm-production=false environment=staging new-db-server=s189t01-ittms-stg-pg-ptr restore-time=" + restoreTime.Format("2006-01-02T15:04:05"),
			"database-backup.yml@main backup-file=" + ptrBackup + " db-server=s189t01-ittms-stg-pg-ptr environment=staging",
			"postgres-restore.yml@main backup-file=" + ptrBackup + ".sql.gz confirm-production=false environment=staging",
			"maintenance.yml@main environment=staging mode=disable",
		}
		var got []string
		for _, d := range gh.Dispatches() {
			if d.Repo != liveRepo {
				t.Errorf("dispatch to %s, want %s", d.Repo, liveRepo)
			}
			line := d.Workflow + "@" + d.Ref
			for _, k := range runbook.SortedKeys(d.Inputs) {
				line += " " + k + "=" + d.Inputs[k]
			}
			got = append(got, line)
			if status, conclusion, _ := gh.RunStatus(d.RunID); status != "completed" || conclusion != "success" {
				t.Errorf("run %d of %s is %s/%s; drbot stopped following it early", d.RunID, d.Workflow, status, conclusion)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("dispatches:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if !regexp.MustCompile(`^\d{8}T\d{4}$`).MatchString(stamp) {
			t.Errorf("run start stamp %q is not YYYYMMDDThhmm", stamp)
		}
		if u := gh.Unhandled(); len(u) > 0 {
			t.Errorf("requests no route of the fake serves: %v", u)
		}
	})

	t.Run("Kubernetes: 0, then the remembered 2 and 1", func(t *testing.T) {
		want := []scaleChange{
			{web, 2, 0, 1}, {worker, 1, 0, 1}, // created by the test
			{web, 0, 0, 1}, {worker, 0, 0, 1}, // scale-down: first step, before the freeze
			{web, 2, 5, 6}, {worker, 1, 5, 6}, // scale-up: after the restore, before unfreeze and disable-maintenance
		}
		mu.Lock()
		got := slices.Clone(changes)
		mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("replica changes:\n  %v\nwant:\n  %v", got, want)
		}
		for name, n := range map[string]int32{web: 2, worker: 1} {
			d, err := cluster.admin.AppsV1().Deployments(cluster.namespace).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get deployment %s: %v", name, err)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != n {
				t.Errorf("deployment %s has %v replicas at the end, want %d", name, d.Spec.Replicas, n)
			}
		}
	})

	t.Run("HTTP check hit the temporary URL", func(t *testing.T) {
		hitsMu.Lock()
		defer hitsMu.Unlock()
		if want := []string{"GET /healthcheck drbot http.check"}; !slices.Equal(hits, want) {
			t.Errorf("temporary URL requests = %q, want %q", hits, want)
		}
	})

	t.Run("output names the simulated steps only", func(t *testing.T) {
		checkSimulatedOutput(t, out, errOut)
	})
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// checkSimulatedOutput checks that the banner lists only Azure and Slack
// kinds as simulated, and that in the step output every Azure and Slack step
// says SIMULATED and no GitHub, Kubernetes or HTTP step does.
func checkSimulatedOutput(t *testing.T, out, errOut string) {
	t.Helper()
	banner := regexp.MustCompile(`LIVE run; these steps are SIMULATED: (.*)`).FindStringSubmatch(errOut)
	if banner == nil {
		t.Fatalf("stderr has no LIVE run banner:\n%s", errOut)
	}
	kinds := strings.Split(banner[1], ", ")
	for _, k := range kinds {
		if !strings.HasPrefix(k, "azure.") && !strings.HasPrefix(k, "slack.") {
			t.Errorf("banner says %s is simulated; only azure and slack are", k)
		}
	}
	cat, err := runbook.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	steps := cat["scenario-2"].Steps
	// Each line goes to the step it names (its header or a quoted title);
	// lines that name none — progress, links, prompts — to the last named.
	lines := make([][]string, len(steps))
	current := -1
	for _, line := range strings.Split(out, "\n") {
		for i, s := range steps {
			if title := onMain(s.Title); strings.Contains(line, `"`+title+`"`) || strings.Contains(line, fmt.Sprintf("Step %d/%d: %s", i+1, len(steps), title)) {
				current = i
				break
			}
		}
		if current >= 0 {
			lines[current] = append(lines[current], line)
		}
	}
	for i, s := range steps {
		text := strings.Join(lines[i], "\n")
		if !strings.Contains(text, `"`+onMain(s.Title)+`" done`) {
			t.Errorf("step %s (%s) is not done in the output:\n%s", s.ID, s.Action, text)
			continue
		}
		said := strings.Contains(text, "SIMULATED")
		family, _, _ := strings.Cut(s.Action, ".")
		switch family {
		case "azure", "slack":
			if !slices.Contains(kinds, s.Action) {
				t.Errorf("step %s (%s) is not in the banner's simulated list", s.ID, s.Action)
			}
			if !said {
				t.Errorf("step %s (%s) does not say SIMULATED:\n%s", s.ID, s.Action, text)
			}
		case "github", "kubernetes", "http":
			if said {
				t.Errorf("step %s (%s) says SIMULATED:\n%s", s.ID, s.Action, text)
			}
		}
	}
}

// TestLiveRehearsalWithoutGitHubToken checks that --live without GitHub
// credentials stops before anything runs, saying what to set or simulate.
func TestLiveRehearsalWithoutGitHubToken(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	code, out, errOut := runCLI(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, "",
		"rehearse", "scenario-2", "--live", "--db", db, "--config", "../../examples/drbot.yaml")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"GITHUB_TOKEN", "--simulate=github"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not name %s:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "run id") {
		t.Errorf("a run was started:\n%s", out)
	}
	assertNoRuns(t, db)
}

// liveCluster is a fresh namespace on the test API server and a kubeconfig
// for drbot that reaches it through the context liveKubeContext.
type liveCluster struct {
	admin      kubernetes.Interface
	namespace  string
	kubeconfig string
}

// newLiveCluster skips the test unless scripts/kube-test-env.sh's API server
// is there (DRBOT_TEST_KUBECONFIG), creates a namespace deleted after the
// test, and writes drbot's kubeconfig: liveKubeContext is the admin's
// context, and the current context is an unreachable cluster, so a scale
// that ignored the environment's kube_context would fail.
func newLiveCluster(t *testing.T) *liveCluster {
	t.Helper()
	adminPath := kubetest.AdminKubeconfig(t)
	admin := kubetest.Clientset(t, adminPath)

	raw, err := clientcmd.LoadFromFile(adminPath)
	if err != nil {
		t.Fatalf("load %s: %v", adminPath, err)
	}
	current, ok := raw.Contexts[raw.CurrentContext]
	if !ok {
		t.Fatalf("%s has no current context", adminPath)
	}
	kc := clientcmdapi.NewConfig()
	maps.Copy(kc.Clusters, raw.Clusters)
	maps.Copy(kc.AuthInfos, raw.AuthInfos)
	kc.Contexts[liveKubeContext] = current.DeepCopy()
	kc.Clusters["unreachable"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.Contexts["unreachable"] = &clientcmdapi.Context{Cluster: "unreachable", AuthInfo: current.AuthInfo}
	kc.CurrentContext = "unreachable"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}

	return &liveCluster{admin: admin, namespace: kubetest.Namespace(t, admin, "drbot-live-"), kubeconfig: path}
}

// writeLiveConfig writes testdata/live/drbot.yaml with the test's kube
// context, namespace and temporary URL filled in, and returns its path.
func writeLiveConfig(t *testing.T, dir, namespace, tempURL string) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("testdata", "live", "drbot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("${KUBE_CONTEXT}", liveKubeContext, "${NAMESPACE}", namespace, "${TEMP_URL}", tempURL).Replace(string(tmpl))
	path := filepath.Join(dir, "drbot.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// storedRun returns the only run in the rehearsal store at db.
func storedRun(t *testing.T, db string) *runbook.Run {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(ctx, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs stored, want 1", len(runs))
	}
	return runs[0]
}
