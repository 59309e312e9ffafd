package bot

import (
	"testing"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// declared gives the fixture a P1 declaration with a comms and a tech lead.
func declared(v *runbook.RunView) *runbook.RunView {
	v.Run.Incident = runbook.Incident{Priority: runbook.P1, Kind: runbook.KindIncident, Description: "Orders since 09:00 are lost",
		IncidentLead: "U0INCLEAD1", CommsLead: "U0COMMSLD1", TechLead: "U0PLATF001", Stage: runbook.StageRecovering,
		UpdateEvery: 30 * 60e9, LastUpdate: t0}
	return v
}

// TestRenderCommsGolden pins the blocks of the comms lead's messages.
func TestRenderCommsGolden(t *testing.T) {
	r := Renderer{Location: london, P1Contacts: []string{"S0P1ONCALL"}, FollowUps: true}
	tests := []struct {
		name   string
		render func() any
	}{
		{"notice_p1", func() any {
			return r.Notice(declared(fixtureView(t, true, nil)), "Data loss incident on itt-mentor-services (staging): the service is stopped.")
		}},
		{"stage_change", func() any {
			return r.StageChange(declared(fixtureView(t, true, midRun)), runbook.Event{Kind: runbook.EventStage, Actor: "drbot", At: at(1),
				Text: "stage: investigating → recovering (as the run went on)"})
		}},
		{"comms_ask", func() any {
			v := declared(fixtureView(t, true, nil))
			v.Run.Incident.CommsLead = ""
			return r.CommsAsk(v)
		}},
		{"reminder", func() any {
			return r.Reminder(declared(fixtureView(t, true, midRun)), runbook.Event{Kind: runbook.EventUpdateDue, Actor: "drbot", At: at(31),
				Text: "a stakeholder update is due (the last went out 31 minutes ago; every 30 minutes for P1)"})
		}},
		{"closing_drill_controls", func() any {
			v := declared(fixtureView(t, true, midRun))
			v.Run.State, v.Run.EndedAt, v.Run.Incident.Kind = runbook.RunDone, at(90), runbook.KindTest
			v.Run.Meta[metaReportURL] = "https://drbot-test.slack.com/files/U0DRBOT01/F0REPORT/dr-20260601-0900-ab12-report.md"
			m := r.Closing(v, at(90))
			return append(m.Blocks, r.closingControls(v)...)
		}},
		{"compose_update", func() any {
			return r.ComposeModal(handlers.ComposeForm{Purpose: handlers.PurposeUpdate, RunID: "dr-20260601-0900-ab12",
				Heading: "Update the stakeholders on dr-20260601-0900-ab12.", Body: "Stage: recovering.\nNext: Enable maintenance."})
		}},
		{"compose_follow_up", func() any {
			return r.ComposeModal(handlers.ComposeForm{Purpose: handlers.PurposeFollowUp, RunID: "dr-20260601-0900-ab12",
				Heading: "Raise a follow-up of dr-20260601-0900-ab12.", Body: "Raised from DR run dr-20260601-0900-ab12 by drbot."})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.render()) })
	}
}
