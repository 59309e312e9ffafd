// Package preflight checks, ahead of an incident, that every service and
// environment drbot is configured for can run its runbooks on the real
// systems: the GitHub repository, branch, token and workflow files (their
// workflow_dispatch inputs against what drbot sends), the Kubernetes context,
// namespace, deployments and RBAC, the Azure server, restore window and
// backups, and the Slack channels, user groups and scopes.
//
// It only reads. Each family is reached through a small interface declared
// here and implemented by its adapter (adapters/github, adapters/kube,
// adapters/azure, bot); a family without credentials is reported as
// skipped, with why, never as ok. The result is one table per service and
// environment, each line saying what to change when it is not ok.
package preflight

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Status is the outcome of one check.
type Status string

// Statuses, from best to worst; Skip is a check that could not run.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skipped"
)

// Families of checks, as --simulate and the table name them.
const (
	FamilyGitHub = "github"
	FamilyKube   = "kubernetes"
	FamilyAzure  = "azure"
	FamilySlack  = "slack"
)

// Check is one line of a table.
type Check struct {
	Family string `json:"family"`
	Name   string `json:"check"`
	Status Status `json:"status"`
	// Detail is what was found.
	Detail string `json:"detail,omitempty"`
	// Fix is what to change when the check is not ok: the drbot.yaml key,
	// the workflow file and line, the permission to grant.
	Fix string `json:"fix,omitempty"`
}

// Table is the checks of one service and environment, or of the Slack
// workspace (Service and Env empty).
type Table struct {
	Service string  `json:"service,omitempty"`
	Env     string  `json:"env,omitempty"`
	Checks  []Check `json:"checks"`
}

// Title names the table: "itt-mentor-services/staging" or "slack".
func (t Table) Title() string {
	if t.Service == "" {
		return "slack (all services)"
	}
	return t.Service + "/" + t.Env
}

