package runbook

import (
	"fmt"
	"strings"
)

// Kind describes one action kind: the parameters a step must give it and the
// exact call it makes, in words, for plans and step messages. Kinds belong to
// the domain: the simulated and the real adapter of a kind describe alike.
type Kind struct {
	Name     string
	Required []string
	Optional []string
	// Destructive kinds always need the step to be marked destructive.
	Destructive bool
	Describe    func(p Params) string
	// Decode is the kind's one parameter contract (see contract.go): it
	// returns the typed spec or says which parameter is wrong and why.
	Decode func(p Params) (any, error)
	// Targets names what a destructive kind destroys, from its decoded spec;
	// the engine's Guard refuses a live one. Verb says what it does to them.
	Targets func(spec any) []Resource
	Verb    string
	// Memory types the value a step of this kind remembers, so that a person
	// can give it when the step is skipped; nil takes text as it is.
	Memory *Memory
}

// Action kinds: the names runbooks use in `action:` and adapters register.
const (
	KindCreateChannel      = "slack.create_channel"
	KindNotifyStakeholders = "slack.notify_stakeholders"
	KindNotifyDevelopers   = "slack.notify_developers"
	KindRequiredApprovals  = "github.required_approvals"
	KindWorkflow           = "github.workflow"
	KindBranchWithChange   = "github.branch_with_change"
	KindScale              = "kubernetes.scale"
	KindImage              = "kubernetes.image"
	KindPostgresWait       = "azure.postgres.wait"
	KindPostgresDelete     = "azure.postgres.delete"
	KindBackupsList        = "azure.backups.list"
	KindPostgresCheckGone  = "azure.postgres.check_gone"
	KindPostgresPreparePTR = "azure.postgres.prepare_ptr"
	KindBackupsCheck       = "azure.backups.check"
	KindHTTPCheck          = "http.check"
	// ManualKind is the action kind of a checklist item a person marks done.
	ManualKind = "manual"
)

