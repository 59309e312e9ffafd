package runbook

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// One contract per action kind: each Decode* function below is the only
// reader of its kind's parameters. The real adapter, the simulated one, plan
// and the start of a run all call it, so a value the live adapter would refuse
// is refused when the run starts and a rehearsal proves the live run.

// Repo is a GitHub repository, owner/name.
type Repo struct{ Owner, Name string }

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// ScaleTarget is one deployment and the count it must reach.
type ScaleTarget struct {
	Deployment string
	Replicas   int
}

// ScaleSpec is a kubernetes.scale step.
type ScaleSpec struct {
	Context   string // kubeconfig context; "" means the current one
	Namespace string
	Targets   []ScaleTarget // sorted by deployment, at least one
	Wait      bool          // wait for the rollout (default true)
}

// ApprovalsSpec is a github.required_approvals step.
type ApprovalsSpec struct {
	Repo   Repo
	Branch string
	Count  int
}

// WorkflowSpec is a github.workflow step.
type WorkflowSpec struct {
	Repo   Repo
	Ref    string
	File   string // the workflow file name, e.g. backup-db.yml
	Inputs map[string]string
	// Capture, when set, is matched against a successful run's annotations to
	// read the temporary URL it reports.
	Capture *regexp.Regexp
}

// BranchChangeSpec is a github.branch_with_change step.
type BranchChangeSpec struct {
	Repo         Repo
	Base, Branch string
	File         string
	Set          map[string]string
	Message      string
}

// ServerSpec names an Azure Postgres flexible server (azure.postgres.wait,
// azure.postgres.delete).
type ServerSpec struct {
	ResourceGroup string
	Server        string
}

// BackupsSpec is an azure.backups.list step.
type BackupsSpec struct {
	Account, Container, Prefix string
	// Prefer is the backup to remember instead of the newest (a run's
	// backup_file input); it must be in the container.
	Prefer string
}

// HTTPCheckSpec is an http.check step.
type HTTPCheckSpec struct {
	URL     string // the url with the path appended
	Status  int
	Body    string
	Timeout time.Duration
	Retries int
}

// TextSpec is a Slack post (slack.notify_stakeholders, slack.notify_developers).
type TextSpec struct{ Text string }

// ChannelSpec is a slack.create_channel step.
type ChannelSpec struct{ Name, Topic string }

// ManualSpec is a checklist item a person marks done.
type ManualSpec struct{ Instructions, Command string }

// Defaults of the http.check parameters.
const (
	DefaultHTTPStatus  = 200
	DefaultHTTPTimeout = 10 * time.Second
	DefaultHTTPRetries = 3
)

// MaxRequiredApprovals is GitHub's maximum required approving review count
// (branch protection API: required_approving_review_count is 0-6).
const MaxRequiredApprovals = 6

var (
	repoPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	// dnsLabel is a Kubernetes namespace or deployment name (RFC 1123 label).
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// serverName is Azure's rule for a flexible server: 3-63 characters,
	// lowercase letters, digits and hyphens, not starting or ending with a
	// hyphen (Microsoft.DBforPostgreSQL naming rules).
	serverName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	// storageAccount is Azure's storage account name rule.
	storageAccount = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	// resourceGroup is Azure's resource group rule (1-90 of these characters).
	resourceGroup = regexp.MustCompile(`^[-\w.()]{1,90}$`)
	// refPattern keeps branch names and refs to git's safe subset.
	refPattern = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
)

// CheckServerName reports whether s is a valid flexible server name.
func CheckServerName(s string) error {
	if !serverName.MatchString(s) {
		return fmt.Errorf("%q is not a flexible server name (3-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen)", s)
	}
	return nil
}

