package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	labhost "github.com/labctl/labctl/lab/host"
)

// TestMain lets this test binary be the agent of every level (`agent serve` as its
// arguments), as the labctl binary is in a lab: the chains below are real processes.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "agent" && os.Args[2] == "serve" {
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		expect := fs.String("expect", "", "")
		dir := fs.String("dir", "", "")
		_ = fs.Parse(os.Args[3:])
		if err := ServeStdio(*expect, *dir, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(98)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// host is a host agent (no commands of its own) whose levels are local processes entered
// with `sh -c`, installed into a temporary directory on first use.
type host struct {
	client *Client
	server *Server
	dir    string
	logs   *syncWriter
}

func newHost(t *testing.T) *host {
	t.Helper()
	bin, version, err := labhost.Self()
	if err != nil {
		t.Fatal(err)
	}
	h := &host{dir: t.TempDir(), logs: &syncWriter{w: &bytes.Buffer{}}}
	h.server = &Server{Version: version, Dir: h.dir, Log: h.logs,
		Installer: &Installer{Binary: bin, Version: version,
			Root: func(ctx context.Context, line string, r io.Reader) error {
				cmd := exec.CommandContext(ctx, "sh", "-c", line)
				cmd.Stdin = r
				return cmd.Run()
			}}}
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	go func() { _ = h.server.Serve(sr, sw); sw.Close() }()
	h.client, err = NewClient("test host", cr, cw, cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.client.Close(); h.server.Close() })
	return h
}

func path(depth int) []Hop {
	var p []Hop
	for i := 0; i < depth; i++ {
		p = append(p, Hop{Name: fmt.Sprintf("level%d", i), Enter: "sh -c"})
	}
	return p
}

func (h *host) run(t *testing.T, ctx context.Context, depth int, line string, stdin io.Reader) (Exit, string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	e, err := h.client.Exec(ctx, Request{Path: path(depth), Line: line}, stdin, &out, &errb)
	return e, out.String(), errb.String(), err
}

func TestEveryLevelKeepsExitCodeAndStreamsApart(t *testing.T) {
	h := newHost(t)
	for depth := 1; depth <= 3; depth++ {
		e, out, errs, err := h.run(t, context.Background(), depth, "echo out; echo err >&2; exit 3", nil)
		if err != nil || e.Code != 3 || e.Err != "" || out != "out\n" || errs != "err\n" {
			t.Fatalf("depth %d: exit %+v, err %v, stdout %q, stderr %q (logs: %s)", depth, e, err, out, errs, h.logs.w)
		}
	}
	// Installed once, under its version's name, in the levels' directory.
	entries, _ := os.ReadDir(h.dir)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "agent-") {
		t.Fatalf("agent directory holds %v, want one agent-<version>", entries)
	}
}

func TestAFirstCommandAtTheDeepestLevelInstallsEveryLevel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: each level gets a mount namespace of its own, as a container has")
	}
	h := newHost(t)
	// level0 (the VM, installed by Root) shares the host's directory; levels 1 and 2 each see
	// one of their own there (bound over it in a new mount namespace), as containers have
	// filesystems of their own: every level must be installed.
	p := []Hop{{Name: "level0", Enter: "sh -c"}}
	for i := 1; i < 3; i++ {
		own := t.TempDir()
		p = append(p, Hop{Name: fmt.Sprintf("level%d", i),
			Enter: fmt.Sprintf(`unshare -m --propagation private sh -c 'mount --bind %s %s && exec sh -c "$1"' level`, own, h.dir)})
	}
	var out, errs bytes.Buffer
	e, err := h.client.Exec(context.Background(), Request{Path: p, Line: "echo deep; ls " + h.dir}, nil, &out, &errs)
	if err != nil || e.Code != 0 || e.Err != "" || !strings.HasPrefix(out.String(), "deep\nagent-") {
		t.Fatalf("first command at depth 3 (no agent anywhere yet): exit %+v, err %v, stdout %q, stderr %q", e, err, out.String(), errs.String())
	}
}

