package runbook

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DrillInput is the boolean runbook input that adds a DR test's post-scenario
// steps; a run declared as a DR test sets it, and setting it declares one.
const DrillInput = "dr_test"

// maxDescription bounds the one-line description (a channel topic holds 250
// characters, https://api.slack.com/methods/conversations.setTopic).
const maxDescription = 150

// Declare checks the playbook's declaration of a run started with rb and
// inputs (as typed), and returns it and the inputs as the run will have
// them: priority and kind parsed, the description on one line, the
// incident lead defaulting to actor. A DR test sets the runbook's dr_test
// input, and dr_test=true without a kind declares a DR test, so the two
// never disagree. Every problem is in one refusal. The engine calls it when
// a run starts; callers that show the declaration before (the channel
// topic) call it too.
func Declare(rb *Runbook, in Incident, inputs map[string]string, actor string) (Incident, map[string]string, error) {
	var problems []string
	p, err := ParsePriority(string(in.Priority))
	if err != nil {
		problems = append(problems, err.Error())
	}
	k, err := ParseKind(string(in.Kind))
	if err != nil {
		problems = append(problems, err.Error())
	}
	kindGiven := in.Kind != ""
	in.Priority, in.Kind = p, k
	in.Description = strings.Join(strings.Fields(in.Description), " ")
	if n := len([]rune(in.Description)); n > maxDescription {
		problems = append(problems, fmt.Sprintf("the description is %d characters; keep it to one line of at most %d", n, maxDescription))
	}
	inputs = maps.Clone(inputs)
	if inputs == nil {
		inputs = map[string]string{}
	}
	if _, ok := rb.Input(DrillInput); ok {
		given := strings.TrimSpace(inputs[DrillInput])
		switch b, perr := strconv.ParseBool(given); {
		case given == "":
			if in.Kind == KindTest {
				inputs[DrillInput] = "true"
			}
		case perr == nil && b && !kindGiven:
			in.Kind = KindTest
		case perr == nil && b != (in.Kind == KindTest):
			problems = append(problems, fmt.Sprintf("%s=%s contradicts kind=%s; give one of them", DrillInput, given, in.Kind))
		}
	}
	if len(problems) > 0 {
		return Incident{}, nil, &Refusal{Text: strings.Join(problems, "; ")}
	}
	if in.IncidentLead == "" {
		in.IncidentLead = actor
	}
	return in, inputs, nil
}

// declare completes a run's declaration (Declare) with its first stage
// and its stakeholder update cadence.
func (e *Engine) declare(req StartRequest, now time.Time) (Incident, map[string]string, error) {
	in, inputs, err := Declare(req.Runbook, req.Incident, req.Inputs, req.Actor)
	if err != nil {
		return Incident{}, nil, err
	}
	in.Stage = StageInvestigating
	in.Stages = []StageChange{{Stage: StageInvestigating, At: now, By: req.Actor}}
	in.UpdateEvery = e.opts.Cadence.For(in.Priority)
	in.LastUpdate = now // the stakeholder notice is the first update
	return in, inputs, nil
}

// describeIncident is the declaration in the run.started event.
func describeIncident(in Incident) string {
	if !in.Declared() {
		return ""
	}
	s := fmt.Sprintf("; %s %s", in.Priority, in.Kind.Word())
	if in.Description != "" {
		s += ": " + in.Description
	}
	return s + "; " + in.Roles(mention)
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// mention writes a Slack user id as a mention and anything else (a
// terminal user) as it is.
func mention(id string) string {
	if slackUserID.MatchString(id) {
		return "<@" + id + ">"
	}
	return id
}

// SetRoles names leads of a run (empty values keep the current ones) and
// records it on the timeline.
func (e *Engine) SetRoles(ctx context.Context, runID, actor string, roles Incident) error {
	ev := &Event{RunID: runID, Kind: EventRoles, Actor: actor, At: e.opts.Clock.Now()}
	return e.updateRun(ctx, runID, func(r *Run) error {
		if r.State != RunActive {
			return Refusef("run %s is %s", runID, r.State)
		}
		var named []string
		set := func(dst *string, id, role string) {
			if id != "" && id != *dst {
				*dst = id
				named = append(named, role+" "+mention(id))
			}
		}
		set(&r.Incident.IncidentLead, roles.IncidentLead, "incident lead")
		set(&r.Incident.CommsLead, roles.CommsLead, "comms lead")
		set(&r.Incident.TechLead, roles.TechLead, "tech lead")
		if len(named) == 0 {
			return Refusef("nothing changed: name a lead, e.g. comms=@someone")
		}
		ev.Text = "named " + strings.Join(named, ", ")
		return nil
	}, ev)
}