// Kinds is the catalog of action kinds a runbook may use.
var Kinds = map[string]Kind{
	KindCreateChannel: {
		Name: KindCreateChannel, Decode: decoder(DecodeChannel), Optional: []string{"name", "topic"},
		Describe: func(p Params) string {
			return "Create the incident channel " + orUnset(p, "name", "(default name)") + ", invite the responders, post and pin the control panel"
		},
	},
	KindNotifyStakeholders: {
		Name: KindNotifyStakeholders, Decode: decoder(DecodeText), Required: []string{"text"},
		Describe: func(p Params) string {
			return "Post to the stakeholder channel(s): " + quote(p, "text")
		},
	},
	KindNotifyDevelopers: {
		Name: KindNotifyDevelopers, Decode: decoder(DecodeText), Required: []string{"text"},
		Describe: func(p Params) string {
			return "Post to the developers channel(s): " + quote(p, "text")
		},
	},
	KindRequiredApprovals: {
		Name: KindRequiredApprovals, Decode: decoder(DecodeApprovals), Memory: approvalsMemory, Required: []string{"repo", "branch", "count"},
		Describe: func(p Params) string {
			return fmt.Sprintf("Set required PR approvals on %s@%s to %s (branch protection, review count only; the current count is remembered)",
				orUnset(p, "repo", "?"), orUnset(p, "branch", "?"), orUnset(p, "count", "?"))
		},
	},
	KindWorkflow: {
		// capture_url is a regexp: after a successful run, its first match in
		// the run's notice/warning annotations that is an http(s) URL is the
		// temporary URL the step remembers. Empty means "do not read it".
		Name: KindWorkflow, Decode: decoder(DecodeWorkflow), Required: []string{"repo", "ref", "workflow"}, Optional: []string{"inputs", "capture_url"},
		Describe: func(p Params) string {
			s := fmt.Sprintf("Dispatch workflow %s on %s@%s with inputs %s and follow the run to its conclusion",
				orUnset(p, "workflow", "?"), orUnset(p, "repo", "?"), orUnset(p, "ref", "?"), FormatInputs(p))
			if re := p.StringOr("capture_url", ""); re != "" {
				s += fmt.Sprintf(", then read the temporary URL from its annotations (first match of %s)", re)
			}
			return s
		},
	},
	KindBranchWithChange: {
		Name: KindBranchWithChange, Decode: decoder(DecodeBranchChange), Required: []string{"repo", "base", "branch", "file", "set"}, Optional: []string{"message"},
		Describe: func(p Params) string {
			set, _ := p.StringMap("set")
			return fmt.Sprintf("Create branch %s from %s@%s and commit %s setting %s",
				orUnset(p, "branch", "?"), orUnset(p, "repo", "?"), orUnset(p, "base", "?"), orUnset(p, "file", "?"), formatMap(set))
		},
	},
	KindScale: {
		Name: KindScale, Decode: decoder(DecodeScale), Memory: replicaMemory, Required: []string{"namespace", "replicas"}, Optional: []string{"deployments", "wait", "context"},
		Describe: func(p Params) string {
			ns := orUnset(p, "namespace", "?")
			if c := p.StringOr("context", ""); c != "" {
				ns += " --context " + c
			}
			if counts, err := p.IntMap("replicas"); err == nil {
				parts := make([]string, 0, len(counts))
				for _, d := range SortedKeys(counts) {
					parts = append(parts, fmt.Sprintf("kubectl -n %s scale deployment %s --replicas %d", ns, d, counts[d]))
				}
				return strings.Join(parts, "; ")
			}
			if _, err := p.Int("replicas"); err != nil {
				return fmt.Sprintf("kubectl -n %s scale each deployment back to its count in %v", ns, p["replicas"])
			}
			deps, _ := p.Strings("deployments")
			n := orUnset(p, "replicas", "?")
			parts := make([]string, 0, len(deps))
			for _, d := range deps {
				parts = append(parts, fmt.Sprintf("kubectl -n %s scale deployment %s --replicas %s", ns, d, n))
			}
			return strings.Join(parts, "; ") + " (current counts are remembered)"
		},
	},
	KindImage: {
		Name: KindImage, Decode: decoder(DecodeImage), Required: []string{"namespace", "deployment"}, Optional: []string{"context", "container"},
		Describe: func(p Params) string {
			return fmt.Sprintf("Read the image deployment %s/%s runs and remember its tag, the commit SHA the deploy workflow builds from",
				orUnset(p, "namespace", "?"), orUnset(p, "deployment", "?"))
		},
	},
	KindPostgresWait: {
		Name: KindPostgresWait, Decode: decoder(DecodeAzureServer), Required: []string{"resource_group", "server"}, Optional: []string{"subscription"},
		Describe: func(p Params) string {
			return fmt.Sprintf("Wait until Azure Postgres flexible server %s (resource group %s) is Ready",
				orUnset(p, "server", "?"), orUnset(p, "resource_group", "?"))
		},
	},
	KindPostgresDelete: {
		Name: KindPostgresDelete, Decode: decoder(DecodeAzureServer), Required: []string{"resource_group", "server"}, Optional: []string{"subscription"}, Destructive: true,
		Verb: "delete", Targets: func(spec any) []Resource {
			return []Resource{{Type: ResourcePostgresServer, Name: spec.(AzureServer).Server}}
		},
		Describe: func(p Params) string {
			return fmt.Sprintf("Delete Azure Postgres flexible server %s (resource group %s)",
				orUnset(p, "server", "?"), orUnset(p, "resource_group", "?"))
		},
	},
	KindBackupsList: {
		Name: KindBackupsList, Decode: decoder(DecodeBackups), Required: []string{"account", "container"}, Optional: []string{"prefix", "prefer"},
		Describe: func(p Params) string {
			remembered := "the newest is remembered"
			if prefer := p.StringOr("prefer", ""); prefer != "" {
				remembered = prefer + " is remembered if it is there"
			}
			return fmt.Sprintf("List backups in storage account %s, container %s (newest first; %s; Choose picks another)",
				orUnset(p, "account", "?"), orUnset(p, "container", "?"), remembered)
		},
	},
	// The Azure checks below read and never change anything: a check that
	// fails stops the run before the step it guards.
	KindPostgresCheckGone: {
		Name: KindPostgresCheckGone, Decode: decoder(DecodeAzureServer), Required: []string{"resource_group", "server"}, Optional: []string{"subscription"},
		Describe: func(p Params) string {
			return fmt.Sprintf("Check that Azure Postgres flexible server %s (resource group %s) is really gone or not Ready; fail if it is Ready",
				orUnset(p, "server", "?"), orUnset(p, "resource_group", "?"))
		},
	},
	KindPostgresPreparePTR: {
		Name: KindPostgresPreparePTR, Decode: decoder(DecodePTR), Required: []string{"resource_group", "server", "ptr_server", "restore_time"}, Optional: []string{"subscription"},
		Describe: func(p Params) string {
			ptr := orUnset(p, "ptr_server", "?")
			return fmt.Sprintf("Check that %s is inside the restore window of Azure Postgres flexible server %s (resource group %s: earliest restore point to 5 minutes ago) and that the PTR server name %s is free, else use the next free one (%s2, %s3…); the name to use is remembered",
				orUnset(p, "restore_time", "?"), orUnset(p, "server", "?"), orUnset(p, "resource_group", "?"), ptr, ptr, ptr)
		},
	},
	KindBackupsCheck: {
		Name: KindBackupsCheck, Decode: decoder(DecodeBackupCheck), Required: []string{"account", "container", "name", "expect"},
		Describe: func(p Params) string {
			what := "exists (show its size and age)"
			if p.StringOr("expect", "") == BackupFree {
				what = "does not exist yet (the backup workflow fails when it does)"
			}
			return fmt.Sprintf("Check that backup %s in storage account %s, container %s %s",
				orUnset(p, "name", "?"), orUnset(p, "account", "?"), orUnset(p, "container", "?"), what)
		},
	},
	KindHTTPCheck: {
		Name: KindHTTPCheck, Decode: decoder(DecodeHTTPCheck), Required: []string{"url"}, Optional: []string{"path", "expect_status", "expect_body", "timeout", "retries"},
		Describe: func(p Params) string {
			s := fmt.Sprintf("GET %s%s and expect HTTP %d", orUnset(p, "url", "?"), p.StringOr("path", ""), p.IntOr("expect_status", 200))
			if b := p.StringOr("expect_body", ""); b != "" {
				s += fmt.Sprintf(" with %q in the body", b)
			}
			return s
		},
	},
	ManualKind: {
		Name: ManualKind, Decode: decoder(DecodeManual), Required: []string{"instructions"}, Optional: []string{"command"},
		Describe: func(p Params) string {
			s := p.StringOr("instructions", "?")
			if c := p.StringOr("command", ""); c != "" {
				s += "\n  $ " + c
			}
			return s
		},
	},
}

// Describe returns the exact call a step with these params makes.
func Describe(kind string, p Params) string {
	k, ok := Kinds[kind]
	if !ok {
		return "unknown action " + kind
	}
	return k.Describe(p)
}

// FormatInputs renders a step's workflow inputs as {a: x, b: y}, sorted.
func FormatInputs(p Params) string {
	in, err := p.StringMap("inputs")
	if err != nil {
		return "{?}"
	}
	return formatMap(in)
}

func formatMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range SortedKeys(m) {
		parts = append(parts, k+": "+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func orUnset(p Params, key, def string) string {
	return p.StringOr(key, def)
}

func quote(p Params, key string) string {
	return fmt.Sprintf("%q", p.StringOr(key, ""))
}
