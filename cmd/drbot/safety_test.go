package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// terminal plays the person at drbot's prompt: each time the output ends in
// a prompt ("… > "), answer is asked what to type. An answer of eof closes
// the input; cancel, if set, is called instead of answering when interrupt
// returns true (Ctrl-C).
type terminalPerson struct {
	mu      sync.Mutex
	out     bytes.Buffer
	lines   chan string
	pending []byte
	answer  func(prompt string, n int) string
	asked   int
	closed  bool
}

const eof = "\x00eof"

func newTerminalPerson(answer func(prompt string, n int) string) *terminalPerson {
	return &terminalPerson{lines: make(chan string, 64), answer: answer}
}

func (p *terminalPerson) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	s := p.out.String()
	if p.closed || !strings.HasSuffix(s, " > ") {
		return len(b), nil
	}
	prompt := s[strings.LastIndex(s, "\n")+1:]
	p.asked++
	ans := p.answer(prompt, p.asked)
	if ans == eof {
		p.closed = true
		close(p.lines)
	} else {
		p.lines <- ans + "\n"
	}
	return len(b), nil
}

func (p *terminalPerson) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		line, ok := <-p.lines
		if !ok {
			return 0, io.EOF
		}
		p.pending = []byte(line)
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *terminalPerson) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// runCLIAnswering runs drbot with a person answering its prompts.
func runCLIAnswering(t *testing.T, env map[string]string, answer func(prompt string, n int) string, args ...string) (int, string, string) {
	t.Helper()
	return runCLIAnsweringCtx(t, t.Context(), env, answer, args...)
}

func runCLIAnsweringCtx(t *testing.T, ctx context.Context, env map[string]string, answer func(prompt string, n int) string, args ...string) (int, string, string) {
	t.Helper()
	person := newTerminalPerson(answer)
	var errOut bytes.Buffer
	code := run(ctx, append([]string{"drbot"}, args...), func(k string) string { return env[k] }, person, person, &errOut)
	return code, person.String(), errOut.String()
}

// approveAll approves every step; second names the second approver of
// two-person steps.
func approveAll(second string) func(string, int) string {
	return func(prompt string, _ int) string {
		if strings.Contains(prompt, "second approver's name") {
			return second
		}
		return "a"
	}
}

// The exact invocations of the reproductions that must be refused,
// with nothing stored and nothing run.
func TestRefusedLiveInvocations(t *testing.T) {
	example := "../../examples/drbot.yaml"
	restore := "restore_time=" + time.Now().Add(-2*time.Hour).UTC().Format("2006-01-02 15:04") + " UTC"
	noCreds := "--simulate=github,kubernetes,azure" // http stays real: a live run with no credentials
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "--live --yes", args: []string{"scenario-2", "--live", "--yes", "--config", example, "--var", restore},
			code: 2, want: "--yes approves every step without a person"},
		{name: "--live without a drbot.yaml", args: []string{"scenario-2", "--live", noCreds, "--var", restore},
			code: 1, want: "no config: drbot looked for drbot.yaml"},
		{name: "--live without restore_time", args: []string{"scenario-2", "--live", noCreds, "--config", example},
			code: 1, want: "input restore_time is required"},
		{name: "PTR copy named as the live server", args: []string{"scenario-2", "--live", noCreds, "--config", example, "--var", restore, "--var", "ptr_server=s189t01-ittms-stg-pg"},
			code: 1, want: `input ptr_server: "s189t01-ittms-stg-pg" is the live server of itt-mentor-services/staging`},
		{name: "shell in the PTR name", args: []string{"scenario-2", "--config", example, "--var", `ptr_server=bad name; rm -rf`},
			code: 1, want: `"bad name; rm -rf" is not a flexible server name`},
		{name: "misspelled --simulate", args: []string{"scenario-2", "--live", "--simulate=kube", "--config", example},
			code: 2, want: `unknown adapter "kube"; use all or a list of github, kubernetes, azure, http`},
		{name: "--simulate without --live", args: []string{"scenario-2", "--simulate=github", "--config", example},
			code: 2, want: "without --live everything is simulated already"},
		{name: "repeated --var", args: []string{"scenario-2", "--config", example, "--var", restore, "--var", restore},
			code: 2, want: "--var restore_time is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "r.db")
			args := append([]string{"rehearse"}, append(tt.args, "--db", db)...)
			code, out, errOut := runCLI(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, "", args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q\nstderr: %s\nstdout: %s", code, tt.code, tt.want, errOut, out)
			}
			if strings.Contains(out, "run id") {
				t.Errorf("a run was started:\n%s", out)
			}
			assertNoRuns(t, db)
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range []string{"rehearse", "plan", "serve", "validate"} {
		if code, _, errOut := runCLI(t, nil, "", cmd, "--help"); code != 0 || !strings.Contains(errOut, "-config") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, errOut)
		}
	}
}

