package bot

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// The start form's routing keys.
const (
	// formCallbackID names the start form in view_submission payloads.
	formCallbackID = "dr.start"
	// formScenarioAction is the scenario select: it dispatches a block_actions
	// event, and the form is redrawn with that scenario's inputs.
	formScenarioAction = "form.scenario"
	// formValueAction is the action_id of every other field.
	formValueAction = "value"
)

// The choice form's routing keys.
const (
	// choiceCallbackID names a step's choice form in view_submission payloads.
	choiceCallbackID = "dr.choose"
	// choiceBlock is the block of its static select.
	choiceBlock = "choice"
)

// choiceMeta is the choice form's private_metadata: the step and the
// version the click saw (the engine's check-and-set), and where to reply.
type choiceMeta struct {
	RunID     string `json:"run_id"`
	StepID    string `json:"step_id"`
	Version   int    `json:"version"`
	Title     string `json:"title"`
	ChannelID string `json:"channel_id,omitempty"`
}

// ChoiceModal renders a step's choice form: what it offers, in a static
// select (the first 100, Slack's limit; adapters list newest first).
func (r Renderer) ChoiceModal(f handlers.ChoiceForm) slack.ModalViewRequest {
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick one", maxOptionText), formValueAction)
	for _, c := range f.Options[:min(len(f.Options), maxStaticOptions)] {
		if len(c.Value) > maxOptionValue {
			continue // it could not come back whole
		}
		sel.Options = append(sel.Options, slack.NewOptionBlockObject(c.Value, plain(c.Label, maxOptionText), nil))
	}
	meta, _ := json.Marshal(choiceMeta{RunID: f.RunID, StepID: f.StepID, Version: f.Version, Title: f.Title, ChannelID: f.ChannelID})
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Choose", maxModalTitle),
		Submit:          plain("Choose", maxModalTitle),
		Close:           plain("Cancel", maxModalTitle),
		CallbackID:      choiceCallbackID,
		PrivateMetadata: truncate(string(meta), maxPrivateMetadata),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(truncate("*"+f.Title+"*: pick the one to use instead of the default. drbot uses it and goes on to the next step.", maxSectionText)),
			slack.NewInputBlock(choiceBlock, plain("Choice", maxLabel), nil, sel),
		}},
	}
}

// choiceValue reads a submitted choice form.
func choiceValue(view slack.View) (handlers.ChoiceForm, string) {
	var meta choiceMeta
	_ = json.Unmarshal([]byte(view.PrivateMetadata), &meta)
	f := handlers.ChoiceForm{RunID: meta.RunID, StepID: meta.StepID, Version: meta.Version, Title: meta.Title, ChannelID: meta.ChannelID}
	if view.State == nil {
		return f, ""
	}
	return f, actionValue(view.State.Values[choiceBlock][formValueAction])
}

// formMeta is the form's private_metadata: where to reply.
type formMeta struct {
	ChannelID string `json:"channel_id,omitempty"`
}

