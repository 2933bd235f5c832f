package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/provision/remote/sshdtest"
)

// TestFaultHugeGuestOutputIsBounded: a guest command that prints far more than a Result keeps
// (a broken or hostile guest, over a real sshd) leaves a Result of the first MaxKept bytes and a
// line that says how much was not kept; the whole output still streams to the caller's writer.
func TestFaultHugeGuestOutputIsBounded(t *testing.T) {
	faulttest.Count(t, "fault", "huge-guest-output")
	old := MaxKept
	MaxKept = 1 << 20
	t.Cleanup(func() { MaxKept = old })
	c, _ := dialTest(t, sshdtest.Start(t))
	const printed = 6 << 20
	var streamed countWriter
	r, err := c.Run(context.Background(), fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; head -c %d /dev/zero | tr '\\0' y >&2", printed, printed), RunOpts{Stdout: &streamed})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("%v %d", err, r.ExitCode)
	}
	for name, out := range map[string]string{"stdout": r.Stdout, "stderr": r.Stderr} {
		if len(out) > MaxKept+200 {
			t.Errorf("the Result kept %d bytes of %s, over %d", len(out), name, MaxKept)
		}
		if want := fmt.Sprintf("[labctl: %d more bytes of output not kept: over 1 MiB]", printed-MaxKept); !strings.Contains(out, want) {
			t.Errorf("%s does not say what was not kept (%q): ends %q", name, want, out[max(len(out)-120, 0):])
		}
	}
	if streamed.n != printed {
		t.Errorf("the caller's writer got %d bytes, want all %d", streamed.n, printed)
	}
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestFaultGuestTextIsPrintable: text from a guest with terminal escape sequences (clear the
// screen, set the window title, a bell, a carriage return over the line) comes out with each
// control character written as an escape, printable and harmless; other text is unchanged.
func TestFaultGuestTextIsPrintable(t *testing.T) {
	faulttest.Count(t, "input", "guest-escape-sequences")
	for in, want := range map[string]string{
		"6.1.0-26-amd64":                   "6.1.0-26-amd64",
		"RUNNING\x1b[2J\x1b]0;pwned\x07":   `RUNNING\x1b[2J\x1b]0;pwned\a`,
		"5.0.2\rOK  ":                      `5.0.2\rOK  `,
		"x\u009b31m y":                     `x\u009b31m y`,
		"ünïcode stays":                    "ünïcode stays",
		"bad \xff\x9b byte":                `bad \xff\x9b byte`,
		"$(rm -rf /) ../../etc stays text": "$(rm -rf /) ../../etc stays text",
	} {
		got := Printable(in)
		if got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "\x1b\x07\r\u009b") || !utf8.ValidString(got) {
			t.Errorf("Printable(%q) still holds a control character: %q", in, got)
		}
	}
}

// TestFaultOffMachineEndsTheWaitForSSH: while the machine runs (booting, or rebooted from
// inside) the wait for its SSH goes on past failed attempts; once Alive says it is off, the
// wait ends at once with that reason instead of running to the boot timeout.
func TestFaultOffMachineEndsTheWaitForSSH(t *testing.T) {
	faulttest.Count(t, "fault", "ssh-wait-on-an-off-machine")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing answers there: every attempt fails
	key := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	asked := 0
	cfg := SSHConfig{Host: "127.0.0.1", Port: port, User: "u", IdentityFiles: []string{key}, KnownHosts: filepath.Join(t.TempDir(), "kh"),
		BootTimeout: 30 * time.Second, Log: io.Discard, Alive: func(context.Context) error {
			asked++
			if asked < 3 {
				return nil // running: booting
			}
			return errors.New("the lab's VM is shutoff")
		}}
	begin := time.Now()
	_, err = Dial(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "the lab's VM is shutoff") || asked != 3 {
		t.Fatalf("want the wait ended by the third answer that the machine is off: %v (%d asked)", err, asked)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("the wait went on for %s after the machine was off", took)
	}
}