func TestALevelsAgentStaysUpBetweenCommands(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	_, first, _, err := h.run(t, ctx, 2, "echo $PPID", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, second, _, err := h.run(t, ctx, 2, "echo $PPID", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || strings.TrimSpace(first) == "" {
		t.Fatalf("the commands' parent (the level's agent) changed: %q then %q", first, second)
	}
}

// TestConcurrentFirstCommandsStartOneAgentPerLevel: commands sent at once to levels with no
// agent yet (what a provision's concurrent checks do) all run in one agent per level.
func TestConcurrentFirstCommandsStartOneAgentPerLevel(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	const n = 6
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, out, stderr, err := h.run(t, ctx, 2, "sleep 0.2; echo $PPID", nil)
			if err == nil && e.Code != 0 {
				err = fmt.Errorf("exit %+v, stderr %q", e, stderr)
			}
			outs[i], errs[i] = out, err
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || outs[i] == "" || outs[i] != outs[0] {
			t.Fatalf("command %d: %q, %v; command 0: %q: want every command in the one agent of level1 (logs: %s)", i, outs[i], errs[i], outs[0], h.logs.w)
		}
	}
}

func TestStdinReachesTheDeepestLevelWhole(t *testing.T) {
	h := newHost(t)
	data := make([]byte, 3<<20+17)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	e, out, errs, err := h.run(t, context.Background(), 3, "sha256sum | cut -d' ' -f1", bytes.NewReader(data))
	if err != nil || e.Code != 0 {
		t.Fatalf("exit %+v, err %v, stderr %s", e, err, errs)
	}
	if got := strings.TrimSpace(out); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("sha256 at level 3: %s, sent %x", got, sum)
	}
}

func TestCancelKillsTheCommandAndItsChildren(t *testing.T) {
	h := newHost(t)
	marker := filepath.Join(t.TempDir(), "ran-on")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	// Warm the chain first: the timeout is for the command, not the spawns.
	if _, _, _, err := h.run(t, context.Background(), 2, "true", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, err := h.run(t, ctx, 2, "sleep 2; touch "+marker, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled command: err %v, want the deadline", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("cancel took %s", d)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the cancelled command's shell went on after its sleep was killed")
	}
}

