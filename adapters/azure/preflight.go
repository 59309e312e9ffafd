package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/drbot-dev/drbot/preflight"
	"github.com/drbot-dev/drbot/runbook"
)

var _ preflight.Azure = (*Client)(nil)

// Server reads a flexible server for preflight: found, state and earliest
// restore point (ARM GET; flexibleServers/read).
func (c *Client) Server(ctx context.Context, sub, rg, name string) (preflight.ServerInfo, error) {
	info, err := c.server(ctx, sub, rg, name)
	if err != nil {
		return preflight.ServerInfo{}, err
	}
	out := preflight.ServerInfo{Lookup: preflight.Missing, State: info.State, Earliest: info.Earliest}
	if info.Found {
		out.Lookup = preflight.Found
	}
	return out, nil
}

// NewestBackup lists a backup container (Storage Blob Data Reader) and
// returns its newest backup, as the find-backup step would pick it.
func (c *Client) NewestBackup(ctx context.Context, account, container string) (preflight.BackupInfo, error) {
	list, err := c.Backups(ctx, runbook.BackupsSpec{Account: account, Container: container})
	if err != nil {
		return preflight.BackupInfo{}, err
	}
	out := preflight.BackupInfo{Lookup: preflight.Found, Count: len(list)}
	if len(list) > 0 {
		out.Name, out.LastModified = list[0].Name, list[0].LastModified
	}
	return out, nil
}

// permissionsAPIVersion is the version of Microsoft.Authorization's
// "Permissions - List For Resource Group" (ARM REST reference), which lists
// the actions the caller holds on a resource group, from every role
// assignment, without changing anything.
const permissionsAPIVersion = "2022-04-01"

// MayDelete asks Azure which actions drbot's identity holds on a resource
// group and whether they include deleting flexible servers. Reading them
// needs Microsoft.Authorization/permissions/read, which most roles carry;
// when Azure will not answer, the answer is "cannot tell", not an error.
func (c *Client) MayDelete(ctx context.Context, sub, rg string) (preflight.Permission, error) {
	if sub == "" {
		sub = c.subscription
	}
	if sub == "" {
		return preflight.Permission{Detail: "no subscription (AZURE_SUBSCRIPTION_ID or postgres.subscription_id)"}, nil
	}
	perms, err := c.permissions(ctx, sub, rg)
	if err != nil {
		return preflight.Permission{Detail: err.Error()}, nil
	}
	return preflight.Permission{Known: true, Allowed: holds(perms, permServerDelete)}, nil
}

// permission is one entry of the Permissions list: what one role grants.
type permission struct {
	Actions    []string `json:"actions"`
	NotActions []string `json:"notActions"`
}

func (c *Client) permissions(ctx context.Context, sub, rg string) ([]permission, error) {
	client, err := arm.NewClient("drbot/preflight", "v1.0.0", c.cred, &c.armOpts)
	if err != nil {
		return nil, err
	}
	u := runtime.JoinPaths(client.Endpoint(), "subscriptions", url.PathEscape(sub), "resourceGroups", url.PathEscape(rg),
		"providers/Microsoft.Authorization/permissions")
	req, err := runtime.NewRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", permissionsAPIVersion)
	req.Raw().URL.RawQuery = q.Encode()
	resp, err := client.Pipeline().Do(req)
	if err != nil {
		return nil, fmt.Errorf("list permissions on resource group %s: %w", rg, err)
	}
	if !runtime.HasStatusCode(resp, http.StatusOK) {
		err := runtime.NewResponseError(resp)
		return nil, c.apiError(ctx, op{what: "list drbot's permissions on resource group " + rg,
			permission: "Microsoft.Authorization/permissions/read", scope: "resource group " + rg}, err)
	}
	var body struct {
		Value []permission `json:"value"`
	}
	if err := runtime.UnmarshalAsJSON(resp, &body); err != nil {
		return nil, fmt.Errorf("decode permissions on resource group %s: %w", rg, err)
	}
	return body.Value, nil
}

// holds reports whether some role grants action and does not take it out
// again (NotActions subtract from that role's Actions only). Azure matches
// actions without case; * stands for any characters.
func holds(perms []permission, action string) bool {
	for _, p := range perms {
		if matchesAny(p.Actions, action) && !matchesAny(p.NotActions, action) {
			return true
		}
	}
	return false
}

func matchesAny(patterns []string, action string) bool {
	for _, p := range patterns {
		re := "(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$"
		if ok, _ := regexp.MatchString(re, action); ok {
			return true
		}
	}
	return false
}
