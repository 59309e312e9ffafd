// Command drbot runs disaster-recovery runbooks: in Slack (serve), in the
// terminal (rehearse), or on paper (plan). main is wiring only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/drbot-dev/drbot/runbook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `drbot runs disaster-recovery runbooks.

Usage:
  drbot rehearse SCENARIO [--service S] [--env E] [--var k=v]... [--yes] [--resume RUN] [--live] [--simulate=LIST]
  drbot plan SCENARIO [--service S] [--env E] [--var k=v]...
  drbot serve [--simulate[=github,kubernetes,azure]] [--listen :8080]
  drbot validate [FILE...]
  drbot preflight [--service S] [--env E] [--json] [--simulate=LIST]
  drbot report RUN [--format md|json] [--db PATH]
  drbot drills [--service S] [--db PATH]
  drbot version

Environment: DRBOT_CONFIG (default drbot.yaml), DRBOT_DB (default drbot.db; or
postgres://… for replicas sharing PostgreSQL; DRBOT_DB_FILE: a file holding it),
DRBOT_LISTEN (serve's /healthz, /readyz and /metrics address),
SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_API_URL, GITHUB_TOKEN or GitHub App
credentials, GITHUB_API_URL, KUBECONFIG, AZURE_SUBSCRIPTION_ID.
`

// exitError carries a process exit code and a message for the user.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run is main with its dependencies injected, so tests drive it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	a := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, clock: runbook.SystemClock{}}
	defer a.close()
	var err error
	switch cmd, rest := args[1], args[2:]; cmd {
	case "rehearse":
		err = rehearse(ctx, a, rest)
	case "plan":
		err = plan(ctx, a, rest)
	case "serve":
		err = serve(ctx, a, rest)
	case "validate":
		err = validate(ctx, a, rest)
	case "preflight":
		err = preflightCmd(ctx, a, rest)
	case "report":
		err = reportCmd(ctx, a, rest)
	case "drills":
		err = drills(ctx, a, rest)
	case "version":
		err = version(a)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "drbot: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.msg != "" {
			fmt.Fprintln(stderr, "drbot:", exit.msg)
		}
		return exit.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if text, ok := runbook.IsRefusal(err); ok {
		fmt.Fprintln(stderr, "drbot:", text)
		return 1
	}
	fmt.Fprintln(stderr, "drbot:", err)
	return 1
}
