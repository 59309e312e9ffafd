// Package config loads drbot.yaml and the environment, validates them and
// turns a service/environment into the template values runbooks refer to.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the display zone must resolve on minimal images

	"gopkg.in/yaml.v3"

	"github.com/drbot-dev/drbot/runbook"
)

// Config is drbot's whole configuration. Only cmd sees all of it; packages
// get plain values.
type Config struct {
	// Timezone is the local zone shown next to UTC (default Europe/London).
	Timezone string             `yaml:"timezone"`
	Location *time.Location     `yaml:"-"`
	Runbooks string             `yaml:"runbooks"` // folder of *.yaml overriding the embedded runbooks
	Slack    Slack              `yaml:"slack"`
	GitHub   GitHub             `yaml:"github"`
	Comms    Comms              `yaml:"comms"`
	Services map[string]Service `yaml:"services"`
	// Default names the service and environment rehearse and plan use when
	// none is given.
	Default struct {
		Service string `yaml:"service"`
		Env     string `yaml:"env"`
	} `yaml:"default"`
	File string `yaml:"-"`
}

// Slack configures the bot's channels and who may act.
type Slack struct {
	StakeholderChannels []string   `yaml:"stakeholder_channels"`
	DeveloperChannels   []string   `yaml:"developer_channels"`
	Approvers           Principals `yaml:"approvers"`
	Responders          Principals `yaml:"responders"`
	// ChannelName is the incident channel pattern; {date}, {service} and {env}
	// are replaced (default "dr-{date}-{service}-{env}").
	ChannelName string `yaml:"channel_name"`
	BotToken    Secret `yaml:"-"` // SLACK_BOT_TOKEN
	AppToken    Secret `yaml:"-"` // SLACK_APP_TOKEN
	APIURL      string `yaml:"-"` // SLACK_API_URL
}

// Principals are Slack user ids and user-group ids.
type Principals struct {
	Users  []string `yaml:"users"`
	Groups []string `yaml:"groups"`
}

// GitHub holds GitHub credentials, from the environment only.
type GitHub struct {
	APIURL         string `yaml:"api_url"` // GITHUB_API_URL overrides
	Token          Secret `yaml:"-"`       // GITHUB_TOKEN
	AppID          int64  `yaml:"app_id"`
	InstallationID int64  `yaml:"installation_id"`
	PrivateKey     Secret `yaml:"-"` // GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE
	// PollInterval is how often a followed workflow run is polled (default
	// 10s; GitHub's X-Poll-Interval wins when longer). 304s are free.
	PollInterval time.Duration `yaml:"poll_interval"`
	// DispatchSearch is how long drbot looks for the run of a dispatch whose
	// answer was lost (a 5xx) before it takes the dispatch for refused and
	// dispatches again, once (default 20s, as github.DefaultDispatchSearch).
	DispatchSearch time.Duration `yaml:"dispatch_search"`
}

// Service is one application: its repo and workflows, and its environments.
type Service struct {
	Repo          string                 `yaml:"repo"`
	DefaultBranch string                 `yaml:"default_branch"`
	Short         string                 `yaml:"short"` // short name for backup file names, e.g. ittms
	Workflows     map[string]Workflow    `yaml:"workflows"`
	Environments  map[string]Environment `yaml:"environments"`
}

// Workflow is a GitHub Actions workflow file and its inputs. Input values are
// templates: they see the run's values and the step's own vars (.step.*).
type Workflow struct {
	File   string            `yaml:"file"`
	Inputs map[string]string `yaml:"inputs"`
}

// Environment is one deployment of a service.
type Environment struct {
	Name        string   `yaml:"name"` // the environment as workflows know it (default: the key)
	Short       string   `yaml:"short"`
	Branch      string   `yaml:"branch"` // overrides the service's default branch
	KubeContext string   `yaml:"kube_context"`
	Namespace   string   `yaml:"namespace"`
	Deployments []string `yaml:"deployments"`
	App         string   `yaml:"app"` // the deployment konduit connects through (default: the first)
	Postgres    Postgres `yaml:"postgres"`
	Backup      Backup   `yaml:"backup"`
	TempURL     string   `yaml:"temp_url"` // always required: the fallback when the URL is not read from the maintenance run
	HealthPath  string   `yaml:"health_path"`
	Production  bool     `yaml:"production"`
	// TempURLFromMaintenance makes the enable-maintenance step read the
	// temporary URL from its workflow run's annotations (TempURLPattern);
	// a URL read there wins over TempURL.
	TempURLFromMaintenance bool `yaml:"temp_url_from_maintenance"`
	// TFVarsFile and TFVarsSet are scenario 1's "keep deploying while in
	// maintenance" change: the file and the keys to set on the DR branch.
	TFVarsFile string         `yaml:"tfvars_file"`
	TFVarsSet  map[string]any `yaml:"tfvars_set"`
}

