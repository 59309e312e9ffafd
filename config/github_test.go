package config

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/examples"
)

func TestGitHubDispatchSearch(t *testing.T) {
	tests := []struct {
		name    string
		setting string // added under github:; "" adds nothing
		want    time.Duration
		wantErr string
	}{
		{name: "default", want: 20 * time.Second},
		{name: "set", setting: "dispatch_search: 45s", want: 45 * time.Second},
		{name: "negative", setting: "dispatch_search: -5s", wantErr: "github.dispatch_search: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := string(examples.Config)
			if tt.setting != "" {
				yaml = strings.Replace(yaml, "\ngithub:\n", "\ngithub:\n  "+tt.setting+"\n", 1)
			}
			cfg, err := Parse("drbot.yaml", []byte(yaml), noEnv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GitHub.DispatchSearch != tt.want {
				t.Errorf("DispatchSearch = %s, want %s", cfg.GitHub.DispatchSearch, tt.want)
			}
		})
	}
}
