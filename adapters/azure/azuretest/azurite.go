package azuretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// EnvBlobURL names the variable scripts/test.sh sets to the Azurite blob
// service it started, e.g. http://127.0.0.1:10000/devstoreaccount1.
const EnvBlobURL = "DRBOT_TEST_AZURITE_BLOB_URL"

// Azurite's well-known development account and key (Azurite's README,
// "Default Storage Account"); they open nothing outside a local Azurite.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// BlobURL returns the Azurite blob service URL. Without it the test is
// skipped, saying how to get one, except under CI=true, where it fails: CI
// must run the blob tests.
func BlobURL(t testing.TB) string {
	t.Helper()
	u := strings.TrimRight(os.Getenv(EnvBlobURL), "/")
	if u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set: CI must run the blob storage tests against Azurite (scripts/test.sh starts it)", EnvBlobURL)
	}
	t.Skipf("no Azurite: %s is not set; run scripts/test.sh, which installs and starts Azurite", EnvBlobURL)
	return ""
}

// BlobClients returns what azure.Options.Blob wants: a client of the Azurite
// account for the development account, and an error for any other.
func BlobClients(t testing.TB) func(account string) (*azblob.Client, error) {
	t.Helper()
	u := BlobURL(t)
	return func(account string) (*azblob.Client, error) {
		cred, err := azblob.NewSharedKeyCredential(account, Key)
		if err != nil {
			return nil, err
		}
		return azblob.NewClientWithSharedKeyCredential(u+"/", cred, &azblob.ClientOptions{ClientOptions: policy.ClientOptions{
			Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond},
		}})
	}
}

// Container creates a container with a fresh name in Azurite and deletes it
// when the test ends. It returns the client and the container name.
func Container(t testing.TB) (*azblob.Client, string) {
	t.Helper()
	c, err := BlobClients(t)(Account)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "backups-" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := c.CreateContainer(ctx, name, nil); err != nil {
		t.Fatalf("create container %s in Azurite: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.DeleteContainer(context.Background(), name, nil) })
	return c, name
}

// Upload writes a blob of size bytes.
func Upload(t testing.TB, c *azblob.Client, container, name string, size int) {
	t.Helper()
	if _, err := c.UploadBuffer(context.Background(), container, name, make([]byte, size), nil); err != nil {
		t.Fatalf("upload %s/%s to Azurite: %v", container, name, err)
	}
}
