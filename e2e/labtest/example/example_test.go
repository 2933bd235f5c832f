// Package example is the README's example of a user's own test on labtest: a plain `go test`
// that attaches to a running lab and works in each of its containers. The e2e suite runs it
// against the lab it proves; elsewhere it skips itself.
package example

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/labctl/labctl/e2e/labtest"
)

func TestMyLab(t *testing.T) {
	if os.Getenv("LABCTL_EXAMPLE_LAB") != "1" {
		t.Skip("SKIP reason: needs a running lab; set LABCTL_EXAMPLE_LAB=1 (and LABCTL_PRESET or LABCTL_FILE)")
	}
	ctx := context.Background()
	l, err := labtest.Attach(ctx, labtest.Options{
		Preset: os.Getenv("LABCTL_PRESET"), File: os.Getenv("LABCTL_FILE"),
		Root: "../../..", // where labctl ran: the lab's state is in its tmp/
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// A file of ours, uploaded into every container and read back there.
	src := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(src, []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range l.Spec.Containers {
		if got, err := l.Sh(ctx, c.Name, "hostname"); err != nil || got != c.Name {
			t.Errorf("%s: hostname %q, %v", c.Name, got, err)
		}
		if err := l.Upload(ctx, c.Name, src, "/root/hello.txt"); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Sh(ctx, c.Name, "cat /root/hello.txt && rm /root/hello.txt"); err != nil || got != "hello from the host" {
			t.Errorf("%s: read back %q, %v", c.Name, got, err)
		}
	}
}
