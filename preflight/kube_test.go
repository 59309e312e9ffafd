package preflight_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/adapters/kube"
	"github.com/drbot-dev/drbot/adapters/kube/kubetest"
	"github.com/drbot-dev/drbot/preflight"
)

func runKube(t *testing.T, k preflight.Kube, target preflight.KubeTarget) []preflight.Check {
	t.Helper()
	res := preflight.Run(context.Background(), preflight.Sources{Kube: k, GitHubSkip: "not in this test", AzureSkip: "not in this test"},
		[]preflight.Target{{Service: "s", Env: "e", Kube: target}}, nil)
	var out []preflight.Check
	for _, c := range res.Tables[0].Checks {
		if c.Family == preflight.FamilyKube {
			out = append(out, c)
		}
	}
	return out
}

func status(checks []preflight.Check, name string) (preflight.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return preflight.Check{}, false
}

// TestKubeFakeClientset: a missing namespace and deployment are named with
// the drbot.yaml key to fix, on client-go's fake clientset.
func TestKubeFakeClientset(t *testing.T) {
	cs := fake.NewClientset(kubetest.Deployment("bat-staging", "web", 2))
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	c := kube.NewForClientset(cs, kube.Options{Logger: zaptest.NewLogger(t)})
	checks := runKube(t, c, preflight.KubeTarget{Namespace: "bat-staging", Deployments: []string{"web", "worker"}, Key: "services.s.environments.e", ContextKey: "services.s.environments.e.kube_context"})
	want := map[string]preflight.Status{
		"namespace bat-staging":     preflight.Fail, // the fake has no namespace object
		"deployment web":            preflight.OK,
		"deployment worker":         preflight.Fail,
		"may get deployments/scale": preflight.OK, "may update deployments/scale": preflight.OK,
	}
	for name, st := range want {
		c, ok := status(checks, name)
		if !ok || c.Status != st {
			t.Errorf("%s = %+v, want %s", name, c, st)
		}
	}
	if c, _ := status(checks, "deployment worker"); !strings.Contains(c.Fix, "services.s.environments.e.deployments") {
		t.Errorf("fix of the missing deployment = %q", c.Fix)
	}
}

// TestIntegrationKubeRBAC runs the checks against the real test API server
// (scripts/kube-test-env.sh): the admin passes every check; the limited user,
// granted only reads, fails on update deployments/scale, named with its verb
// and resource; without any grant it may not even read the deployments.
func TestIntegrationKubeRBAC(t *testing.T) {
	adminConfig := kubetest.AdminKubeconfig(t)
	limitedConfig := kubetest.LimitedKubeconfig(t)
	admin := kubetest.Clientset(t, adminConfig)
	ns := kubetest.Namespace(t, admin, "drbot-preflight-")
	kubetest.Deploy(t, admin, ns, "web", 2)
	kubetest.Deploy(t, admin, ns, "worker", 1)
	target := preflight.KubeTarget{Namespace: ns, Deployments: []string{"web", "worker"}, Key: "services.s.environments.e"}

	t.Run("admin", func(t *testing.T) {
		checks := runKube(t, kube.NewRouter(adminConfig, zaptest.NewLogger(t)), target)
		for _, c := range checks {
			if c.Status != preflight.OK {
				t.Errorf("%s: %s %s", c.Name, c.Status, c.Detail)
			}
		}
	})

	t.Run("limited without rights", func(t *testing.T) {
		checks := runKube(t, kube.NewRouter(limitedConfig, zaptest.NewLogger(t)), target)
		want := map[string]preflight.Status{
			"namespace " + ns: preflight.Skip, "deployment web": preflight.Fail,
			"may get deployments/scale": preflight.Fail, "may update deployments/scale": preflight.Fail,
		}
		for name, st := range want {
			if c, ok := status(checks, name); !ok || c.Status != st {
				t.Errorf("%s = %+v, want %s", name, c, st)
			}
		}
	})

	t.Run("limited with reads only", func(t *testing.T) {
		kubetest.GrantReadOnly(t, admin, limitedConfig, ns)
		checks := runKube(t, kube.NewRouter(limitedConfig, zaptest.NewLogger(t)), target)
		for _, name := range []string{"deployment web", "deployment worker", "may get deployments/scale"} {
			if c, _ := status(checks, name); c.Status != preflight.OK {
				t.Errorf("%s = %+v, want ok", name, c)
			}
		}
		c, _ := status(checks, "may update deployments/scale")
		if c.Status != preflight.Fail || !strings.Contains(c.Detail, "update deployments/scale (apps) in "+ns) ||
			!strings.Contains(c.Fix, "grant update on deployments/scale") {
			t.Errorf("update check = %+v, want a failure naming the verb and resource", c)
		}
	})
}
