package preflight_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
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
		grantReads(t, admin, limitedConfig, ns)
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

// grantReads lets the limited user read deployments and their scale in ns,
// and waits until RBAC says so (the authorizer reads bindings from an
// informer).
func grantReads(t *testing.T, admin kubernetes.Interface, limitedConfig, ns string) {
	t.Helper()
	ctx := context.Background()
	limited := kubetest.Clientset(t, limitedConfig)
	who, err := limited.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("who is the limited user: %v", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "preflight-reads"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"get"}},
		},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "preflight-reads"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: who.Status.UserInfo.Username}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: "apps", Resource: "deployments", Subresource: "scale"},
	}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := limited.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err == nil && res.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC for %s did not take effect: %v", who.Status.UserInfo.Username, err)
		}
	}
}
