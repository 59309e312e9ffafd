// Package azure is drbot's Azure adapter: it reads and deletes Postgres
// flexible servers through Azure Resource Manager and reads the database
// backups in blob storage. It takes an azcore.TokenCredential (cmd builds
// azidentity's DefaultAzureCredential: environment, workload identity,
// managed identity, Azure CLI) and never builds one itself.
//
// What each call needs (Azure RBAC):
//   - servers: Microsoft.DBforPostgreSQL/flexibleServers/read on the
//     environments' resource groups (Get: state, version, earliest restore
//     point, whether a name is taken);
//   - delete: Microsoft.DBforPostgreSQL/flexibleServers/delete, and
//     Microsoft.DBforPostgreSQL/locations/operationResults/read and
//     .../azureAsyncOperation/read to follow the deletion, on the resource
//     groups the PTR copies live in;
//   - backups: the Storage Blob Data Reader role on the backup container
//     (list blobs, read a blob's properties).
package azure

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/postgresql/armpostgresqlflexibleservers/v5"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/runbook"
)

// Defaults for Options fields left zero.
const (
	// DefaultPollInterval is how often a server's state or a deletion is
	// read while waiting. A flexible server takes minutes to create or
	// delete, and ARM's read limit is per subscription (12,000 reads an
	// hour), so there is no point in asking more often.
	DefaultPollInterval = 15 * time.Second
	// DefaultMaxRetries is how many times azcore retries a request answered
	// 408, 429 (honouring Retry-After) or 5xx, before the error reaches the
	// adapter, which marks it runbook.Retryable.
	DefaultMaxRetries = 3
)

// Options configures a Client.
type Options struct {
	// Credential authenticates to ARM and blob storage.
	Credential azcore.TokenCredential
	// Subscription is the subscription of steps that name none
	// (AZURE_SUBSCRIPTION_ID).
	Subscription string
	// Protected are the live servers of every configured environment: the
	// delete refuses each of them whatever a runbook says. Names compare
	// without case (flexible server names are DNS labels, unique in Azure).
	Protected []string
	// Location is the local zone shown beside UTC (config timezone).
	Location *time.Location
	// Logger receives the adapter's logs; nil means none.
	Logger *zap.Logger
	// Clock tells the time for restore windows and ages; nil is the system clock.
	Clock runbook.Clock
	// PollInterval is how often a wait or a deletion is polled.
	PollInterval time.Duration
	// ARM overrides the ARM client options (tests set a fake transport and
	// short retry delays). Nil means azcore's defaults.
	ARM *arm.ClientOptions
	// Blob returns the blob client of a storage account. Nil means
	// https://<account>.blob.core.windows.net/ with Credential; tests point it
	// at Azurite.
	Blob func(account string) (*azblob.Client, error)
}

// Client acts on the Postgres flexible servers and backup containers of
// drbot's environments.
type Client struct {
	cred         azcore.TokenCredential
	subscription string
	protected    []string
	loc          *time.Location
	log          *zap.Logger
	clock        runbook.Clock
	poll         time.Duration
	armOpts      arm.ClientOptions
	tries        int
	newBlob      func(account string) (*azblob.Client, error)

	mu      sync.Mutex
	servers map[string]*armpostgresqlflexibleservers.ServersClient // by subscription
	blobs   map[string]*azblob.Client                              // by account
}

