package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// object is a rendered Kubernetes object, as generic YAML.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { s, _ := dig(o, "metadata", "name").(string); return s }

// dig follows keys (string for maps, int for lists) through v.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, isObj := v.(object); isObj {
					m = o
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// render builds a kustomization with kubectl kustomize. Without kubectl
// (no dependency of the build; Debian's kubernetes-client package has it)
// the rendering tests skip and say so; TestManifestsParse still checks
// every file.
func render(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH: kustomize rendering not checked (TestManifestsParse still checks the files)")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return decodeAll(t, out)
}

func decodeAll(t *testing.T, b []byte) []object {
	t.Helper()
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o map[string]any // not object: nested maps would decode as object too
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if o != nil {
			objs = append(objs, object(o))
		}
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

func has(objs []object, kind string) bool {
	return slices.ContainsFunc(objs, func(o object) bool { return o.kind() == kind })
}

// TestManifestsParse: every YAML file under kubernetes/ is valid YAML
// (each document of it), with or without kubectl.
func TestManifestsParse(t *testing.T) {
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("kubernetes.yaml"); err == nil {
		t.Error("deploy/kubernetes.yaml is back: the manifests are deploy/kubernetes/ (kustomize)")
	}
}

// container is the drbot container of a rendered deployment.
func container(t *testing.T, dep object) map[string]any {
	t.Helper()
	c, ok := dig(dep, "spec", "template", "spec", "containers", 0).(map[string]any)
	if !ok {
		t.Fatal("deployment has no container")
	}
	return c
}

func envOf(c map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range dig(c, "env").([]any) {
		m := e.(map[string]any)
		v, _ := m["value"].(string)
		out[m["name"].(string)] = v
	}
	return out
}

// checkCommon is what both renderings promise: probes on /healthz and
// /readyz, the metrics port and its Service, requests, secrets as files
// under the secret's mount, and the least-RBAC Role.
func checkCommon(t *testing.T, objs []object) object {
	t.Helper()
	dep := find(t, objs, "Deployment", "drbot")
	c := container(t, dep)
	if got := dig(c, "livenessProbe", "httpGet", "path"); got != "/healthz" {
		t.Errorf("liveness probe path %v, want /healthz", got)
	}
	if got := dig(c, "readinessProbe", "httpGet", "path"); got != "/readyz" {
		t.Errorf("readiness probe path %v, want /readyz", got)
	}
	if got := dig(c, "ports", 0, "name"); got != "metrics" {
		t.Errorf("first port %v, want metrics", got)
	}
	if !slices.Contains(dig(c, "args").([]any), any("--listen=:8080")) {
		t.Errorf("args %v lack --listen=:8080", dig(c, "args"))
	}
	if dig(c, "resources", "requests", "cpu") == nil || dig(c, "resources", "requests", "memory") == nil {
		t.Error("no cpu and memory requests")
	}
	env := envOf(c)
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "GITHUB_TOKEN", "DRBOT_DB"} {
		if v, ok := env[name]; ok && name != "DRBOT_DB" {
			t.Errorf("%s=%q in the environment: secrets are files (%s_FILE)", name, v, name)
		}
	}
	for name, v := range env {
		if strings.HasSuffix(name, "_FILE") && !strings.HasPrefix(v, "/var/run/secrets/drbot/") {
			t.Errorf("%s=%s is not under the secret's mount", name, v)
		}
	}
	svc := find(t, objs, "Service", "drbot-metrics")
	if got := dig(svc, "spec", "ports", 0, "name"); got != "metrics" {
		t.Errorf("service port %v, want metrics", got)
	}
	role := find(t, objs, "Role", "drbot-scale")
	want := []any{
		map[string]any{"apiGroups": []any{"apps"}, "resources": []any{"deployments"}, "verbs": []any{"get", "list", "watch"}},
		map[string]any{"apiGroups": []any{"apps"}, "resources": []any{"deployments/scale"}, "verbs": []any{"get", "update"}},
	}
	got, _ := yaml.Marshal(role["rules"])
	wantY, _ := yaml.Marshal(want)
	if !bytes.Equal(got, wantY) {
		t.Errorf("Role rules:\n%s\nwant exactly:\n%s", got, wantY)
	}
	if has(objs, "ClusterRole") || has(objs, "ClusterRoleBinding") {
		t.Error("a cluster-wide role: drbot needs only the namespaced scale Role")
	}
	return dep
}

func TestBaseIsOneReplicaOnSQLite(t *testing.T) {
	objs := render(t, "kubernetes/base")
	dep := checkCommon(t, objs)
	if got := dig(dep, "spec", "replicas"); got != 1 {
		t.Errorf("replicas %v, want 1", got)
	}
	if got := dig(dep, "spec", "strategy", "type"); got != "Recreate" {
		t.Errorf("strategy %v, want Recreate (one writer on a ReadWriteOnce volume)", got)
	}
	find(t, objs, "PersistentVolumeClaim", "drbot-data")
	if env := envOf(container(t, dep)); !strings.HasPrefix(env["DRBOT_DB"], "/data/") {
		t.Errorf("DRBOT_DB=%q, want a file on the /data volume", env["DRBOT_DB"])
	}
	if has(objs, "PodDisruptionBudget") {
		t.Error("a PodDisruptionBudget on one replica would block every drain")
	}
}

func TestHAOverlayIsReplicasOnPostgres(t *testing.T) {
	objs := render(t, "kubernetes/overlays/ha")
	dep := checkCommon(t, objs)
	if n, _ := dig(dep, "spec", "replicas").(int); n < 2 {
		t.Errorf("replicas %v, want 2 or more", dig(dep, "spec", "replicas"))
	}
	if got := dig(dep, "spec", "strategy", "type"); got != "RollingUpdate" {
		t.Errorf("strategy %v, want RollingUpdate", got)
	}
	if got := dig(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable"); got != 0 {
		t.Errorf("maxUnavailable %v, want 0", got)
	}
	if has(objs, "PersistentVolumeClaim") {
		t.Error("a PersistentVolumeClaim in the PostgreSQL overlay")
	}
	for _, v := range dig(dep, "spec", "template", "spec", "volumes").([]any) {
		if dig(v, "persistentVolumeClaim") != nil {
			t.Errorf("a volume from a claim: %v", v)
		}
	}
	env := envOf(container(t, dep))
	// Empty, not absent: the image sets DRBOT_DB=/data/drbot.db, which
	// would win over DRBOT_DB_FILE.
	if v, ok := env["DRBOT_DB"]; !ok || v != "" {
		t.Errorf("DRBOT_DB=%q (set %v), want set empty: the image's SQLite path would win, and the URL carries a password (DRBOT_DB_FILE)", v, ok)
	}
	if env["DRBOT_DB_FILE"] == "" {
		t.Error("no DRBOT_DB_FILE")
	}
	pdb := find(t, objs, "PodDisruptionBudget", "drbot")
	if got := dig(pdb, "spec", "selector", "matchLabels", "app"); got != "drbot" {
		t.Errorf("PDB selects app=%v, want drbot", got)
	}
	if dig(dep, "spec", "template", "spec", "affinity", "podAntiAffinity") == nil {
		t.Error("no pod anti-affinity")
	}
}
