package runbook

import "time"

// InputType is the kind of value a runbook input accepts.
type InputType string

// Input types a runbook may declare.
const (
	InputString InputType = "string"
	InputTime   InputType = "time"
	InputChoice InputType = "choice"
	InputBool   InputType = "bool"
	// InputServer is a Postgres flexible server name (Azure's naming rules),
	// never the live server of a configured environment.
	InputServer InputType = "postgres_server"
)

// Input is a value the incident lead supplies when a run starts.
type Input struct {
	Name     string
	Type     InputType
	Required bool
	Default  string
	Choices  []string
	Help     string
	// Window bounds how far in the past a time input may be (the PTR window:
	// 5 minutes to 7 days). Zero values mean unbounded.
	MinAge, MaxAge time.Duration
}

// Var is a run-level variable rendered once when the run starts (e.g. a backup
// file name), so every step and every restart sees the same value.
type Var struct {
	Name  string
	Value string
}

// Step is one instruction of the runbook, validated.
type Step struct {
	ID      string
	Title   string
	Explain string // the seed's words for this step
	Action  string // an action kind, see Kinds
	With    map[string]any
	Vars    map[string]string // step-local values, visible as .step.NAME
	When    string            // template; the step is skipped when it renders "false" or ""
	// Remember names the run variable (.remember.NAME) that stores the value the
	// action reports as Result.Remember, e.g. replica counts before a scale-down.
	Remember    string
	Destructive bool
	Approvals   int           // distinct approvers needed; at least 1
	Auto        bool          // runs without a click (e.g. posting a notice)
	Timeout     time.Duration // zero means the engine default
	Line        int           // line in the source file, for messages
	// Recovery, when set, says whether the step is part of the recovery
	// (the stages are derived from it); unset, a step that acts on a
	// system (not slack.*, not manual) is (see IsRecovery).
	Recovery *bool
}

// Runbook is a validated scenario. The engine only ever sees validated runbooks.
type Runbook struct {
	ID          string
	Title       string
	Description string
	Source      string // file name, for messages
	Raw         []byte // the YAML it was loaded from; a run pins it
	Version     string // short hash of Raw
	Inputs      []Input
	Vars        []Var
	Steps       []Step
}

// Step returns the step with the given id.
func (rb *Runbook) Step(id string) (Step, bool) {
	for _, s := range rb.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Input returns the input with the given name.
func (rb *Runbook) Input(name string) (Input, bool) {
	for _, in := range rb.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}