// New returns a Client. It makes no call; the first action does.
func New(opts Options) (*Client, error) {
	if opts.Credential == nil {
		return nil, fmt.Errorf("azure: no credential")
	}
	c := &Client{
		cred: opts.Credential, subscription: strings.TrimSpace(opts.Subscription), loc: opts.Location,
		log: opts.Logger, clock: opts.Clock, poll: opts.PollInterval, newBlob: opts.Blob,
		servers: map[string]*armpostgresqlflexibleservers.ServersClient{}, blobs: map[string]*azblob.Client{},
	}
	if c.subscription != "" {
		if err := runbook.CheckSubscriptionID(c.subscription); err != nil {
			return nil, fmt.Errorf("AZURE_SUBSCRIPTION_ID: %w", err)
		}
	}
	for _, p := range opts.Protected {
		if p = strings.TrimSpace(p); p != "" {
			c.protected = append(c.protected, p)
		}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("azure")
	if c.clock == nil {
		c.clock = runbook.SystemClock{}
	}
	if c.loc == nil {
		c.loc = time.UTC
	}
	if c.poll <= 0 {
		c.poll = DefaultPollInterval
	}
	if opts.ARM != nil {
		c.armOpts = *opts.ARM
	}
	if c.armOpts.Retry.MaxRetries == 0 {
		c.armOpts.Retry.MaxRetries = DefaultMaxRetries
	}
	c.tries = max(int(c.armOpts.Retry.MaxRetries), 0) + 1
	if c.armOpts.Telemetry.ApplicationID == "" {
		c.armOpts.Telemetry.ApplicationID = "drbot"
	}
	if c.newBlob == nil {
		c.newBlob = c.defaultBlob
	}
	return c, nil
}

// Actions returns the real Azure action of every azure.* kind.
func (c *Client) Actions() runbook.Registry {
	return runbook.Registry{
		runbook.KindPostgresWait:       &WaitAction{c: c},
		runbook.KindPostgresCheckGone:  &CheckGoneAction{c: c},
		runbook.KindPostgresPreparePTR: &PreparePTRAction{c: c},
		runbook.KindPostgresDelete:     &DeleteAction{c: c},
		runbook.KindBackupsList:        &ListBackupsAction{c: c},
		runbook.KindBackupsCheck:       &CheckBackupAction{c: c},
	}
}

// isProtected reports whether name is a live server of a configured environment.
func (c *Client) isProtected(name string) bool {
	for _, p := range c.protected {
		if strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}

// serversClient returns the ARM client of sub ("" means the default
// subscription), building it once.
func (c *Client) serversClient(sub string) (*armpostgresqlflexibleservers.ServersClient, string, error) {
	if sub == "" {
		sub = c.subscription
	}
	if sub == "" {
		return nil, "", fmt.Errorf("no Azure subscription for this step: set AZURE_SUBSCRIPTION_ID, or postgres.subscription_id for the environment in drbot.yaml")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.servers[sub]; ok {
		return sc, sub, nil
	}
	sc, err := armpostgresqlflexibleservers.NewServersClient(sub, c.cred, &c.armOpts)
	if err != nil {
		return nil, "", fmt.Errorf("postgres client for subscription %s: %w", sub, err)
	}
	c.servers[sub] = sc
	return sc, sub, nil
}

// blobClient returns the blob client of a storage account, building it once.
func (c *Client) blobClient(account string) (*azblob.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bc, ok := c.blobs[account]; ok {
		return bc, nil
	}
	bc, err := c.newBlob(account)
	if err != nil {
		return nil, fmt.Errorf("blob client for storage account %s: %w", account, err)
	}
	c.blobs[account] = bc
	return bc, nil
}

// defaultBlob is the public cloud's endpoint of account with the credential,
// retried as ARM is.
func (c *Client) defaultBlob(account string) (*azblob.Client, error) {
	opts := &azblob.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: c.armOpts.Retry, Telemetry: c.armOpts.Telemetry, Logging: c.armOpts.Logging,
	}}
	return azblob.NewClient(fmt.Sprintf("https://%s.blob.core.windows.net/", account), c.cred, opts)
}

// portalLink is a server's page in the Azure portal.
func portalLink(sub, rg, server string) runbook.Link {
	return runbook.Link{
		Label: "server " + server + " in the Azure portal",
		URL: fmt.Sprintf("https://portal.azure.com/#@/resource/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DBforPostgreSQL/flexibleServers/%s/overview",
			sub, rg, server),
	}
}

// logger returns the step's logger.
func (c *Client) logger(req runbook.Request) *zap.Logger {
	return c.log.With(zap.String("run_id", req.RunID), zap.String("step_id", req.StepID), zap.Int("attempt", req.Attempt))
}

// progress reports text on the step's timeline, if the engine listens.
func progress(req runbook.Request) func(context.Context, string, ...runbook.Link) {
	return func(ctx context.Context, text string, links ...runbook.Link) {
		if req.Progress != nil {
			req.Progress(ctx, text, links...)
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
