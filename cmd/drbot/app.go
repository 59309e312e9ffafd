package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drbot-dev/drbot/adapters/sim"
	"github.com/drbot-dev/drbot/config"
	"github.com/drbot-dev/drbot/examples"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// app is what the subcommands share. Only cmd sees the whole config.
type app struct {
	cfg *config.Config
	// example is set when cfg is the built-in example (no drbot.yaml).
	example bool
	catalog runbook.Catalog
	store   *store.Store
	log     *zap.Logger
	clock   runbook.Clock
	sim     *sim.Sim // the simulated world, when any adapter is simulated

	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	closers        []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// configPath is --config, else DRBOT_CONFIG, else drbot.yaml.
func (a *app) configPath(flagValue string) (path string, explicit bool) {
	if flagValue != "" {
		return flagValue, true
	}
	if p := a.getenv("DRBOT_CONFIG"); p != "" {
		return p, true
	}
	return "drbot.yaml", false
}

// load reads the config and the runbook catalog. Without any config file, and
// only when allowExample is set (rehearse, plan), the shipped example is used
// so the product can be seen working with no setup.
func (a *app) load(configFlag string, allowExample bool) error {
	path, explicit := a.configPath(configFlag)
	cfg, err := config.Load(path, a.getenv)
	if err != nil && !explicit && allowExample && errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(a.stderr, "drbot: no %s here; using the example config (examples/drbot.yaml)\n", path)
		cfg, err = config.Parse("examples/drbot.yaml", examples.Config, a.getenv)
		a.example = true
	}
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no config: drbot looked for %s (set --config or DRBOT_CONFIG); a run on real systems needs your own config, never the example", path)
		}
		return err
	}
	cat, err := runbook.LoadCatalog(cfg.Runbooks)
	if err != nil {
		return fmt.Errorf("load runbooks: %w", err)
	}
	a.cfg, a.catalog = cfg, cat
	return nil
}

// configUsed is the config file a run records: "" for the built-in example.
func (a *app) configUsed() string {
	if a.example {
		return ""
	}
	return a.cfg.File
}

// storePath is serve's store: DRBOT_DB, else the content of the file
// DRBOT_DB_FILE names (a PostgreSQL URL with its password, mounted from a
// Secret), else drbot.db.
func (a *app) storePath() (string, error) {
	if db := a.getenv("DRBOT_DB"); db != "" {
		return db, nil
	}
	if f := a.getenv("DRBOT_DB_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("DRBOT_DB_FILE: %w", err)
		}
		db := strings.TrimSpace(string(b))
		if db == "" {
			return "", fmt.Errorf("DRBOT_DB_FILE: %s is empty", f)
		}
		return db, nil
	}
	return "drbot.db", nil
}

// openStore opens the store at path: an SQLite file, or a PostgreSQL URL
// (postgres://…), never shown with its password.
func (a *app) openStore(ctx context.Context, path string) error {
	var opts []store.Option
	if a.log != nil {
		opts = append(opts, store.WithLogger(a.log))
	}
	st, err := store.Open(ctx, path, opts...)
	if err != nil {
		return err
	}
	a.store = st
	a.closers = append(a.closers, func() { _ = st.Close() })
	return nil
}

// logger builds the process logger at level, to stderr, and syncs it on close.
func (a *app) logger(level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(a.stderr), level)
	a.log = zap.New(core)
	a.closers = append(a.closers, func() { _ = a.log.Sync() })
	return a.log
}

// Adapter families that --simulate may name.
var families = []string{"github", "kubernetes", "azure", "http"}

// parseSimulate reads --simulate: "" none, "all"/"true" every family, or a
// comma-separated list of families.
func parseSimulate(s string) (map[string]bool, error) {
	out := map[string]bool{}
	switch s {
	case "", "false":
		return out, nil
	case "all", "true":
		for _, f := range families {
			out[f] = true
		}
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(families, f) {
			return nil, fmt.Errorf("--simulate: unknown adapter %q; use all or a list of %s", f, strings.Join(families, ", "))
		}
		out[f] = true
	}
	return out, nil
}

// actions returns the registry for every non-Slack action kind: simulated for
// the families in simulate, real otherwise. Azure has no real adapter yet, so
// it is always simulated, and the caller is told so.
func (a *app) actions(simulate string) (runbook.Registry, error) {
	simulated, err := parseSimulate(simulate)
	if err != nil {
		return nil, err
	}
	if a.sim == nil {
		a.sim = sim.New(sim.Options{Delay: simDelay(a.getenv)})
	}
	reg := runbook.Registry{}
	for _, family := range families {
		var part runbook.Registry
		if isSimulated(family, simulated) {
			part = a.sim.Only(family + ".")
		} else {
			part, err = a.realActions(family)
			if err != nil {
				return nil, err
			}
		}
		for k, v := range part {
			reg[k] = v
		}
	}
	return reg, nil
}

// isSimulated reports whether a family's steps run on simulated adapters:
// the ones --simulate names.
func isSimulated(family string, simulated map[string]bool) bool {
	return simulated[family]
}

// simulatedKinds lists the action kinds the registry simulates, for warnings.
func simulatedKinds(reg runbook.Registry) []string {
	var out []string
	for kind, act := range reg {
		if s, ok := act.(runbook.Simulator); ok && s.Simulated() {
			out = append(out, kind)
		}
	}
	slices.Sort(out)
	return out
}