func TestALevelWhoseAgentDiedIsStartedAgain(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	_, pid, _, err := h.run(t, ctx, 2, "echo $PPID", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Kill level1's agent (level0 runs it): level2's ends with it, as a container's does
	// when its parent stops.
	if e, _, errs, err := h.run(t, ctx, 1, "kill $PPID", nil); err == nil && e.Code == 0 {
		t.Logf("level1 killed its own agent: %+v %s", e, errs)
	}
	var again string
	for i := 0; i < 20; i++ {
		var e Exit
		e, again, _, err = h.run(t, ctx, 2, "echo $PPID", nil)
		if err == nil && e.Err == "" && e.Code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || strings.TrimSpace(again) == "" || again == pid {
		t.Fatalf("after level1's agent died: %q (was %q), err %v", again, pid, err)
	}
}

func TestACachedAnswerHoldsUntilARootCommandOrARestart(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	count := filepath.Join(t.TempDir(), "runs")
	probe := Request{Path: path(1), Line: "echo x >> " + count + "; wc -l < " + count, Cache: true}
	ask := func() string {
		t.Helper()
		var out bytes.Buffer
		e, err := h.client.Exec(ctx, probe, nil, &out, io.Discard)
		if err != nil || e.Code != 0 {
			t.Fatalf("cached probe: %+v %v", e, err)
		}
		return strings.TrimSpace(out.String())
	}
	if a, b := ask(), ask(); a != "1" || b != "1" {
		t.Fatalf("the second ask ran the probe again: %s then %s", a, b)
	}
	// A command that is not root changes nothing kept.
	if _, _, _, err := h.run(t, ctx, 1, "true", nil); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "1" {
		t.Fatalf("after a plain command: %s", got)
	}
	// Nor does a root command that only reads (a provisioning check).
	if e, err := h.client.Exec(ctx, Request{Path: path(1), Line: "true", Sudo: true, Reads: true}, nil, nil, nil); err != nil || e.Code != 0 {
		t.Fatalf("root command that reads: %+v %v", e, err)
	}
	if got := ask(); got != "1" {
		t.Fatalf("after a root command that only reads: %s, want the kept answer (1)", got)
	}
	// A root command at that level may have changed the answer: it is asked again.
	if e, err := h.client.Exec(ctx, Request{Path: path(1), Line: "true", Sudo: true}, nil, nil, nil); err != nil || e.Code != 0 {
		t.Fatalf("root command: %+v %v", e, err)
	}
	if got := ask(); got != "2" {
		t.Fatalf("after a root command: %s, want the probe run again (2)", got)
	}
	// So is it after the level's agent started again (a reboot).
	_, _, _, _ = h.run(t, ctx, 1, "kill $PPID", nil)
	var got string
	for i := 0; i < 20 && got != "3"; i++ {
		var out bytes.Buffer
		if e, err := h.client.Exec(ctx, probe, nil, &out, io.Discard); err == nil && e.Err == "" {
			got = strings.TrimSpace(out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != "3" {
		t.Fatalf("after the level's agent started again: %q, want the probe run again (3)", got)
	}
}

func TestAChangedAgentBinaryRefusesToServe(t *testing.T) {
	err := ServeStdio(strings.Repeat("0", 64), t.TempDir(), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "was changed after it was installed") {
		t.Fatalf("wrong version: %v", err)
	}
}

func TestAPeerThatIsNotAnAgentIsNamed(t *testing.T) {
	_, err := NewClient("box1", strings.NewReader("sh: 1: /var/lib/labctl/agent: not found\n"), io.Discard, nil)
	if !errors.Is(err, errNotAgent) {
		t.Fatalf("a shell's error as the first bytes: %v", err)
	}
}

func TestAQuitRequestEndsTheServer(t *testing.T) {
	h := newHost(t)
	if err := h.client.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.server.Quit():
	case <-time.After(2 * time.Second):
		t.Fatal("quit did not reach the server")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// rootServer is a level's agent whose Sudo commands go through the root agent hop (a local
// process entered with enter), its binary installed in its own directory.
func rootServer(t *testing.T, enter string) *Client {
	t.Helper()
	bin, version, err := labhost.Self()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(Path(dir, version), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Version: version, Local: true, Dir: dir, Log: io.Discard, RootHop: &Hop{Name: "root", Enter: enter}}
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	go func() { _ = s.Serve(sr, sw); sw.Close() }()
	c, err := NewClient("test level", cr, cw, cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c
}

// TestSudoCommandsGoThroughOneRootAgent: a level's Sudo commands run in one agent of that
// level started for them (here entered with a marker in its environment), kept between
// commands, with exit codes and streams kept; other commands run in the level's own agent.
func TestSudoCommandsGoThroughOneRootAgent(t *testing.T) {
	c := rootServer(t, "env LABCTL_ROOT_AGENT_TEST=yes sh -c")
	ctx := context.Background()
	run := func(line string, sudo bool) (Exit, string, string) {
		var out, errb bytes.Buffer
		e, err := c.Exec(ctx, Request{Line: line, Sudo: sudo}, nil, &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		return e, out.String(), errb.String()
	}
	_, first, _ := run(`echo "$LABCTL_ROOT_AGENT_TEST $PPID"`, true)
	_, second, _ := run(`echo "$LABCTL_ROOT_AGENT_TEST $PPID"`, true)
	if !strings.HasPrefix(first, "yes ") || first != second {
		t.Fatalf("sudo commands ran %q then %q: want both in the one root agent", first, second)
	}
	if e, out, errs := run("echo out; echo err >&2; exit 4", true); e.Code != 4 || out != "out\n" || errs != "err\n" {
		t.Fatalf("through the root agent: exit %+v, stdout %q, stderr %q", e, out, errs)
	}
	if _, out, _ := run(`echo "${LABCTL_ROOT_AGENT_TEST:-own} $PPID"`, false); !strings.HasPrefix(out, "own ") || out == first {
		t.Fatalf("a command without sudo ran in %q (the root agent's: %q)", out, first)
	}
}

// TestSudoWithoutARootAgentStillRuns: when the root agent cannot be started, Sudo commands
// still run (through sudo -n, or as themselves for root).
func TestSudoWithoutARootAgentStillRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fallback is `sudo -n`, which a test cannot count on: run as root")
	}
	c := rootServer(t, "false")
	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		e, err := c.Exec(context.Background(), Request{Line: "echo ran; exit 2", Sudo: true}, nil, &out, io.Discard)
		if err != nil || e.Code != 2 || out.String() != "ran\n" {
			t.Fatalf("run %d: exit %+v, err %v, stdout %q", i, e, err, out.String())
		}
	}
}
