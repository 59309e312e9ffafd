package preflight

import (
	"context"
	"fmt"
	"time"
)

// BackupMaxAge is the age past which the newest backup is a warning: the
// backups are nightly, so a day plus two hours of slack for a slow run.
const BackupMaxAge = 26 * time.Hour

// Azure is what the Azure checks read (adapters/azure implements it).
type Azure interface {
	// Server reads a Postgres flexible server.
	Server(ctx context.Context, subscription, resourceGroup, name string) (ServerInfo, error)
	// NewestBackup lists the backup container and returns its newest
	// backup (Lookup Missing: the container does not exist).
	NewestBackup(ctx context.Context, account, container string) (BackupInfo, error)
	// MayDelete asks Azure whether the identity may delete flexible servers
	// in the resource group; Known is false when Azure would not say.
	MayDelete(ctx context.Context, subscription, resourceGroup string) (Permission, error)
}

// ServerInfo is a flexible server.
type ServerInfo struct {
	Lookup   Lookup
	State    string
	Earliest time.Time // earliest restore point; zero if Azure gave none
}

// BackupInfo is the newest backup of a container.
type BackupInfo struct {
	Lookup       Lookup
	Count        int // backups in the container
	Name         string
	LastModified time.Time
}

// Permission is whether the identity holds a permission.
type Permission struct {
	Known   bool
	Allowed bool
	Detail  string // why not known, or which role grants it
}

// AzureTarget is what the runbooks do on Azure for one environment.
type AzureTarget struct {
	Subscription, ResourceGroup, Server string
	Account, Container                  string
	// Key is the drbot.yaml key of the environment.
	Key string
}

func checkAzure(ctx context.Context, az Azure, t AzureTarget, now time.Time) []Check {
	var out []Check
	add := func(name string, st Status, detail, fix string) {
		out = append(out, Check{Family: FamilyAzure, Name: name, Status: st, Detail: detail, Fix: fix})
	}
	srv, err := az.Server(ctx, t.Subscription, t.ResourceGroup, t.Server)
	name := "server " + t.Server
	switch {
	case err != nil:
		add(name, Fail, err.Error(), "grant Microsoft.DBforPostgreSQL/flexibleServers/read on resource group "+t.ResourceGroup)
	case srv.Lookup != Found:
		add(name, Fail, fmt.Sprintf("not found in resource group %s", t.ResourceGroup),
			fmt.Sprintf("check %s.postgres.server and resource_group in drbot.yaml", t.Key))
	case srv.State != "Ready":
		add(name, Fail, fmt.Sprintf("state %s, not Ready", orUnknown(srv.State)), "")
	default:
		add(name, OK, "Ready", "")
	}
	if err == nil && srv.Lookup == Found {
		if srv.Earliest.IsZero() {
			add("earliest restore point", Warn, "Azure reports none: a point-in-time restore has nothing to restore from", "check the server's backup settings in the portal")
		} else {
			add("earliest restore point", OK, fmt.Sprintf("%s (%s ago)", srv.Earliest.UTC().Format("2006-01-02 15:04 UTC"), ago(now.Sub(srv.Earliest))), "")
		}
	}

	b, err := az.NewestBackup(ctx, t.Account, t.Container)
	name = fmt.Sprintf("backups %s/%s", t.Account, t.Container)
	switch {
	case err != nil:
		add(name, Fail, err.Error(), fmt.Sprintf("grant Storage Blob Data Reader on container %s of %s", t.Container, t.Account))
	case b.Lookup == Forbidden:
		add(name, Fail, "the identity may not list the container", fmt.Sprintf("grant Storage Blob Data Reader on container %s of %s", t.Container, t.Account))
	case b.Lookup == Missing:
		add(name, Fail, "container not found", fmt.Sprintf("check %s.backup in drbot.yaml", t.Key))
	case b.Count == 0:
		add(name, Fail, "readable, but holds no backup (*.sql.gz)", "check the nightly backup workflow")
	case now.Sub(b.LastModified) > BackupMaxAge:
		add(name, Warn, fmt.Sprintf("newest backup %s is %s old (over %s)", b.Name, ago(now.Sub(b.LastModified)), ago(BackupMaxAge)), "check the nightly backup workflow's last runs")
	default:
		add(name, OK, fmt.Sprintf("%d backups, newest %s, %s old", b.Count, b.Name, ago(now.Sub(b.LastModified))), "")
	}

	p, err := az.MayDelete(ctx, t.Subscription, t.ResourceGroup)
	name = "may delete servers in " + t.ResourceGroup
	const fix = "grant Microsoft.DBforPostgreSQL/flexibleServers/delete on the resource group (the role in deploy/kubernetes.yaml); drbot deletes only the PTR copy"
	switch {
	case err != nil:
		add(name, Warn, "cannot tell: "+err.Error(), "")
	case !p.Known:
		add(name, Warn, "cannot tell: "+p.Detail, "")
	case !p.Allowed:
		add(name, Fail, "the identity may not delete flexible servers there; the delete-ptr step would fail", fix)
	default:
		add(name, OK, "allowed"+detailSuffix(p.Detail), "")
	}
	return out
}

func detailSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ago writes a duration as people read it: 3h12m, 2d4h.
func ago(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
