package config

import "encoding/json"

// Secret is a credential. It redacts itself when printed, formatted or
// marshalled, so a logged config never leaks a token.
type Secret string

const redacted = "[redacted]"

// Value returns the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