// A live run's resume hint is a complete command; a resume without --live is
// refused and names that command, which then works.
func TestResumeKeepsTheRunsAdapters(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "r.db")
	cfg := filepath.Join(dir, "drbot.yaml")
	data, err := os.ReadFile("../../examples/drbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}
	restore := "restore_time=" + time.Now().Add(-2*time.Hour).UTC().Format("2006-01-02 15:04") + " UTC"
	code, out, errOut := runCLI(t, env, "", "rehearse", "scenario-2", "--live", "--simulate=github,kubernetes,azure", "--config", cfg, "--db", db, "--var", restore)
	want := "drbot rehearse --resume dr-"
	hint := "--db " + db + " --config " + cfg + " --live --simulate=azure,github,kubernetes"
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, hint) {
		t.Fatalf("first part: exit %d, want the resume command with %q\nstderr: %s\nstdout: %s", code, hint, errOut, out)
	}
	runID := storedRun(t, db).ID

	// Without --live the run would go on as a simulation: refused.
	code, _, errOut = runCLI(t, env, "", "rehearse", "--resume", runID, "--db", db, "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "report a recovery that never happened") || !strings.Contains(errOut, "go on with: drbot rehearse --resume "+runID+" "+hint) {
		t.Fatalf("resume without --live: exit %d\n%s", code, errOut)
	}
	// Another config: refused too.
	code, _, errOut = runCLI(t, env, "", "rehearse", "--resume", runID, "--db", db, "--config", "../../examples/drbot.yaml", "--live", "--simulate=github,kubernetes,azure")
	if code != 1 || !strings.Contains(errOut, "was started with the config "+cfg) {
		t.Fatalf("resume with another config: exit %d\n%s", code, errOut)
	}
	// The printed command works as pasted.
	args := strings.Fields(strings.TrimPrefix(errOut[strings.Index(errOut, "go on with: ")+len("go on with: "):], "drbot "))
	code, out, errOut = runCLIAnswering(t, env, func(string, int) string { return "q" }, args...)
	if code != 1 || !strings.Contains(out, "aborted the run") {
		t.Fatalf("pasted resume command: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// The two-person rule at the terminal: a blank name, the first approver's
// own name and the end of input never run the step.
func TestTwoPersonRuleAtTheTerminal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	var seconds []string
	answer := func(prompt string, _ int) string {
		if !strings.Contains(prompt, "second approver's name") {
			return "a"
		}
		seconds = append(seconds, prompt)
		switch len(seconds) {
		case 1:
			return ""
		case 2:
			return "ANA" // the first approver, in other case
		}
		return eof
	}
	code, out, errOut := runCLIAnswering(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, answer, "rehearse", "scenario-2", "--db", db)
	if code != 1 || !strings.Contains(errOut, "no answer (end of input); the run is saved. Go on with: drbot rehearse --resume") {
		t.Fatalf("exit %d\nstderr: %s", code, errOut)
	}
	for _, want := range []string{"their name is required. Nothing was run.", "ana already approved; a second, different person must. Nothing was run."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, `running "Restore the live server from the PTR backup"`) {
		t.Error("the restore ran without a second person")
	}
	if st := storedStep(t, db, "restore-live"); len(st.Approvers) != 1 {
		t.Errorf("restore approvers = %v, want only ana", st.Approvers)
	}
}

// Ctrl-C at a prompt stops at once with exit 130 and the resume command,
// without waiting for a line that never comes.
func TestCtrlCAtThePromptStopsAtOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdin, never := io.Pipe() // the person types nothing
	defer never.Close()
	out := &ctrlC{cancel: cancel}
	var errOut bytes.Buffer
	env := map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}
	code := run(ctx, []string{"drbot", "rehearse", "scenario-2", "--db", db}, func(k string) string { return env[k] }, stdin, out, &errOut)
	if code != 130 || !strings.Contains(errOut.String(), "interrupted; the run is saved. Go on with: drbot rehearse --resume dr-") {
		t.Fatalf("exit %d, want 130 with the resume command\n%s", code, errOut.String())
	}
	if waited := time.Since(out.at); waited > time.Second {
		t.Errorf("stopped %s after Ctrl-C", waited)
	}
}

// ctrlC presses Ctrl-C (cancels) at the first prompt.
type ctrlC struct {
	cancel context.CancelFunc
	at     time.Time
	once   sync.Once
}

func (c *ctrlC) Write(b []byte) (int, error) {
	if bytes.HasSuffix(b, []byte(" > ")) {
		c.once.Do(func() { c.at = time.Now(); c.cancel() })
	}
	return len(b), nil
}

// storedStep returns a step of the one run stored in db.
func storedStep(t *testing.T, db, stepID string) runbook.StepState {
	t.Helper()
	run := storedRun(t, db)
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	steps, err := st.Steps(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.StepID == stepID {
			return s
		}
	}
	t.Fatalf("no step %s", stepID)
	return runbook.StepState{}
}

// At the step that lists the backups, a person picks another from a
// numbered list, and the restore uses it.
func TestChooseTheBackupToRestore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	answer := func(prompt string, _ int) string {
		switch {
		case strings.Contains(prompt, "c=choose another"):
			return "c"
		case strings.Contains(prompt, "number (1-3"):
			return "2"
		case strings.Contains(prompt, "second approver's name"):
			return "bob"
		}
		return "a"
	}
	code, out, errOut := runCLIAnswering(t, map[string]string{"DRBOT_SIM_DELAY": "0s", "USER": "ana"}, answer, "rehearse", "scenario-1", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	second := "nightly_" + time.Now().UTC().Add(-48*time.Hour).Format("2006-01-02") + ".sql.gz"
	for _, want := range []string{" 2. " + second, "ana chose " + second, "backup-file: " + second} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
