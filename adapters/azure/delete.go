package azure

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

var _ runbook.Action = (*DeleteAction)(nil)

// Checkpoint keys of a deletion.
const (
	// checkpointDeleting names the server whose deletion is about to start;
	// saved before the DELETE is sent.
	checkpointDeleting = "deleting"
	// checkpointResumeToken is the long-running operation's resume token,
	// saved as soon as the DELETE is accepted.
	checkpointResumeToken = "resume_token"
)

// DeleteAction implements azure.postgres.delete (destructive): it deletes a
// PTR copy and follows the long-running operation to its end. It refuses,
// before any call, every live server of every configured environment
// (Options.Protected), whatever the runbook asks; the engine's guard checks
// the same, and this is the last line. A server already gone is reported as
// such, not as a failure. The operation's resume token is saved in the
// step's checkpoint, so a restarted drbot re-attaches to the deletion
// instead of starting another. RBAC: flexibleServers/read and /delete, and
// the operation results' read to follow it.
type DeleteAction struct{ c *Client }

// Run deletes the step's server and waits for the deletion to finish.
func (a *DeleteAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeAzureServer(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	rg, name := spec.ResourceGroup, spec.Server
	if a.c.isProtected(name) {
		a.c.logger(req).Warn("delete of a live server refused", zap.String("server", name))
		return runbook.Result{}, runbook.Refusef("refused: %s is the live server of an environment in drbot.yaml; drbot never deletes a live server, whatever the runbook says", name)
	}
	sc, sub, err := a.c.serversClient(spec.Subscription)
	if err != nil {
		return runbook.Result{}, err
	}
	log := a.c.logger(req).With(zap.String("server", name), zap.String("resource_group", rg))
	link := portalLink(sub, rg, name)
	delOp := op{what: fmt.Sprintf("delete server %s in resource group %s", name, rg), permission: permServerDelete, scope: "resource group " + rg}

	poller, gone, err := a.begin(ctx, req, sc, sub, spec.ServerSpec, delOp, log)
	if err != nil {
		return runbook.Result{Links: []runbook.Link{link}}, err
	}
	if gone {
		return runbook.Result{Summary: fmt.Sprintf("server %s is already gone from resource group %s; nothing to delete", name, rg)}, nil
	}
	start := a.c.clock.Now()
	progress(req)(ctx, fmt.Sprintf("deleting server %s in %s; following the operation", name, rg), link)
	if err := a.follow(ctx, poller, delOp); err != nil {
		return runbook.Result{Links: []runbook.Link{link}}, err
	}
	took := runbook.HumanDuration(a.c.clock.Now().Sub(start))
	log.Info("server deleted", zap.String("took", took))
	return runbook.Result{Summary: fmt.Sprintf("server %s deleted from resource group %s (%s)", name, rg, took)}, nil
}

// begin starts the deletion, or re-attaches to the one an earlier process
// started (its resume token in the checkpoint). gone is true when the server
// does not exist (any more).
func (a *DeleteAction) begin(ctx context.Context, req runbook.Request, sc *armpostgresqlflexibleservers.ServersClient, sub string, spec runbook.ServerSpec, delOp op, log *zap.Logger,
) (*runtime.Poller[armpostgresqlflexibleservers.ServersClientDeleteResponse], bool, error) {
	rg, name := spec.ResourceGroup, spec.Server
	if token := req.Checkpoint[checkpointResumeToken]; token != "" {
		log.Info("re-attaching to the deletion")
		p, err := sc.BeginDelete(ctx, rg, name, &armpostgresqlflexibleservers.ServersClientBeginDeleteOptions{ResumeToken: token})
		if err != nil {
			return nil, false, fmt.Errorf("re-attach to the deletion of %s: %w", name, err)
		}
		return p, false, nil
	}
	info, err := a.c.server(ctx, sub, rg, name)
	if err != nil {
		return nil, false, err
	}
	if !info.Found {
		log.Info("server already gone", zap.Bool("after_restart", req.Checkpoint[checkpointDeleting] != ""))
		return nil, true, nil
	}
	if err := save(ctx, req, map[string]string{checkpointDeleting: name}); err != nil {
		return nil, false, err
	}
	log.Info("deleting server", zap.String("state", info.State))
	p, err := sc.BeginDelete(ctx, rg, name, nil)
	if isNotFound(err) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, a.c.apiError(ctx, delOp, err)
	}
	token, err := p.ResumeToken()
	if err != nil {
		// The operation already ended (a 204): nothing to re-attach to.
		return p, false, nil
	}
	if err := save(ctx, req, map[string]string{checkpointDeleting: name, checkpointResumeToken: token}); err != nil {
		return nil, false, err
	}
	return p, false, nil
}

// follow polls the deletion every poll interval until it ends. A transient
// failure of one poll is waited out: the deletion goes on in Azure meanwhile.
func (a *DeleteAction) follow(ctx context.Context, p *runtime.Poller[armpostgresqlflexibleservers.ServersClientDeleteResponse], delOp op) error {
	for !p.Done() {
		if _, err := p.Poll(ctx); err != nil {
			if err := a.c.apiError(ctx, delOp, err); !runbook.IsRetryable(err) {
				return err
			}
		}
		if p.Done() {
			break
		}
		if err := sleep(ctx, a.c.poll); err != nil {
			return fmt.Errorf("%s: still deleting when the step ended: %w", delOp.what, err)
		}
	}
	if _, err := p.Result(ctx); err != nil {
		if isNotFound(err) {
			return nil
		}
		return a.c.apiError(ctx, delOp, err)
	}
	return nil
}

// save persists a checkpoint, when the engine keeps them.
func save(ctx context.Context, req runbook.Request, cp map[string]string) error {
	if req.Save == nil {
		return nil
	}
	if err := req.Save(ctx, cp); err != nil {
		return fmt.Errorf("save checkpoint before deleting: %w", err)
	}
	return nil
}