// Postgres is the Azure Postgres flexible server of an environment.
type Postgres struct {
	ResourceGroup string `yaml:"resource_group"`
	Server        string `yaml:"server"`
	PTRServer     string `yaml:"ptr_server"` // default <server>-ptr
	// SubscriptionID is the Azure subscription of the server; empty means
	// AZURE_SUBSCRIPTION_ID.
	SubscriptionID string `yaml:"subscription_id"`
}

// Backup is where the database backups are stored.
type Backup struct {
	Account   string `yaml:"account"`
	Container string `yaml:"container"`
}

// TempURLPattern finds the temporary URL in a maintenance run's annotations
// when an environment sets temp_url_from_maintenance. The workflow reports it
// with `echo "::notice title=Temporary URL::https://…"`; temporary ingress
// hosts end their first label in -temp (e.g.
// https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud),
// which keeps the live host, also printed by such workflows, out. Only the
// scheme and host are taken, without a trailing dot or path, since http.check
// appends its own path.
const TempURLPattern = `https?://[A-Za-z0-9-]+-temp\.[A-Za-z0-9.-]*[A-Za-z0-9]`

// WorkflowRoles are the workflows a service must configure.
var WorkflowRoles = []string{"maintenance_enable", "maintenance_disable", "deploy", "backup", "restore", "ptr"}

var (
	repoPattern    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	dnsLabel       = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	serverPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	accountPattern = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	slackID        = regexp.MustCompile(`^[UWSCG][A-Z0-9]{2,}$`)
)

// Load reads the config file and the environment and validates both,
// reporting every problem at once. getenv is os.Getenv outside tests.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w (set DRBOT_CONFIG or --config; examples/drbot.yaml is a start)", err)
	}
	return Parse(path, data, getenv)
}

// Parse is Load on bytes already read.
func Parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	cfg := &Config{File: file}
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", file, key, fmt.Sprintf(format, args...)))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		// Unknown keys and wrong types still decode the rest: report them
		// with every other problem, at once. Broken YAML stops here.
		var typeErr *yaml.TypeError
		if !errors.As(err, &typeErr) {
			return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		for _, e := range typeErr.Errors {
			errs = append(errs, fmt.Errorf("%s: %s", file, e))
		}
	}
	cfg.fromEnv(getenv, fail)
	cfg.defaults()
	cfg.validate(fail)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func (c *Config) fromEnv(getenv func(string) string, fail func(key, format string, args ...any)) {
	secret := func(name string) Secret {
		if v := getenv(name); v != "" {
			return Secret(strings.TrimSpace(v))
		}
		if f := getenv(name + "_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				fail(name+"_FILE", "cannot read %s: %v", f, err)
				return ""
			}
			return Secret(strings.TrimSpace(string(b)))
		}
		return ""
	}
	c.Slack.BotToken = secret("SLACK_BOT_TOKEN")
	c.Slack.AppToken = secret("SLACK_APP_TOKEN")
	c.Slack.APIURL = getenv("SLACK_API_URL")
	c.GitHub.Token = secret("GITHUB_TOKEN")
	c.GitHub.PrivateKey = secret("GITHUB_APP_PRIVATE_KEY")
	if u := getenv("GITHUB_API_URL"); u != "" {
		c.GitHub.APIURL = u
	}
	if t := c.Slack.BotToken.Value(); t != "" && !strings.HasPrefix(t, "xoxb-") {
		fail("SLACK_BOT_TOKEN", "must be a bot token starting xoxb- (OAuth & Permissions page of the Slack app)")
	}
	if t := c.Slack.AppToken.Value(); t != "" && !strings.HasPrefix(t, "xapp-") {
		fail("SLACK_APP_TOKEN", "must be an app-level token starting xapp- with connections:write (Basic Information page)")
	}
}

func (c *Config) defaults() {
	if c.Timezone == "" {
		c.Timezone = "Europe/London"
	}
	if c.GitHub.PollInterval == 0 {
		c.GitHub.PollInterval = 10 * time.Second
	}
	if c.GitHub.DispatchSearch == 0 {
		c.GitHub.DispatchSearch = 20 * time.Second
	}
	if c.Slack.ChannelName == "" {
		c.Slack.ChannelName = "dr-{date}-{service}-{env}"
	}
	for name, svc := range c.Services {
		if svc.DefaultBranch == "" {
			svc.DefaultBranch = "main"
		}
		if svc.Short == "" {
			svc.Short = name
		}
		for key, env := range svc.Environments {
			if env.Name == "" {
				env.Name = key
			}
			if env.Short == "" {
				env.Short = env.Name
			}
			if env.Branch == "" {
				env.Branch = svc.DefaultBranch
			}
			if env.App == "" && len(env.Deployments) > 0 {
				env.App = env.Deployments[0]
			}
			if env.Postgres.PTRServer == "" && env.Postgres.Server != "" {
				env.Postgres.PTRServer = env.Postgres.Server + "-ptr"
			}
			svc.Environments[key] = env
		}
		c.Services[name] = svc
	}
}

