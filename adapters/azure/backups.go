package azure

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

var (
	_ runbook.Action = (*ListBackupsAction)(nil)
	_ runbook.Action = (*CheckBackupAction)(nil)
)

// listedInSummary is how many of the newest backups a summary names: the
// timeline gets one line per step.
const listedInSummary = 5

// Backup is one backup blob.
type Backup struct {
	Name         string
	Size         int64
	LastModified time.Time
}

// describe says "name (12 MB, 2026-11-26 09:30:00 UTC (09:30:00 GMT), 5h ago)".
func (b Backup) describe(now time.Time, loc *time.Location) string {
	return fmt.Sprintf("%s (%s, %s, %s ago)", b.Name, byteSize(b.Size),
		runbook.FormatBoth(b.LastModified, loc), runbook.HumanDuration(now.Sub(b.LastModified)))
}

// byteSize writes a size in SI units as people read them: 12 MB, 1.2 GB.
func byteSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", max(n, 0))
	}
	f, unit := float64(n), ""
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f, unit = f/1000, u
		if f < 1000 {
			break
		}
	}
	if f < 10 {
		return fmt.Sprintf("%.1f %s", f, unit)
	}
	return fmt.Sprintf("%.0f %s", f, unit)
}

// Backups lists the backup blobs (names ending .sql.gz) in a container whose
// names start with prefix, newest first. RBAC: Storage Blob Data Reader.
func (c *Client) Backups(ctx context.Context, spec runbook.BackupsSpec) ([]Backup, error) {
	bc, err := c.blobClient(spec.Account)
	if err != nil {
		return nil, err
	}
	listOp := op{what: fmt.Sprintf("list blobs in %s/%s", spec.Account, spec.Container), permission: permBlobRead,
		scope: fmt.Sprintf("container %s of storage account %s", spec.Container, spec.Account)}
	var out []Backup
	pager := bc.NewListBlobsFlatPager(spec.Container, &azblob.ListBlobsFlatOptions{Prefix: prefix(spec.Prefix)})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil, fmt.Errorf("container %s not found in storage account %s; check backup.container in drbot.yaml", spec.Container, spec.Account)
		}
		if err != nil {
			return nil, c.apiError(ctx, listOp, err)
		}
		for _, item := range page.Segment.BlobItems {
			if b, ok := backupOf(item); ok {
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b Backup) int {
		if d := b.LastModified.Compare(a.LastModified); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func prefix(p string) *string {
	if p == "" {
		return nil
	}
	return &p
}

// backupOf turns a listed blob into a Backup, if it is one (a name ending
// .sql.gz, what the restore workflow takes).
func backupOf(item *container.BlobItem) (Backup, bool) {
	if item == nil || item.Name == nil || !strings.HasSuffix(*item.Name, runbook.BackupSuffix) {
		return Backup{}, false
	}
	b := Backup{Name: *item.Name}
	if p := item.Properties; p != nil {
		if p.ContentLength != nil {
			b.Size = *p.ContentLength
		}
		if p.LastModified != nil {
			b.LastModified = p.LastModified.UTC()
		}
	}
	return b, true
}

// ListBackupsAction implements azure.backups.list: the backups in the
// environment's container, newest first, and remembers the newest name
// (scenario 1 restores it unless the run names another).
type ListBackupsAction struct{ c *Client }

// Run lists the backups.
func (a *ListBackupsAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeBackups(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	list, err := a.c.Backups(ctx, spec)
	if err != nil {
		return runbook.Result{}, err
	}
	where := spec.Account + "/" + spec.Container
	if spec.Prefix != "" {
		where += "/" + spec.Prefix + "*"
	}
	if len(list) == 0 {
		return runbook.Result{}, fmt.Errorf("no backups (*%s) in %s; the nightly backup workflow should have written some", runbook.BackupSuffix, where)
	}
	now := a.c.clock.Now()
	names := make([]string, 0, listedInSummary)
	for _, b := range list[:min(len(list), listedInSummary)] {
		names = append(names, b.describe(now, a.c.loc))
	}
	more := ""
	if n := len(list) - listedInSummary; n > 0 {
		more = fmt.Sprintf(" and %d older", n)
	}
	a.c.logger(req).Info("backups listed", zap.String("container", where), zap.Int("count", len(list)))
	chosen, what := list[0], "the newest"
	if spec.Prefer != "" {
		i := slices.IndexFunc(list, func(b Backup) bool { return b.Name == spec.Prefer })
		if i < 0 {
			return runbook.Result{}, fmt.Errorf("backup %s is not in %s; the newest are %s", spec.Prefer, where, strings.Join(names[:min(len(names), 3)], "; "))
		}
		chosen, what = list[i], "as asked"
	}
	return runbook.Result{
		Summary:  fmt.Sprintf("%d backups in %s, newest first: %s%s; restoring %s (%s)", len(list), where, strings.Join(names, "; "), more, chosen.Name, what),
		Remember: chosen.Name,
	}, nil
}

var _ runbook.Chooser = (*ListBackupsAction)(nil)

// Choices lists the container's backups, newest first, for a person to pick
// the one to restore.
func (a *ListBackupsAction) Choices(ctx context.Context, req runbook.Request) ([]runbook.Choice, error) {
	spec, err := runbook.DecodeBackups(req.Params)
	if err != nil {
		return nil, err
	}
	list, err := a.c.Backups(ctx, spec)
	if err != nil {
		return nil, err
	}
	now := a.c.clock.Now()
	out := make([]runbook.Choice, len(list))
	for i, b := range list {
		out[i] = runbook.Choice{Value: b.Name, Label: b.describe(now, a.c.loc)}
	}
	return out, nil
}

// CheckBackupAction implements azure.backups.check. Before a restore
// (expect: exists) the named backup must be there: it shows its size and
// age. Before a backup (expect: free) the name must not be taken: the backup
// workflow fails when the blob already exists, so this says so before the
// dispatch. RBAC: Storage Blob Data Reader.
type CheckBackupAction struct{ c *Client }

// Run checks the backup blob.
func (a *CheckBackupAction) Run(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeBackupCheck(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	b, found, err := a.c.backup(ctx, spec)
	if err != nil {
		return runbook.Result{}, err
	}
	where := spec.Account + "/" + spec.Container
	now := a.c.clock.Now()
	a.c.logger(req).Info("backup checked", zap.String("blob", spec.Name), zap.Bool("found", found), zap.String("expect", spec.Expect))
	switch {
	case spec.Expect == runbook.BackupExists && found:
		return runbook.Result{Summary: "backup found in " + where + ": " + b.describe(now, a.c.loc)}, nil
	case spec.Expect == runbook.BackupFree && !found:
		return runbook.Result{Summary: fmt.Sprintf("backup name %s is free in %s; the backup workflow can write it", spec.Name, where)}, nil
	case spec.Expect == runbook.BackupFree:
		return runbook.Result{}, runbook.Refusef("backup %s already exists in %s %s: the backup workflow would fail on it; start the run again for a new name, or remove the old blob if it is not needed",
			spec.Name, where, strings.TrimPrefix(b.describe(now, a.c.loc), b.Name+" "))
	}
	return runbook.Result{}, runbook.Refusef("backup %s is not in %s%s", spec.Name, where, a.newest(ctx, spec.BackupsSpec, now))
}

// backup reads one backup blob's properties; found is false when it does
// not exist.
func (c *Client) backup(ctx context.Context, spec runbook.BackupCheckSpec) (Backup, bool, error) {
	bc, err := c.blobClient(spec.Account)
	if err != nil {
		return Backup{}, false, err
	}
	props, err := bc.ServiceClient().NewContainerClient(spec.Container).NewBlobClient(spec.Name).GetProperties(ctx, nil)
	if isNotFound(err) {
		return Backup{}, false, nil
	}
	if err != nil {
		return Backup{}, false, c.apiError(ctx, op{
			what: fmt.Sprintf("read backup %s in %s/%s", spec.Name, spec.Account, spec.Container), permission: permBlobRead,
			scope: fmt.Sprintf("container %s of storage account %s", spec.Container, spec.Account),
		}, err)
	}
	b := Backup{Name: spec.Name}
	if props.ContentLength != nil {
		b.Size = *props.ContentLength
	}
	if props.LastModified != nil {
		b.LastModified = props.LastModified.UTC()
	}
	return b, true, nil
}

// newest names the newest backups, to help pick another; "" if none can be
// listed.
func (a *CheckBackupAction) newest(ctx context.Context, spec runbook.BackupsSpec, now time.Time) string {
	list, err := a.c.Backups(ctx, spec)
	if err != nil || len(list) == 0 {
		return ""
	}
	names := make([]string, 0, 3)
	for _, b := range list[:min(len(list), 3)] {
		names = append(names, b.describe(now, a.c.loc))
	}
	return "; the newest are " + strings.Join(names, "; ")
}
