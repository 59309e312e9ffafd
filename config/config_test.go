package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/examples"
)

func noEnv(string) string { return "" }

func TestExampleConfig(t *testing.T) {
	cfg, err := Parse("examples/drbot.yaml", examples.Config, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	scope, err := cfg.Scope("itt-mentor-services", "staging")
	if err != nil {
		t.Fatal(err)
	}
	env := scope["env"].(map[string]any)
	pg := env["postgres"].(map[string]any)
	if pg["ptr_server"] != "s189t01-ittms-stg-pg-ptr" || env["namespace"] != "bat-staging" || env["app"] != "itt-mentor-services-staging" || env["confirm_production"] != "false" {
		t.Errorf("scope env = %v", env)
	}
}

func TestChannelName(t *testing.T) {
	cfg, err := Parse("x.yaml", examples.Config, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime(t, "2026-11-26T23:30:00Z")
	if got := cfg.ChannelName("itt-mentor-services", "staging", at); got != "dr-20261126-itt-mentor-services-staging" {
		t.Errorf("ChannelName = %q", got)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	bad := strings.NewReplacer(
		"namespace: bat-staging", "namespace: Bat_Staging",
		"server: s189t01-ittms-stg-pg\n", "server: X\n",
		"account: s189t01ittmsdbbkpstgsa", "account: not-a-storage-account",
		"temp_url: https://track-and-pay-temp.test.teacherservices.cloud", "temp_url: track-and-pay-temp",
		"users: [U0INCLEAD1]", "users: [ana]",
		"file: postgres-ptr.yml", "file: postgres-ptr",
		"timezone: Europe/London", "timezone: Europe/Londres",
	).Replace(string(examples.Config))
	_, err := Parse("drbot.yaml", []byte(bad), noEnv)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		`drbot.yaml: timezone: unknown zone "Europe/Londres"`,
		`drbot.yaml: services.itt-mentor-services.environments.staging.namespace: "Bat_Staging" is not a Kubernetes namespace name`,
		`services.itt-mentor-services.environments.staging.postgres.server: "X" is not a flexible server name`,
		`backup.account: "not-a-storage-account" is not a storage account name`,
		`temp_url: "track-and-pay-temp" must be the temporary ingress URL`,
		`slack.approvers.users: "ana" is not a Slack id`,
		`services.itt-mentor-services.workflows.ptr.file: "postgres-ptr" should be a workflow file name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q\n%v", want, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key refused with its line", "timezone: UTC\nslack:\n  aprovers: {}\n", nil, "line 3: field aprovers not found"},
		{"no services", "slack: {approvers: {users: [U0AAA]}}\n", nil, "services: configure at least one service"},
		{"no approvers", "services: {}\n", nil, "slack.approvers: name at least one approver"},
		{"bot token prefix", "services: {}\n", map[string]string{"SLACK_BOT_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN: must be a bot token starting xoxb-"},
		{"app token prefix", "services: {}\n", map[string]string{"SLACK_APP_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN: must be an app-level token starting xapp-"},
		{"unreadable secret file", "services: {}\n", map[string]string{"GITHUB_TOKEN_FILE": "/nonexistent/token"}, "GITHUB_TOKEN_FILE: cannot read /nonexistent/token"},
		{"bad default", "default: {service: nope, env: x}\nservices: {}\n", nil, `default: unknown service "nope"`},
		{"unknown key and the rest at once", "bogus: 1\nslack:\n  wat: 2\nservices: {}\n", nil,
			"c.yaml: line 1: field bogus not found in type config.Config\nc.yaml: line 3: field wat not found in type config.Slack\nc.yaml: slack.approvers: name at least one approver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSecretsComeFromEnvironmentAndNeverPrint(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, []byte("-----BEGIN KEY-----\nabc\n-----END KEY-----\n"), 0o600)
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-secret-1", "SLACK_APP_TOKEN": "xapp-secret-2", "GITHUB_TOKEN": "ghp_secret3", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile}
	cfg, err := Parse("c.yaml", examples.Config, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slack.BotToken.Value() != "xoxb-secret-1" || !strings.Contains(cfg.GitHub.PrivateKey.Value(), "abc") {
		t.Fatal("secrets not read")
	}
	js, _ := json.Marshal(cfg)
	for _, out := range []string{fmt.Sprintf("%v", cfg.Slack), fmt.Sprintf("%+v", cfg.GitHub), fmt.Sprintf("%#v", cfg.Slack.AppToken), string(js)} {
		for _, secret := range []string{"secret", "abc"} {
			if strings.Contains(out, secret) {
				t.Errorf("a secret leaked: %s", out)
			}
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTempURLPatternInScope(t *testing.T) {
	tests := []struct {
		name    string
		setting string // replaces the example's commented-out temp_url_from_maintenance line
		want    string
	}{
		{name: "not set: nothing is read", setting: "", want: ""},
		{name: "false", setting: "temp_url_from_maintenance: false", want: ""},
		{name: "true", setting: "temp_url_from_maintenance: true", want: TempURLPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "# temp_url_from_maintenance: true"
			if !strings.Contains(string(examples.Config), line) {
				t.Fatalf("the example no longer has %q", line)
			}
			yaml := strings.Replace(string(examples.Config), line, tt.setting+" #", 1)
			cfg, err := Parse("drbot.yaml", []byte(yaml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			scope, err := cfg.Scope("itt-mentor-services", "staging")
			if err != nil {
				t.Fatal(err)
			}
			env := scope["env"].(map[string]any)
			if got := env["temp_url_pattern"]; got != tt.want {
				t.Errorf("env.temp_url_pattern = %#v, want %q", got, tt.want)
			}
			if env["temp_url"] != "https://track-and-pay-temp.test.teacherservices.cloud" {
				t.Errorf("env.temp_url = %v, want the configured fallback", env["temp_url"])
			}
		})
	}
}

func TestTempURLPatternFindsTheTemporaryHost(t *testing.T) {
	re := regexp.MustCompile(TempURLPattern)
	tests := []struct{ text, want string }{
		{"https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud", "https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud"},
		{"The app is served at https://track-and-pay-temp.teacherservices.cloud/healthcheck.", "https://track-and-pay-temp.teacherservices.cloud"},
		{"Maintenance page on https://claim-additional-payments-for-teaching-test-web.test.teacherservices.cloud; app on https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud.", "https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud"},
		{"http://app-temp.localhost:8080/", "http://app-temp.localhost"},
		{"https://claim-additional-payments-for-teaching-test-web.test.teacherservices.cloud", ""},
		{"https://templates.example.com and https://www.example-temp.com", ""}, // -temp must end the first label
		{"Temporary URL", ""},
	}
	for _, tt := range tests {
		if got := re.FindString(tt.text); got != tt.want {
			t.Errorf("FindString(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