func (c *Config) validate(fail func(key, format string, args ...any)) {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		fail("timezone", "unknown zone %q; use an IANA name such as Europe/London", c.Timezone)
	} else {
		c.Location = loc
	}
	for key, ids := range map[string][]string{
		"slack.approvers.users": c.Slack.Approvers.Users, "slack.approvers.groups": c.Slack.Approvers.Groups,
		"slack.responders.users": c.Slack.Responders.Users, "slack.responders.groups": c.Slack.Responders.Groups,
	} {
		for _, id := range ids {
			if !slackID.MatchString(id) {
				fail(key, "%q is not a Slack id (users look like U0123ABCD, user groups like S0123ABCD)", id)
			}
		}
	}
	c.Comms.validate(fail)
	if c.GitHub.PollInterval < 0 {
		fail("github.poll_interval", "must be positive, e.g. 10s")
	}
	if c.GitHub.DispatchSearch < 0 {
		fail("github.dispatch_search", "must be positive, e.g. 20s")
	}
	if len(c.Slack.Approvers.Users)+len(c.Slack.Approvers.Groups) == 0 {
		fail("slack.approvers", "name at least one approver (users or groups); nobody could approve a step")
	}
	if len(c.Services) == 0 {
		fail("services", "configure at least one service")
	}
	if d := c.Default; d.Service != "" || d.Env != "" {
		if _, err := c.Scope(d.Service, d.Env); err != nil {
			fail("default", "%v", err)
		}
	}
	for name, svc := range c.Services {
		p := "services." + name
		if !repoPattern.MatchString(svc.Repo) {
			fail(p+".repo", "%q must be owner/name", svc.Repo)
		}
		for _, role := range WorkflowRoles {
			wf, ok := svc.Workflows[role]
			if !ok || wf.File == "" {
				fail(p+".workflows."+role+".file", "is required (the workflow file under .github/workflows)")
			} else if !strings.HasSuffix(wf.File, ".yml") && !strings.HasSuffix(wf.File, ".yaml") {
				fail(p+".workflows."+role+".file", "%q should be a workflow file name such as backup-db.yml", wf.File)
			}
		}
		for role := range svc.Workflows {
			if !slices.Contains(WorkflowRoles, role) {
				fail(p+".workflows."+role, "unknown workflow role; roles are %s", strings.Join(WorkflowRoles, ", "))
			}
		}
		if len(svc.Environments) == 0 {
			fail(p+".environments", "configure at least one environment")
		}
		for key, env := range svc.Environments {
			env.validate(p+".environments."+key, fail)
		}
	}
}

func (e Environment) validate(p string, fail func(key, format string, args ...any)) {
	if !dnsLabel.MatchString(e.Namespace) {
		fail(p+".namespace", "%q is not a Kubernetes namespace name", e.Namespace)
	}
	if len(e.Deployments) == 0 {
		fail(p+".deployments", "list the web and worker deployments to stop")
	}
	for _, d := range e.Deployments {
		if !dnsLabel.MatchString(d) {
			fail(p+".deployments", "%q is not a Kubernetes deployment name", d)
		}
	}
	if e.Postgres.ResourceGroup == "" {
		fail(p+".postgres.resource_group", "is required")
	}
	for key, s := range map[string]string{"server": e.Postgres.Server, "ptr_server": e.Postgres.PTRServer} {
		if !serverPattern.MatchString(s) {
			fail(p+".postgres."+key, "%q is not a flexible server name (3-63 lowercase letters, digits, dashes)", s)
		}
	}
	if s := e.Postgres.SubscriptionID; s != "" {
		if err := runbook.CheckSubscriptionID(s); err != nil {
			fail(p+".postgres.subscription_id", "%v", err)
		}
	}
	if e.Postgres.Server != "" && e.Postgres.Server == e.Postgres.PTRServer {
		fail(p+".postgres.ptr_server", "must differ from the live server, or a PTR would overwrite it")
	}
	if !accountPattern.MatchString(e.Backup.Account) {
		fail(p+".backup.account", "%q is not a storage account name (3-24 lowercase letters and digits)", e.Backup.Account)
	}
	if e.Backup.Container == "" {
		fail(p+".backup.container", "is required")
	}
	if !strings.HasPrefix(e.TempURL, "https://") && !strings.HasPrefix(e.TempURL, "http://") {
		fail(p+".temp_url", "%q must be the temporary ingress URL (https://…); it is configured per service, never guessed", e.TempURL)
	}
	if e.HealthPath != "" && !strings.HasPrefix(e.HealthPath, "/") {
		fail(p+".health_path", "%q must start with /", e.HealthPath)
	}
	if e.TFVarsFile == "" || len(e.TFVarsSet) == 0 {
		fail(p+".tfvars_file", "tfvars_file and tfvars_set are needed by scenario 1 (keep deploying while in maintenance)")
	}
}
