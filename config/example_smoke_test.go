package config

import "testing"

func TestExampleSmoke(t *testing.T) {
	cfg, err := Load("../examples/drbot.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Scope("itt-mentor-services", "staging"); err != nil {
		t.Fatal(err)
	}
}
