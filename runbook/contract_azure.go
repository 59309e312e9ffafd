package runbook

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The parameter contracts of the Azure kinds that check before acting
// (azure.postgres.check_gone, azure.postgres.prepare_ptr,
// azure.backups.check), and the rules the real and simulated adapters share:
// the restore window and the names proposed for a PTR copy.

// AzureServer is a Postgres flexible server in a subscription. Subscription
// is "" when the step gives none: the adapter's default (AZURE_SUBSCRIPTION_ID)
// applies.
type AzureServer struct {
	ServerSpec
	Subscription string
}

// PTRSpec is an azure.postgres.prepare_ptr step: the live server a
// point-in-time restore copies, the name wanted for the copy and the time to
// restore to.
type PTRSpec struct {
	AzureServer           // the live server
	PTRServer   string    // the name wanted for the copy, in the same resource group
	RestoreTime time.Time // UTC
}

// BackupCheckSpec is an azure.backups.check step: a backup blob that must
// exist (before a restore) or must not (before a backup, whose workflow fails
// when the blob is already there).
type BackupCheckSpec struct {
	BackupsSpec
	Name   string // the full blob name, ending BackupSuffix
	Expect string // BackupExists or BackupFree
}

// What an azure.backups.check step expects of its blob.
const (
	BackupExists = "exists"
	BackupFree   = "free"
)

// BackupSuffix ends every backup blob: the backup workflow writes
// <backup-file>.sql.gz and the restore workflow takes that full name.
const BackupSuffix = ".sql.gz"

// PTRMinAge is how recent a point-in-time restore may be: Azure's restore
// window ends 5 minutes before now (the seed: "available between 5min and
// 7days").
const PTRMinAge = 5 * time.Minute

// PTRDefaultRetention is the seed's 7 days, used as the window's start when
// Azure reports no earliest restore point.
const PTRDefaultRetention = 7 * 24 * time.Hour

// MaxPTRProposals bounds the free names prepare_ptr tries after the wanted one
// (…-ptr2 to …-ptr9): more taken copies than that is a mess for a person.
const MaxPTRProposals = 8

// maxBlobName is Azure's limit on a blob name (1,024 characters; "Naming and
// Referencing Containers, Blobs, and Metadata").
const maxBlobName = 1024

var (
	// subscriptionID is an Azure subscription id, a GUID.
	subscriptionID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// containerName is Azure's blob container rule: 3-63 lowercase letters,
	// digits and single hyphens, starting and ending with a letter or digit.
	containerName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
)

// CheckSubscriptionID reports whether s is an Azure subscription id.
func CheckSubscriptionID(s string) error {
	if !subscriptionID.MatchString(s) {
		return fmt.Errorf("%q is not an Azure subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)", s)
	}
	return nil
}

// DecodeAzureServer reads a server step's resource_group and server (see
// DecodeServer) and its optional subscription.
func DecodeAzureServer(p Params) (AzureServer, error) {
	s, err := DecodeServer(p)
	if err != nil {
		return AzureServer{ServerSpec: s}, err
	}
	out := AzureServer{ServerSpec: s, Subscription: strings.TrimSpace(p.StringOr("subscription", ""))}
	if out.Subscription != "" {
		if err := CheckSubscriptionID(out.Subscription); err != nil {
			return out, fmt.Errorf("parameter \"subscription\": %w", err)
		}
	}
	return out, nil
}

// DecodePTR reads azure.postgres.prepare_ptr.
func DecodePTR(p Params) (PTRSpec, error) {
	var s PTRSpec
	var err error
	if s.AzureServer, err = DecodeAzureServer(p); err != nil {
		return s, err
	}
	if s.PTRServer, err = p.String("ptr_server"); err != nil {
		return s, err
	}
	if err := CheckServerName(s.PTRServer); err != nil {
		return s, fmt.Errorf("parameter \"ptr_server\": %w", err)
	}
	if strings.EqualFold(s.PTRServer, s.Server) {
		return s, fmt.Errorf("parameter \"ptr_server\": %q is the live server itself; the copy needs a name of its own", s.PTRServer)
	}
	text, err := p.String("restore_time")
	if err != nil {
		return s, err
	}
	if s.RestoreTime, err = ParseTime(text); err != nil {
		return s, fmt.Errorf("parameter \"restore_time\": %w", err)
	}
	return s, nil
}

// DecodeBackupCheck reads azure.backups.check.
func DecodeBackupCheck(p Params) (BackupCheckSpec, error) {
	var s BackupCheckSpec
	var err error
	if s.BackupsSpec, err = DecodeBackups(p); err != nil {
		return s, err
	}
	if !containerName.MatchString(s.Container) {
		return s, fmt.Errorf("parameter \"container\": %q is not a blob container name (3-63 lowercase letters, digits and single hyphens)", s.Container)
	}
	if s.Name, err = p.String("name"); err != nil {
		return s, err
	}
	if !strings.HasSuffix(s.Name, BackupSuffix) || len(s.Name) == len(BackupSuffix) {
		return s, fmt.Errorf("parameter \"name\": %q is not a backup blob name; give the full name ending %s", s.Name, BackupSuffix)
	}
	if len(s.Name) > maxBlobName {
		return s, fmt.Errorf("parameter \"name\": %d characters; Azure allows at most %d in a blob name", len(s.Name), maxBlobName)
	}
	switch s.Expect = p.StringOr("expect", ""); s.Expect {
	case BackupExists, BackupFree:
	default:
		return s, fmt.Errorf("parameter \"expect\": want %q (before a restore) or %q (before a backup), got %q", BackupExists, BackupFree, s.Expect)
	}
	return s, nil
}

// PTRWindow returns the restore window of a server whose earliest restore
// point is earliest (zero: unknown, then the seed's 7 days apply): from the
// earliest restore point to PTRMinAge before now.
func PTRWindow(earliest, now time.Time) (from, to time.Time) {
	if earliest.IsZero() {
		earliest = now.Add(-PTRDefaultRetention)
	}
	return earliest.UTC(), now.Add(-PTRMinAge).UTC()
}

// CheckPTRWindow refuses a restore time outside [from, to], naming the
// window in UTC and in loc.
func CheckPTRWindow(server string, t, from, to time.Time, loc *time.Location) error {
	if !t.Before(from) && !t.After(to) {
		return nil
	}
	return Refusef("restore time %s is outside the restore window of %s: %s to %s; choose a time inside it",
		FormatBoth(t, loc), server, FormatBoth(from, loc), FormatBoth(to, loc))
}

// PTRProposals returns the names to try after a wanted PTR server name that
// is taken: name2, name3… (or, for a name already ending in a number n,
// n+1, n+2…), each cut to fit Azure's 63 characters.
func PTRProposals(name string) []string {
	base := strings.TrimRight(name, "0123456789")
	next := 2
	if digits := name[len(base):]; digits != "" && base != "" {
		if n, err := strconv.Atoi(digits); err == nil && n < 1000 {
			next = n + 1
		}
	} else if base == "" {
		base = name
	}
	out := make([]string, 0, MaxPTRProposals)
	for n := next; len(out) < MaxPTRProposals; n++ {
		suffix := strconv.Itoa(n)
		b := base
		if len(b)+len(suffix) > 63 {
			b = strings.TrimRight(b[:63-len(suffix)], "-")
		}
		out = append(out, b+suffix)
	}
	return out
}
