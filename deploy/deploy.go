// Package deploy ships the deployment files drbot itself reads: the Slack
// app manifest is the one list of the bot scopes drbot uses, which
// `drbot preflight` checks the bot token against.
package deploy

import _ "embed"

// SlackAppManifest is deploy/slack-app-manifest.yaml.
//
//go:embed slack-app-manifest.yaml
var SlackAppManifest []byte
