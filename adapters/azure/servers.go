package azure

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

var (
	_ runbook.Action = (*WaitAction)(nil)
	_ runbook.Action = (*CheckGoneAction)(nil)
	_ runbook.Action = (*PreparePTRAction)(nil)
)

// ready is the state of a server that takes connections and no operation.
const ready = string(armpostgresqlflexibleservers.ServerStateReady)

// serverInfo is what drbot reads of a flexible server.
type serverInfo struct {
	Name     string
	Found    bool
	State    string    // Ready, Provisioning, Stopped, Disabled, Dropping…
	Version  string    // PostgreSQL major version, e.g. "16"
	Earliest time.Time // earliest restore point; zero if Azure gave none
}

// describe says what was found, e.g. "Ready, PostgreSQL 16, earliest restore
// point 2026-11-19 09:30:00 UTC (09:30:00 GMT)".
func (s serverInfo) describe(loc *time.Location) string {
	if !s.Found {
		return "not found"
	}
	parts := []string{orUnknown(s.State, "state unknown")}
	if s.Version != "" {
		parts = append(parts, "PostgreSQL "+s.Version)
	}
	if !s.Earliest.IsZero() {
		parts = append(parts, "earliest restore point "+runbook.FormatBoth(s.Earliest, loc))
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// server reads a server. A server (or resource group) that does not exist is
// Found false, not an error.
func (c *Client) server(ctx context.Context, sub, rg, name string) (serverInfo, error) {
	info := serverInfo{Name: name}
	sc, _, err := c.serversClient(sub)
	if err != nil {
		return info, err
	}
	resp, err := sc.Get(ctx, rg, name, nil)
	if isNotFound(err) {
		return info, nil
	}
	if err != nil {
		return info, c.apiError(ctx, op{
			what: fmt.Sprintf("read server %s in resource group %s", name, rg), permission: permServerRead, scope: "resource group " + rg,
		}, err)
	}
	info.Found = true
	if p := resp.Properties; p != nil {
		if p.State != nil {
			info.State = string(*p.State)
		}
		if p.Version != nil {
			info.Version = string(*p.Version)
		}
		if p.Backup != nil && p.Backup.EarliestRestoreDate != nil {
			info.Earliest = p.Backup.EarliestRestoreDate.UTC()
		}
	}
	return info, nil
}

// serverParams decodes a step's server parameters and resolves its
// subscription.
func (c *Client) serverParams(req runbook.Request) (runbook.AzureServer, string, error) {
	spec, err := runbook.DecodeAzureServer(req.Params)
	if err != nil {
		return runbook.AzureServer{}, "", err
	}
	_, sub, err := c.serversClient(spec.Subscription)
	return spec, sub, err
}

// WaitAction implements azure.postgres.wait: it reads the server every poll
// interval until it exists and is Ready (the PTR or deploy workflow creates
// it), reporting each new state on the timeline, for as long as the step's
// context allows. Transient Azure errors while waiting are waited out too.
// RBAC: flexibleServers/read.
type WaitAction struct{ c *Client }

// Run waits for the step's server to be Ready.
func (a *WaitAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, sub, err := a.c.serverParams(req)
	if err != nil {
		return runbook.Result{}, err
	}
	log := a.c.logger(req).With(zap.String("server", spec.Server))
	link := portalLink(sub, spec.ResourceGroup, spec.Server)
	start, seen := a.c.clock.Now(), ""
	for {
		info, err := a.c.server(ctx, sub, spec.ResourceGroup, spec.Server)
		state := ""
		switch {
		case ctx.Err() != nil:
			return runbook.Result{Links: []runbook.Link{link}}, a.notReady(spec.Server, start, seen, ctx.Err())
		case err != nil && !runbook.IsRetryable(err):
			return runbook.Result{Links: []runbook.Link{link}}, err
		case err != nil:
			log.Warn("transient error while waiting", zap.Error(err))
			state = "unreadable for now (" + err.Error() + ")"
		case !info.Found:
			state = "not found yet"
		case info.State == ready:
			waited := runbook.HumanDuration(a.c.clock.Now().Sub(start))
			log.Info("server ready", zap.String("waited", waited))
			return runbook.Result{Summary: fmt.Sprintf("server %s is Ready (%s) after %s", spec.Server, info.describe(a.c.loc), waited),
				Links: []runbook.Link{link}}, nil
		default:
			state = info.State
		}
		if state != seen {
			progress(req)(ctx, fmt.Sprintf("server %s in %s: %s; waiting for Ready", spec.Server, spec.ResourceGroup, state), link)
			seen = state
		}
		if err := sleep(ctx, a.c.poll); err != nil {
			return runbook.Result{Links: []runbook.Link{link}}, a.notReady(spec.Server, start, seen, err)
		}
	}
}

// notReady is the error of a wait the step's context ended.
func (a *WaitAction) notReady(server string, start time.Time, last string, err error) error {
	return fmt.Errorf("server %s not Ready after %s (last: %s): %w", server, runbook.HumanDuration(a.c.clock.Now().Sub(start)), orUnknown(last, "not read yet"), err)
}

// CheckGoneAction implements azure.postgres.check_gone, scenario 1's first
// look at the live server: it passes when the server is not found or not
// Ready, saying what it found, and fails when it is Ready (nothing to
// recreate). RBAC: flexibleServers/read.
type CheckGoneAction struct{ c *Client }

// Run checks that the step's server is gone or unusable.
func (a *CheckGoneAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, sub, err := a.c.serverParams(req)
	if err != nil {
		return runbook.Result{}, err
	}
	info, err := a.c.server(ctx, sub, spec.ResourceGroup, spec.Server)
	if err != nil {
		return runbook.Result{}, err
	}
	link := portalLink(sub, spec.ResourceGroup, spec.Server)
	at := runbook.FormatBoth(a.c.clock.Now(), a.c.loc)
	a.c.logger(req).Info("live server checked", zap.String("server", spec.Server), zap.Bool("found", info.Found), zap.String("state", info.State))
	switch {
	case !info.Found:
		return runbook.Result{Summary: fmt.Sprintf("server %s is gone: not found in resource group %s (checked %s)", spec.Server, spec.ResourceGroup, at)}, nil
	case info.State != ready:
		return runbook.Result{Summary: fmt.Sprintf("server %s exists but is not usable: %s (checked %s)", spec.Server, info.describe(a.c.loc), at),
			Links: []runbook.Link{link}}, nil
	}
	return runbook.Result{Links: []runbook.Link{link}}, runbook.Refusef(
		"server %s in resource group %s is Ready (%s, checked %s): it is not lost, so there is nothing to recreate; check the incident before going on (abort this run, or skip this step if the server is unusable in another way)",
		spec.Server, spec.ResourceGroup, info.describe(a.c.loc), at)
}

// PreparePTRAction implements azure.postgres.prepare_ptr, run before the PTR
// workflow: the restore time must lie inside the live server's restore
// window (its earliest restore point to 5 minutes ago), and the copy needs a
// free name. When the wanted name is taken (a rerun: the seed's "it may fail
// if the new server was already created"), it proposes the next free one,
// …-ptr2, …-ptr3, and remembers the name to use. RBAC: flexibleServers/read.
type PreparePTRAction struct{ c *Client }

// Run checks the window and finds the name the copy gets.
func (a *PreparePTRAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodePTR(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	_, sub, err := a.c.serversClient(spec.Subscription)
	if err != nil {
		return runbook.Result{}, err
	}
	rg, loc := spec.ResourceGroup, a.c.loc
	live, err := a.c.server(ctx, sub, rg, spec.Server)
	if err != nil {
		return runbook.Result{}, err
	}
	if !live.Found {
		return runbook.Result{}, runbook.Refusef("the live server %s is not in resource group %s: a point-in-time restore copies it, so it must exist (if it is lost, this is scenario 1)",
			spec.Server, rg)
	}
	from, to := runbook.PTRWindow(live.Earliest, a.c.clock.Now())
	if err := runbook.CheckPTRWindow(spec.Server, spec.RestoreTime, from, to, loc); err != nil {
		return runbook.Result{}, err
	}
	name, taken, err := a.freeName(ctx, sub, rg, spec.PTRServer)
	if err != nil {
		return runbook.Result{}, err
	}
	window := fmt.Sprintf("restore time %s is inside the restore window of %s (%s to %s)",
		runbook.FormatBoth(spec.RestoreTime, loc), spec.Server, runbook.FormatBoth(from, loc), runbook.FormatBoth(to, loc))
	if live.Earliest.IsZero() {
		window += "; Azure reported no earliest restore point, so the window assumes the seed's 7 days"
	}
	naming := fmt.Sprintf("PTR server name %s is free", name)
	if len(taken) > 0 {
		naming = fmt.Sprintf("PTR server name %s is taken; using %s instead", strings.Join(taken, ", "), name)
	}
	a.c.logger(req).Info("ptr prepared", zap.String("ptr_server", name), zap.Strings("taken", taken))
	return runbook.Result{Summary: window + "; " + naming, Remember: name}, nil
}

// freeName returns wanted if no server has that name in rg, else the first
// free proposal, with the taken names tried before it. Live servers of any
// environment count as taken.
func (a *PreparePTRAction) freeName(ctx context.Context, sub, rg, wanted string) (string, []string, error) {
	var taken []string
	for _, name := range append([]string{wanted}, runbook.PTRProposals(wanted)...) {
		if a.c.isProtected(name) {
			taken = append(taken, name+" (a live server)")
			continue
		}
		info, err := a.c.server(ctx, sub, rg, name)
		if err != nil {
			return "", taken, err
		}
		if !info.Found {
			return name, taken, nil
		}
		taken = append(taken, fmt.Sprintf("%s (%s)", name, orUnknown(info.State, "exists")))
	}
	return "", taken, runbook.Refusef("no free PTR server name: %s are all taken in resource group %s; delete old copies or give another ptr_server",
		strings.Join(taken, ", "), rg)
}