// DecodeScale reads kubernetes.scale: deployments plus one count for all, or
// replicas as a mapping deployment -> count (restoring remembered counts; a
// deployments list given with it must then have a count each).
func DecodeScale(p Params) (ScaleSpec, error) {
	s := ScaleSpec{Context: p.StringOr("context", ""), Wait: p.Bool("wait", true)}
	var err error
	if s.Namespace, err = p.String("namespace"); err != nil {
		return s, err
	}
	if !dnsLabel.MatchString(s.Namespace) {
		return s, fmt.Errorf("parameter \"namespace\": %q is not a Kubernetes namespace name", s.Namespace)
	}
	counts := map[string]int{}
	if _, isMap := p.Map("replicas"); isMap {
		if counts, err = p.IntMap("replicas"); err != nil {
			return s, err
		}
		if names, err := p.Strings("deployments"); err == nil {
			for _, n := range names {
				if _, ok := counts[n]; !ok {
					return s, fmt.Errorf("parameter \"replicas\" has no count for deployment %q", n)
				}
			}
		}
	} else {
		n, err := p.Int("replicas")
		if err != nil {
			return s, fmt.Errorf("%w (give a number with \"deployments\", or a mapping deployment: count)", err)
		}
		names, err := p.Strings("deployments")
		if err != nil {
			return s, err
		}
		for _, name := range names {
			counts[name] = n
		}
	}
	if len(counts) == 0 {
		return s, errors.New("no deployments to scale: parameter \"deployments\" or \"replicas\" is empty")
	}
	for _, name := range SortedKeys(counts) {
		n := counts[name]
		if !dnsLabel.MatchString(name) {
			return s, fmt.Errorf("parameter \"deployments\": %q is not a Kubernetes deployment name", name)
		}
		if n < 0 || n > math.MaxInt32 {
			return s, fmt.Errorf("replicas for deployment %q is %d; want 0 or more", name, n)
		}
		s.Targets = append(s.Targets, ScaleTarget{Deployment: name, Replicas: n})
	}
	return s, nil
}

// Counts returns the targets as deployment -> count.
func (s ScaleSpec) Counts() map[string]int {
	m := make(map[string]int, len(s.Targets))
	for _, t := range s.Targets {
		m[t.Deployment] = t.Replicas
	}
	return m
}

// DecodeApprovals reads github.required_approvals.
func DecodeApprovals(p Params) (ApprovalsSpec, error) {
	var s ApprovalsSpec
	var err error
	if s.Repo, err = decodeRepo(p); err != nil {
		return s, err
	}
	if s.Branch, err = decodeRef(p, "branch"); err != nil {
		return s, err
	}
	if s.Count, err = p.Int("count"); err != nil {
		return s, err
	}
	if s.Count < 0 || s.Count > MaxRequiredApprovals {
		return s, fmt.Errorf("parameter \"count\": GitHub allows 0 to %d required approvals, got %d", MaxRequiredApprovals, s.Count)
	}
	return s, nil
}

// DecodeWorkflow reads github.workflow.
func DecodeWorkflow(p Params) (WorkflowSpec, error) {
	var s WorkflowSpec
	var err error
	if s.Repo, err = decodeRepo(p); err != nil {
		return s, err
	}
	if s.Ref, err = decodeRef(p, "ref"); err != nil {
		return s, err
	}
	file, err := p.String("workflow")
	if err != nil {
		return s, err
	}
	s.File = path.Base(file) // ".github/workflows/x.yml" names the same workflow as "x.yml"
	if !strings.HasSuffix(s.File, ".yml") && !strings.HasSuffix(s.File, ".yaml") {
		return s, fmt.Errorf("parameter \"workflow\": %q is not a workflow file name such as backup-db.yml", file)
	}
	if s.Inputs, err = p.StringMap("inputs"); err != nil {
		return s, err
	}
	// GitHub allows at most 25 inputs to workflow_dispatch (docs: "Events
	// that trigger workflows", workflow_dispatch).
	if len(s.Inputs) > 25 {
		return s, fmt.Errorf("parameter \"inputs\": GitHub takes at most 25 workflow inputs, got %d", len(s.Inputs))
	}
	if s.Capture, err = decodeCapture(p); err != nil {
		return s, err
	}
	return s, nil
}

func decodeCapture(p Params) (*regexp.Regexp, error) {
	v, ok := p["capture_url"]
	if !ok || v == nil {
		return nil, nil
	}
	text, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("parameter \"capture_url\": want a regular expression, got %T", v)
	}
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	re, err := regexp.Compile(text)
	if err != nil {
		return nil, fmt.Errorf("parameter \"capture_url\": %q is not a regular expression (Go RE2 syntax): %w", text, err)
	}
	return re, nil
}

