//go:build tools

// Package deps pins the modules drbot's packages share, so parallel work on
// adapters never races on go.mod. Remove an import once a package uses it.
package deps

import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/go-github/v62/github"
	_ "github.com/slack-go/slack/socketmode"
	_ "go.uber.org/zap/zaptest"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "modernc.org/sqlite"
)
