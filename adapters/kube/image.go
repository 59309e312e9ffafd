package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/runbook"
)

var _ runbook.Action = (*ImageAction)(nil)

// ImageAction implements kubernetes.image: it reads the image a deployment
// runs (RBAC: get on deployments) and remembers its tag, the commit SHA a
// deploy workflow must be given so that it deploys an image that exists,
// rather than the name of a branch. It changes nothing.
type ImageAction struct{ c *Client }

// Run reads the deployment's container image and returns its commit tag.
func (a *ImageAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeImage(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	d, err := a.c.cs.AppsV1().Deployments(spec.Namespace).Get(ctx, spec.Deployment, metav1.GetOptions{})
	if err != nil {
		o := op{verb: "get", resource: "deployments", namespace: spec.Namespace, name: spec.Deployment}
		return runbook.Result{}, o.apiError(ctx, fmt.Sprintf("read the image of %s/%s", spec.Namespace, spec.Deployment), err)
	}
	containers := d.Spec.Template.Spec.Containers
	image := ""
	for i, c := range containers {
		if (spec.Container == "" && i == 0) || c.Name == spec.Container {
			image = c.Image
			break
		}
	}
	if image == "" {
		return runbook.Result{}, fmt.Errorf("deployment %s/%s has no container %q", spec.Namespace, spec.Deployment, spec.Container)
	}
	sha, err := runbook.ImageCommit(image)
	if err != nil {
		return runbook.Result{}, fmt.Errorf("deployment %s/%s: %w; skip this step giving the SHA to deploy", spec.Namespace, spec.Deployment, err)
	}
	return runbook.Result{Summary: fmt.Sprintf("%s/%s runs %s: the deploy gets commit %s", spec.Namespace, spec.Deployment, image, sha), Remember: sha}, nil
}