// DecodeBranchChange reads github.branch_with_change.
func DecodeBranchChange(p Params) (BranchChangeSpec, error) {
	var s BranchChangeSpec
	var err error
	if s.Repo, err = decodeRepo(p); err != nil {
		return s, err
	}
	if s.Base, err = decodeRef(p, "base"); err != nil {
		return s, err
	}
	if s.Branch, err = decodeRef(p, "branch"); err != nil {
		return s, err
	}
	if s.Base == s.Branch {
		return s, fmt.Errorf("parameter \"branch\": must differ from the base branch %q", s.Base)
	}
	if s.File, err = p.String("file"); err != nil {
		return s, err
	}
	s.File = strings.TrimPrefix(s.File, "/")
	if s.Set, err = p.StringMap("set"); err != nil {
		return s, err
	}
	if len(s.Set) == 0 {
		return s, fmt.Errorf("parameter \"set\" is empty: name the keys to set in %s", s.File)
	}
	parts := make([]string, 0, len(s.Set))
	for _, k := range SortedKeys(s.Set) {
		parts = append(parts, k+"="+s.Set[k])
	}
	s.Message = p.StringOr("message", fmt.Sprintf("drbot: set %s in %s", strings.Join(parts, ", "), s.File))
	return s, nil
}

// DecodeServer reads azure.postgres.wait and azure.postgres.delete.
func DecodeServer(p Params) (ServerSpec, error) {
	var s ServerSpec
	var err error
	if s.ResourceGroup, err = p.String("resource_group"); err != nil {
		return s, err
	}
	if !resourceGroup.MatchString(s.ResourceGroup) || strings.HasSuffix(s.ResourceGroup, ".") {
		return s, fmt.Errorf("parameter \"resource_group\": %q is not an Azure resource group name", s.ResourceGroup)
	}
	if s.Server, err = p.String("server"); err != nil {
		return s, err
	}
	if err := CheckServerName(s.Server); err != nil {
		return s, fmt.Errorf("parameter \"server\": %w", err)
	}
	return s, nil
}

// DecodeBackups reads azure.backups.list.
func DecodeBackups(p Params) (BackupsSpec, error) {
	var s BackupsSpec
	var err error
	if s.Account, err = p.String("account"); err != nil {
		return s, err
	}
	if !storageAccount.MatchString(s.Account) {
		return s, fmt.Errorf("parameter \"account\": %q is not a storage account name (3-24 lowercase letters and digits)", s.Account)
	}
	if s.Container, err = p.String("container"); err != nil {
		return s, err
	}
	s.Prefix = p.StringOr("prefix", "")
	s.Prefer = strings.TrimSpace(p.StringOr("prefer", ""))
	if s.Prefer != "" && !strings.HasSuffix(s.Prefer, BackupSuffix) {
		return s, fmt.Errorf("parameter \"prefer\": %q is not a backup blob name; give the full name ending %s", s.Prefer, BackupSuffix)
	}
	return s, nil
}

// DecodeHTTPCheck reads http.check.
func DecodeHTTPCheck(p Params) (HTTPCheckSpec, error) {
	var s HTTPCheckSpec
	base, err := p.String("url")
	if err != nil {
		return s, err
	}
	s.URL = base
	if pth := p.StringOr("path", ""); pth != "" {
		s.URL = strings.TrimRight(base, "/") + "/" + strings.TrimLeft(pth, "/")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("parameter \"url\": want an http(s) URL, got %q", s.URL)
	}
	if s.Status, err = optionalInt(p, "expect_status", DefaultHTTPStatus); err != nil {
		return s, err
	}
	if s.Status < 100 || s.Status > 599 {
		return s, fmt.Errorf("parameter \"expect_status\": want an HTTP status (100-599), got %d", s.Status)
	}
	if s.Retries, err = optionalInt(p, "retries", DefaultHTTPRetries); err != nil {
		return s, err
	}
	if s.Retries < 0 {
		return s, fmt.Errorf("parameter \"retries\": want 0 or more, got %d", s.Retries)
	}
	s.Body = p.StringOr("expect_body", "")
	if s.Timeout, err = decodeTimeout(p); err != nil {
		return s, err
	}
	return s, nil
}

