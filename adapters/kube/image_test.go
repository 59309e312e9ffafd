package kube

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/runbook"
)

func withImages(name string, images ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: []string{"app", "sidecar"}[i], Image: img})
	}
	return d
}

func TestImageAction(t *testing.T) {
	const sha = "5e1f7a3c9b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f"
	tests := []struct {
		name    string
		dep     *appsv1.Deployment
		params  runbook.Params
		want    string
		wantErr string
	}{
		{name: "commit tag", dep: withImages("web", "ghcr.io/dfe-digital/app:"+sha),
			params: runbook.Params{"namespace": ns, "deployment": "web"}, want: sha},
		{name: "commit tag with digest and registry port", dep: withImages("web", "registry:5000/app:"+sha[:12]+"@sha256:abcd"),
			params: runbook.Params{"namespace": ns, "deployment": "web"}, want: sha[:12]},
		{name: "named container", dep: withImages("web", "ghcr.io/app:latest", "ghcr.io/side:"+sha),
			params: runbook.Params{"namespace": ns, "deployment": "web", "container": "sidecar"}, want: sha},
		{name: "tag that is not a commit", dep: withImages("web", "ghcr.io/app:latest"),
			params: runbook.Params{"namespace": ns, "deployment": "web"}, wantErr: `tagged "latest", not a commit SHA`},
		{name: "no tag", dep: withImages("web", "ghcr.io/app"),
			params: runbook.Params{"namespace": ns, "deployment": "web"}, wantErr: "has no tag"},
		{name: "no such container", dep: withImages("web", "ghcr.io/app:"+sha),
			params: runbook.Params{"namespace": ns, "deployment": "web", "container": "x"}, wantErr: `has no container "x"`},
		{name: "no such deployment", dep: withImages("other", "ghcr.io/app:"+sha),
			params: runbook.Params{"namespace": ns, "deployment": "web"}, wantErr: "deployment bat-staging/web not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, newFakeClientset(t, tt.dep), nil)
			res, err := c.Actions()[runbook.KindImage].Run(context.Background(), runbook.Request{RunID: "dr-1", StepID: "read-image", Params: tt.params})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Remember != tt.want || !strings.Contains(res.Summary, "the deploy gets commit "+tt.want) {
				t.Errorf("remember %v, summary %q; want %s", res.Remember, res.Summary, tt.want)
			}
		})
	}
}
