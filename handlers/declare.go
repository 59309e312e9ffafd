package handlers

import (
	"strconv"
	"strings"

	"github.com/drbot-dev/drbot/runbook"
)

// Declaration is the playbook's declaration of a run as typed in /dr start
// or picked in the start form; the engine completes and stores it.
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

// problems checks the declaration from memory, keyed by form field.
func (d Declaration) problems() map[string]string {
	out := map[string]string{}
	if _, err := runbook.ParsePriority(d.Priority); err != nil {
		out[FieldPriority] = err.Error()
	}
	if _, err := runbook.ParseKind(d.Kind); err != nil {
		out[FieldKind] = err.Error()
	}
	return out
}

// incident is what the engine is asked to declare, as the engine will
// store it: the incident lead is whoever starts the run, and dr_test=true
// without a kind declares a DR test.
func (d Declaration) incident(lead string, inputs map[string]string) runbook.Incident {
	p, _ := runbook.ParsePriority(d.Priority)
	k, _ := runbook.ParseKind(d.Kind)
	if b, err := strconv.ParseBool(inputs[runbook.DrillInput]); err == nil && b && d.Kind == "" {
		k = runbook.KindTest
	}
	return runbook.Incident{
		Priority: p, Kind: k, Description: strings.Join(strings.Fields(d.Description), " "),
		IncidentLead: lead, CommsLead: d.Comms, TechLead: d.Tech,
	}
}
