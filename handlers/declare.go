package handlers

import (
	"github.com/drbot-dev/drbot/runbook"
)

// Declaration is the playbook's declaration of a run as typed in /dr start
// or picked in the start form; runbook.Declare checks and completes it.
type Declaration struct {
	Priority    string // P1, P2, P3 ("" is the default, P2)
	Kind        string // incident or test
	Description string // one line
	Comms       string // the comms lead's user id, if named
	Tech        string // the tech lead's user id, if named
}

// Declaration is the command's declaration.
func (c Command) Declaration() Declaration {
	return Declaration{Priority: c.Priority, Kind: c.Kind, Description: c.Description, Comms: c.Comms, Tech: c.Tech}
}

// incident is the declaration as the engine is asked for it.
func (d Declaration) incident() runbook.Incident {
	return runbook.Incident{Priority: runbook.Priority(d.Priority), Kind: runbook.IncidentKind(d.Kind), Description: d.Description,
		CommsLead: d.Comms, TechLead: d.Tech}
}

// declare checks a start's declaration from memory (runbook.Declare) and
// returns it as the run will have it, for the channel topic.
func (d Declaration) declare(rb *runbook.Runbook, inputs map[string]string, lead string) (runbook.Incident, error) {
	in, _, err := runbook.Declare(rb, d.incident(), inputs, lead)
	return in, err
}
