package config

import (
	"regexp"
	"time"
)

// Comms configures the comms lead's side of a run: who a P1 notice
// mentions, how often stakeholders are updated, where follow-ups go and
// how old a DR test may get.
type Comms struct {
	// P1Contacts are user-group ids (S…) mentioned in the stakeholder
	// notice of a P1 incident.
	P1Contacts []string `yaml:"p1_contacts"`
	// UpdateEvery is the stakeholder update cadence (default 60m);
	// UpdateEveryP1 the cadence of a P1 (default 30m).
	UpdateEvery   time.Duration `yaml:"update_every"`
	UpdateEveryP1 time.Duration `yaml:"update_every_p1"`
	// FollowUpRepo is the owner/name the Raise follow-up button opens
	// issues in; empty hides the button.
	FollowUpRepo string `yaml:"follow_up_repo"`
	// DrillMaxAge flags a service whose last DR test is older (default
	// 6 months, written 4380h).
	DrillMaxAge time.Duration `yaml:"drill_max_age"`
}

// DefaultDrillMaxAge is six months.
const DefaultDrillMaxAge = 4380 * time.Hour

var groupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)

// validate checks the comms settings.
func (c *Comms) validate(fail func(key, format string, args ...any)) {
	for _, id := range c.P1Contacts {
		if !groupID.MatchString(id) {
			fail("comms.p1_contacts", "%q is not a Slack user-group id (they look like S0123ABCD)", id)
		}
	}
	for key, d := range map[string]time.Duration{"comms.update_every": c.UpdateEvery, "comms.update_every_p1": c.UpdateEveryP1, "comms.drill_max_age": c.DrillMaxAge} {
		if d < 0 || (d > 0 && d < time.Minute) {
			fail(key, "must be at least a minute, e.g. 60m")
		}
	}
	if c.FollowUpRepo != "" && !repoPattern.MatchString(c.FollowUpRepo) {
		fail("comms.follow_up_repo", "%q must be owner/name", c.FollowUpRepo)
	}
	if c.DrillMaxAge == 0 {
		c.DrillMaxAge = DefaultDrillMaxAge
	}
}
