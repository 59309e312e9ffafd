package runbook

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// seedCoveredElsewhere maps the seed lines that are not quoted word for word
// in a step to the step that carries them out, and says how.
var seedCoveredElsewhere = map[string]struct{ scenario, step, how string }{
	"kubectl -n bat-staging get deployments":                                                  {"scenario-2", "scale-down", "the scale action reads each deployment's replicas before changing them"},
	"kubectl -n bat-staging scale deployment itt-mentor-services-staging --replicas 0":        {"scenario-2", "scale-down", "rendered from env.namespace and env.deployments"},
	"kubectl -n bat-staging scale deployment itt-mentor-services-staging-worker --replicas 0": {"scenario-2", "scale-down", "rendered from env.namespace and env.deployments"},
	"kubectl -n bat-staging scale deployment itt-mentor-services-staging --replicas 2":        {"scenario-2", "scale-up", "restores the remembered counts"},
	"kubectl -n bat-staging scale deployment itt-mentor-services-staging-worker --replicas 1": {"scenario-2", "scale-up", "restores the remembered counts"},
	"e.g. [update namespace and deployment names as required]":                                {"scenario-2", "scale-down", "names come from drbot.yaml"},
	"e.g. [update namespace, deployment names and replicas as required]":                      {"scenario-2", "scale-up", "names from drbot.yaml, counts remembered"},
	"To connect to the PTR postgres copy using psql":                                          {"scenario-2", "inspect-ptr", "explain"},
	"via konduit:":          {"scenario-2", "inspect-ptr", "explain"},
	"- Install":             {"scenario-2", "inspect-ptr", "instructions: install konduit.sh with make"},
	"konduit.sh":            {"scenario-2", "inspect-ptr", "instructions"},
	"locally using themake": {"scenario-2", "inspect-ptr", "instructions"},
	"command - Run:":        {"scenario-2", "inspect-ptr", "instructions"},
	"bin/konduit.sh -x -n <namespace-of-deployment> -s <name-of-ptr-server> <name-of-deployment> -- psql": {"scenario-2", "inspect-ptr", "command, rendered for the service"},
	"e.g. bin/konduit.sh -x -n tra-test -s s189t01-ittms-stg-pg-ptr itt-mentor-services-staging -- psql":  {"scenario-2", "inspect-ptr", "command, rendered for the service"},
	"To connect to the existing live postgres server for comparison:":                                     {"scenario-2", "inspect-ptr", "explain"},
	"- Run:": {"scenario-2", "inspect-ptr", "instructions"},
	"bin/konduit.sh -x name-of-deployment -- psql":                                                                                      {"scenario-2", "inspect-ptr", "instructions, rendered for the service"},
	"e.g. bin/konduit.sh -x itt-mentor-services-staging -- psql":                                                                        {"scenario-2", "inspect-ptr", "instructions, rendered for the service"},
	"e.g. https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud will display the application.":                 {"scenario-1", "check-app", "explain"},
	"Run the deploy workflow to recreate the missing postgres database.":                                                                {"scenario-1", "deploy-branch", "explain"},
	"As the maintenance page has been enabled, you will need to:":                                                                       {"scenario-1", "deploy-branch", "explain"},
	"e.g. https://claim-additional-payments-for-teaching-test-web.test.teacherservices.cloud will now display the maintenance page and": {"scenario-1", "enable-maintenance", "explain"},
	"https://claim-additional-payments-for-teaching-temp.test.teacherservices.cloud will display the application.":                      {"scenario-1", "enable-maintenance", "explain"},
	"Run the Disable maintenance workflow for the service and environment affected":                                                     {"scenario-2", "disable-maintenance", "explain"},
	"The maintenance page message can be updated at any time during the incident":                                                       {"scenario-2", "maintenance-message", "explain"},
}

// TestSeedIsCovered walks every line of the seed runbook and shows that each
// instruction is a step of its scenario: quoted in the step (or the
// runbook's description), or listed above with the step that carries it out.
func TestSeedIsCovered(t *testing.T) {
	seed, err := os.ReadFile("testdata/dr-runbook.txt")
	if err != nil {
		t.Fatal(err)
	}
	if shared, err := os.ReadFile("../../shared/seed/dr-runbook.txt"); err == nil && !bytes.Equal(shared, seed) {
		t.Fatal("testdata/dr-runbook.txt differs from ../shared/seed/dr-runbook.txt; copy the seed again and update the runbooks")
	}
	cat, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	text := map[string]string{}
	for id, rb := range cat {
		text[id] = corpus(rb)
	}
	scenario := "" // the intro before "Scenario 1:" is about the document itself
	used := map[string]bool{}
	for _, line := range strings.Split(string(seed), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "Scenario 1:"):
			scenario = "scenario-1"
			continue
		case strings.HasPrefix(line, "Scenario 2:"):
			scenario = "scenario-2"
			continue
		case scenario == "":
			continue
		}
		if strings.Contains(text[scenario], normalize(strings.TrimPrefix(line, "- "))) {
			continue
		}
		c, ok := seedCoveredElsewhere[line]
		if !ok {
			t.Errorf("%s: seed line is not a step: %q", scenario, line)
			continue
		}
		used[line] = true
		if c.scenario != scenario {
			t.Errorf("seed line %q is in %s but mapped to %s", line, scenario, c.scenario)
		}
		if _, ok := cat[c.scenario].Step(c.step); !ok {
			t.Errorf("seed line %q maps to missing step %s/%s", line, c.scenario, c.step)
		}
	}
	for line := range seedCoveredElsewhere {
		if !used[line] && !strings.Contains(text[seedCoveredElsewhere[line].scenario], normalize(strings.TrimPrefix(line, "- "))) {
			t.Errorf("mapping for %q matches no seed line", line)
		}
	}
}

func corpus(rb *Runbook) string {
	var b strings.Builder
	b.WriteString(rb.Description)
	for _, s := range rb.Steps {
		fmt.Fprintf(&b, "\n%s\n%s\n%v", s.Title, s.Explain, s.With)
	}
	return normalize(b.String())
}

func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }
