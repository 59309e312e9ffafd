// Command etcd is etcd's own server main, built from the module proxy so the
// Kubernetes integration tests need no system package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