// Modal renders the start form.
func (r Renderer) Modal(f handlers.StartForm) slack.ModalViewRequest {
	var blocks []slack.Block
	if f.Note != "" {
		blocks = append(blocks, section(f.Note))
	}
	var scenarios []*slack.OptionBlockObject
	var selected *slack.OptionBlockObject
	for _, c := range f.Scenarios {
		o := slack.NewOptionBlockObject(c.Value, plain(c.Label, maxOptionText), nil)
		scenarios = append(scenarios, o)
		if c.Value == f.Scenario {
			selected = o
		}
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a scenario", maxOptionText), formScenarioAction, scenarios...)
	if selected != nil {
		sel = sel.WithInitialOption(selected)
	}
	blocks = append(blocks, slack.NewInputBlock(handlers.FieldScenario, plain("Scenario", maxLabel), nil, sel).WithDispatchAction(true))

	target := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick the service and environment", maxOptionText), formValueAction)
	for _, t := range f.Targets {
		var opts []*slack.OptionBlockObject
		for _, env := range t.Envs {
			o := slack.NewOptionBlockObject(t.Service+"/"+env, plain(t.Service+" / "+env, maxOptionText), nil)
			opts = append(opts, o)
			if t.Service == f.Service && env == f.Env {
				target = target.WithInitialOption(o)
			}
		}
		target.OptionGroups = append(target.OptionGroups, slack.NewOptionGroupBlockElement(plain(t.Service, maxOptionText), opts...))
	}
	blocks = append(blocks, slack.NewInputBlock(handlers.FieldTarget, plain("Service and environment", maxLabel), nil, target))

	comms := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Who tells the stakeholders?", maxOptionText), formValueAction)
	comms.InitialUser = f.Comms
	blocks = append(blocks, slack.NewInputBlock(handlers.FieldComms, plain("Comms lead", maxLabel),
		plain("Invited to the incident channel and named in the stakeholder notice.", maxHint), comms).WithOptional(true))
	blocks = append(blocks, r.declarationBlocks(f.Declaration)...)

	for _, in := range f.Inputs {
		blocks = append(blocks, r.inputBlock(in))
	}
	meta, _ := json.Marshal(formMeta{ChannelID: f.ChannelID})
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Start a DR run", maxModalTitle),
		Submit:          plain("Start", maxModalTitle),
		Close:           plain("Cancel", maxModalTitle),
		CallbackID:      formCallbackID,
		PrivateMetadata: truncate(string(meta), maxPrivateMetadata),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// inputBlock renders one runbook input: times as a date-and-time picker (an
// instant in the user's Slack time zone, so the zone is never guessed),
// booleans and choices as selects, the rest as text.
func (r Renderer) inputBlock(in handlers.FormInput) *slack.InputBlock {
	label := plain(strings.ReplaceAll(in.Name, "_", " "), maxLabel)
	var hint *slack.TextBlockObject
	if in.Help != "" {
		h := in.Help
		if in.Type == runbook.InputTime {
			h += " — pick it in your own time zone; drbot shows it in UTC and " + r.zoneName() + "."
		}
		hint = plain(h, maxHint)
	}
	value := in.Value
	if value == "" {
		value = in.Default
	}
	var el slack.BlockElement
	switch in.Type {
	case runbook.InputTime:
		p := slack.NewDateTimePickerBlockElement(formValueAction)
		if t, err := runbook.ParseTime(value); err == nil {
			p.InitialDateTime = t.Unix()
		}
		el = p
	case runbook.InputBool, runbook.InputChoice:
		choices := in.Choices
		if in.Type == runbook.InputBool {
			choices = []string{"false", "true"}
		}
		s := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick one", maxOptionText), formValueAction)
		for _, c := range choices {
			o := slack.NewOptionBlockObject(c, plain(c, maxOptionText), nil)
			s.Options = append(s.Options, o)
			if c == value {
				s = s.WithInitialOption(o)
			}
		}
		el = s
	default:
		p := slack.NewPlainTextInputBlockElement(plain(in.Name, maxOptionText), formValueAction)
		if value != "" {
			p = p.WithInitialValue(value)
		}
		el = p
	}
	b := slack.NewInputBlock(handlers.InputField(in.Name), label, hint, el)
	return b.WithOptional(!in.Required)
}

// formValues reads a submitted (or redrawn) form's state.
func formValues(view slack.View) handlers.FormValues {
	var meta formMeta
	_ = json.Unmarshal([]byte(view.PrivateMetadata), &meta)
	v := handlers.FormValues{Inputs: map[string]string{}, ChannelID: meta.ChannelID}
	if view.State == nil {
		return v
	}
	for blockID, actions := range view.State.Values {
		for actionID, a := range actions {
			val := actionValue(a)
			switch {
			case blockID == handlers.FieldScenario && actionID == formScenarioAction:
				v.Scenario = val
			case blockID == handlers.FieldTarget:
				v.Service, v.Env, _ = strings.Cut(val, "/")
			case blockID == handlers.FieldComms:
				v.Comms = val
			case blockID == handlers.FieldTech:
				v.Tech = val
			case blockID == handlers.FieldPriority:
				v.Priority = val
			case blockID == handlers.FieldKind:
				v.Kind = val
			case blockID == handlers.FieldDescription:
				v.Description = val
			default:
				if name, ok := handlers.InputName(blockID); ok && val != "" {
					v.Inputs[name] = val
				}
			}
		}
	}
	return v
}

// actionValue is an element's value as text: a picked date and time becomes
// RFC 3339 UTC, which runbook.ParseTime reads.
func actionValue(a slack.BlockAction) string {
	switch {
	case a.SelectedDateTime != 0:
		return time.Unix(a.SelectedDateTime, 0).UTC().Format(time.RFC3339)
	case a.SelectedOption.Value != "":
		return a.SelectedOption.Value
	case a.SelectedUser != "":
		return a.SelectedUser
	case a.SelectedDate != "" && a.SelectedTime != "":
		return a.SelectedDate + " " + a.SelectedTime + " " + orUTC(a.Timezone)
	}
	return a.Value
}

func orUTC(zone string) string {
	if zone == "" {
		return "UTC"
	}
	return zone
}

// formErrors maps the handlers' field problems onto the form's block ids,
// for the view_submission ack.
func formErrors(problems map[string]string) map[string]string {
	out := make(map[string]string, len(problems))
	for field, p := range problems {
		out[field] = truncate(p, maxHint)
	}
	return out
}
