package config

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/examples"
)

func TestCommsConfig(t *testing.T) {
	cfg, err := Parse("examples/drbot.yaml", examples.Config, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Comms
	if len(c.P1Contacts) != 1 || c.UpdateEvery != time.Hour || c.UpdateEveryP1 != 30*time.Minute || c.DrillMaxAge != DefaultDrillMaxAge || c.FollowUpRepo == "" {
		t.Errorf("example comms %+v", c)
	}
	bad := strings.Replace(string(examples.Config), "p1_contacts: [S0P1ONCALL]", "p1_contacts: [U0NOTAGROUP, nonsense]", 1)
	bad = strings.Replace(bad, "update_every_p1: 30m", "update_every_p1: 5s", 1)
	bad = strings.Replace(bad, "follow_up_repo: DFE-Digital/itt-mentor-services", "follow_up_repo: just-a-name", 1)
	_, err = Parse("drbot.yaml", []byte(bad), noEnv)
	if err == nil {
		t.Fatal("bad comms settings accepted")
	}
	for _, want := range []string{`"U0NOTAGROUP" is not a Slack user-group id`, `"nonsense" is not a Slack user-group id`, "comms.update_every_p1", "comms.follow_up_repo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	noComms := strings.Replace(string(examples.Config), "  drill_max_age: 4380h", "", 1)
	cfg, err = Parse("drbot.yaml", []byte(noComms), noEnv)
	if err != nil || cfg.Comms.DrillMaxAge != DefaultDrillMaxAge {
		t.Errorf("default drill age: %v, %v", cfg.Comms.DrillMaxAge, err)
	}
}
