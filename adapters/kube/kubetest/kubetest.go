// Package kubetest is what the tests of drbot's Kubernetes adapter and of its
// live rehearsal share to run against a real kube-apiserver (started by
// scripts/kube-test-env.sh) or client-go's fake clientset: the kubeconfigs,
// a namespace per test, valid deployments, and a stand-in for the deployment
// controller, which neither of them runs.
package kubetest

import (
	"context"
	"os"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// AdminKubeconfig returns the path of the kubeconfig scripts/kube-test-env.sh
// writes for a user in group system:masters, and skips the test when
// DRBOT_TEST_KUBECONFIG is not set, that is when no test API server runs.
func AdminKubeconfig(t testing.TB) string {
	t.Helper()
	return kubeconfig(t, "DRBOT_TEST_KUBECONFIG")
}

// LimitedKubeconfig returns the path of the kubeconfig scripts/kube-test-env.sh
// writes for user drbot-limited, who has no RBAC until a test grants some, and
// skips the test when DRBOT_TEST_KUBECONFIG_LIMITED is not set.
func LimitedKubeconfig(t testing.TB) string {
	t.Helper()
	return kubeconfig(t, "DRBOT_TEST_KUBECONFIG_LIMITED")
}

func kubeconfig(t testing.TB, env string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Skip(env + " not set; run scripts/kube-test-env.sh")
	}
	return path
}

// Clientset returns a clientset for the kubeconfig at path. It may make more
// requests per second than client-go's default of 5: a test and
// PlayController make many in a short time.
func Clientset(t testing.TB, path string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client for %s: %v", path, err)
	}
	return cs
}

// Namespace creates a namespace named prefix and a random suffix, returns its
// name, and deletes it when the test ends (without a controller-manager it
// then stays Terminating, which is harmless).
func Namespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// Deployment returns a deployment of replicas that the API server accepts (it
// checks the selector against the template's labels), with generation 1 and
// its status already settled at replicas. The fake clientset keeps that
// status; the API server ignores it on create, and PlayController settles it.
func Deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: replicas, AvailableReplicas: replicas,
		},
	}
}

// Deploy creates Deployment(ns, name, replicas) through cs.
func Deploy(t testing.TB, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), Deployment(ns, name, replicas), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
}