// optionalInt returns an integer parameter, def when it is absent, and an
// error when it is there but not a number (rather than silently the default).
func optionalInt(p Params, key string, def int) (int, error) {
	if v, ok := p[key]; !ok || v == nil || v == "" {
		return def, nil
	}
	return p.Int(key)
}

// decodeTimeout reads a Go duration ("30s"); a bare number means seconds.
func decodeTimeout(p Params) (time.Duration, error) {
	s := p.StringOr("timeout", "")
	if s == "" {
		return DefaultHTTPTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, fmt.Errorf("parameter \"timeout\": want a duration such as 10s, got %q", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, fmt.Errorf("parameter \"timeout\": want a positive duration, got %q", s)
	}
	return d, nil
}

// DecodeText reads the Slack posting kinds.
func DecodeText(p Params) (TextSpec, error) {
	text, err := p.String("text")
	return TextSpec{Text: text}, err
}

// DecodeChannel reads slack.create_channel.
func DecodeChannel(p Params) (ChannelSpec, error) {
	return ChannelSpec{Name: p.StringOr("name", ""), Topic: p.StringOr("topic", "")}, nil
}

// DecodeManual reads manual.
func DecodeManual(p Params) (ManualSpec, error) {
	in, err := p.String("instructions")
	return ManualSpec{Instructions: in, Command: p.StringOr("command", "")}, err
}

func decodeRepo(p Params) (Repo, error) {
	repo, err := p.String("repo")
	if err != nil {
		return Repo{}, err
	}
	owner, name, _ := strings.Cut(repo, "/")
	if !repoPattern.MatchString(repo) {
		return Repo{}, fmt.Errorf("parameter \"repo\": want owner/name, got %q", repo)
	}
	return Repo{Owner: owner, Name: name}, nil
}

func decodeRef(p Params, key string) (string, error) {
	ref, err := p.String(key)
	if err != nil {
		return "", err
	}
	if !refPattern.MatchString(ref) || strings.Contains(ref, "..") || strings.HasPrefix(ref, "-") {
		return "", fmt.Errorf("parameter %q: %q is not a branch or ref name", key, ref)
	}
	return ref, nil
}

// decoder adapts a typed Decode function to Kind.Decode.
func decoder[T any](f func(Params) (T, error)) func(Params) (any, error) {
	return func(p Params) (any, error) { return f(p) }
}

// ImageSpec is a kubernetes.image step: read the image a deployment runs.
type ImageSpec struct {
	Context    string // kubeconfig context; "" means the current one
	Namespace  string
	Deployment string
	Container  string // "" means the deployment's first container
}

// DecodeImage reads kubernetes.image.
func DecodeImage(p Params) (ImageSpec, error) {
	s := ImageSpec{Context: p.StringOr("context", ""), Container: p.StringOr("container", "")}
	var err error
	if s.Namespace, err = p.String("namespace"); err != nil {
		return s, err
	}
	if !dnsLabel.MatchString(s.Namespace) {
		return s, fmt.Errorf("parameter \"namespace\": %q is not a Kubernetes namespace name", s.Namespace)
	}
	if s.Deployment, err = p.String("deployment"); err != nil {
		return s, err
	}
	if !dnsLabel.MatchString(s.Deployment) {
		return s, fmt.Errorf("parameter \"deployment\": %q is not a Kubernetes deployment name", s.Deployment)
	}
	return s, nil
}

// commitSHA is what an image tag must look like to be deployed by commit:
// the deploy workflows take the commit SHA the image was built from.
var commitSHA = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// ImageCommit returns the commit SHA an image reference is tagged with
// ("registry/app:3f2a9c1…" or "…:3f2a9c1@sha256:…"), or an error saying why
// it is not one.
func ImageCommit(image string) (string, error) {
	ref, _, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		return "", fmt.Errorf("image %q has no tag; the deploy workflow needs the commit SHA it was built from", image)
	}
	tag := ref[colon+1:]
	if !commitSHA.MatchString(tag) {
		return "", fmt.Errorf("image %q is tagged %q, not a commit SHA; the deploy workflow needs the SHA the image was built from", image, tag)
	}
	return tag, nil
}