// Count returns how many checks have status s.
func (t Table) Count(s Status) int {
	n := 0
	for _, c := range t.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Result is a whole preflight.
type Result struct {
	At     time.Time `json:"at"`
	Tables []Table   `json:"tables"`
}

// Count returns how many checks of every table have status s.
func (r Result) Count(s Status) int {
	n := 0
	for _, t := range r.Tables {
		n += t.Count(s)
	}
	return n
}

// Failed reports whether any check failed.
func (r Result) Failed() bool { return r.Count(Fail) > 0 }

// Summary is one line: "3 fail, 2 warn, 40 ok, 5 skipped".
func (r Result) Summary() string {
	return fmt.Sprintf("%d fail, %d warn, %d ok, %d skipped", r.Count(Fail), r.Count(Warn), r.Count(OK), r.Count(Skip))
}

// WriteText writes one table per service and environment.
func (r Result) WriteText(w io.Writer) error {
	var b strings.Builder
	for i, t := range r.Tables {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s — %d fail, %d warn, %d ok, %d skipped\n", t.Title(), t.Count(Fail), t.Count(Warn), t.Count(OK), t.Count(Skip))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  CHECK\tRESULT\tDETAIL")
		for _, c := range t.Checks {
			fmt.Fprintf(tw, "  %s: %s\t%s\t%s\n", c.Family, c.Name, c.Status, oneLine(c.Detail))
			if c.Fix != "" && c.Status != OK {
				fmt.Fprintf(tw, "  \t\t→ %s\n", oneLine(c.Fix))
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "\npreflight: %s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the result as JSON, for CI.
func (r Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Result
		Failed  bool   `json:"failed"`
		Summary string `json:"summary"`
	}{r, r.Failed(), r.Summary()})
}

// Problems lists the checks that failed, and those that warn when least is
// Warn, one line each, for short reports (the start of serve, /dr start):
// "itt-mentor-services/staging github: workflow deploy.yml (fail): … → …".
func (r Result) Problems(least Status) []string {
	var out []string
	for _, t := range r.Tables {
		for _, c := range t.Checks {
			if c.Status == Fail || (least == Warn && c.Status == Warn) {
				line := fmt.Sprintf("%s %s: %s (%s): %s", t.Title(), c.Family, c.Name, c.Status, oneLine(c.Detail))
				if c.Fix != "" {
					line += " → " + oneLine(c.Fix)
				}
				out = append(out, line)
			}
		}
	}
	return out
}

// Fingerprint names the failures of a result: the same failed checks give
// the same twelve hex digits, so a report of them can be made once.
func (r Result) Fingerprint() string {
	sum := sha256.Sum256([]byte(strings.Join(r.Problems(Fail), "\n")))
	return hex.EncodeToString(sum[:6])
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Target is one service and environment to check, in plain values (cmd
// builds it from drbot.yaml and the runbooks' planned steps).
type Target struct {
	Service, Env string
	GitHub       GitHubTarget
	Kube         KubeTarget
	Azure        AzureTarget
}

// Sources are the systems to check. A nil family is skipped with its
// ...Skip reason (no credentials, simulated).
type Sources struct {
	GitHub     GitHub
	GitHubSkip string
	Kube       Kube
	KubeSkip   string
	Azure      Azure
	AzureSkip  string
	Slack      Slack
	SlackSkip  string
	// Now is the clock for ages (backups); nil means time.Now.
	Now func() time.Time
	// Timeout bounds each family of one target (default 30s), so one
	// unreachable system cannot hold the whole preflight.
	Timeout time.Duration
}

// Parallel is how many targets are checked at once: each makes a few dozen
// sequential reads, and four keep a whole preflight within seconds without
// pressing GitHub's secondary rate limits (which count concurrent requests).
const Parallel = 4

// Run checks every target and, when slack is not nil, the Slack setup. It
// only reads. Tables come in the order of targets, Slack last.
func Run(ctx context.Context, src Sources, targets []Target, slack *SlackTarget) Result {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Timeout <= 0 {
		src.Timeout = 30 * time.Second
	}
	res := Result{At: src.Now().UTC(), Tables: make([]Table, len(targets))}
	sem := make(chan struct{}, Parallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res.Tables[i] = checkTarget(ctx, src, t)
		})
	}
	wg.Wait()
	if slack != nil {
		table := Table{}
		if src.Slack == nil {
			table.Checks = []Check{{Family: FamilySlack, Name: "all checks", Status: Skip, Detail: src.SlackSkip}}
		} else {
			sctx, cancel := context.WithTimeout(ctx, src.Timeout)
			table.Checks = checkSlack(sctx, src.Slack, *slack)
			cancel()
		}
		res.Tables = append(res.Tables, table)
	}
	return res
}

// checkTarget runs the families of one service and environment, each
// within src.Timeout; a family without a source is skipped with its reason.
func checkTarget(ctx context.Context, src Sources, t Target) Table {
	table := Table{Service: t.Service, Env: t.Env}
	family := func(name string, skip string, available bool, run func(context.Context) []Check) {
		if !available {
			table.Checks = append(table.Checks, Check{Family: name, Name: "all checks", Status: Skip, Detail: skip})
			return
		}
		fctx, cancel := context.WithTimeout(ctx, src.Timeout)
		defer cancel()
		table.Checks = append(table.Checks, run(fctx)...)
	}
	family(FamilyGitHub, src.GitHubSkip, src.GitHub != nil, func(ctx context.Context) []Check { return checkGitHub(ctx, src.GitHub, t.GitHub) })
	family(FamilyKube, src.KubeSkip, src.Kube != nil, func(ctx context.Context) []Check { return checkKube(ctx, src.Kube, t.Kube) })
	family(FamilyAzure, src.AzureSkip, src.Azure != nil, func(ctx context.Context) []Check { return checkAzure(ctx, src.Azure, t.Azure, src.Now()) })
	return table
}

// Lookup is whether something was found, and whether drbot may look.
type Lookup int

// Lookups.
const (
	Missing Lookup = iota
	Found
	// Forbidden: the identity may not read it, so drbot cannot tell.
	Forbidden
)
