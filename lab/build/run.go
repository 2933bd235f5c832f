package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
)

// runScript runs an embedded bash script; "==>" lines go to w, everything to log.
func runScript(ctx context.Context, script string, env []string, w, log io.Writer) error {
	// bash leads a process group of its own: cancelling ends it and everything it started
	// (mmdebstrap, apt, dpkg), SIGTERM first.
	cmd := host.Command(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var tailBuf tailWriter
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		var line strings.Builder
		for {
			n, err := pr.Read(buf)
			for _, b := range buf[:n] {
				if b == '\n' {
					l := line.String()
					line.Reset()
					if log != nil {
						fmt.Fprintln(log, l)
					}
					tailBuf.add(l)
					if strings.HasPrefix(l, "==> ") {
						fmt.Fprintln(w, "  "+strings.TrimPrefix(l, "==> "))
					}
				} else {
					line.WriteByte(b)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if ctx.Err() != nil {
		return fmt.Errorf("stopped (%w): the build and every process it started were ended", context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%v; last output:\n%s", err, strings.Join(tailBuf.lines, "\n"))
	}
	return nil
}

type tailWriter struct{ lines []string }

func (t *tailWriter) add(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > 15 {
		t.lines = t.lines[1:]
	}
}

// pruneSiblings removes older builds of the same flavour (dir is <flavour>-<key>): a rebuild
// happens only when the recipe changed, so they will not be used again. A build another
// labctl holds the lock of (being built, or read) is left alone; lock files stay.
func pruneSiblings(dir string, w io.Writer) {
	base := filepath.Base(dir)
	rel := base[:strings.LastIndex(base, "-")]
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), rel+"-*"))
	for _, o := range old {
		if o == dir || strings.HasSuffix(o, ".work") || strings.HasSuffix(o, ".lock") {
			continue
		}
		if strings.Contains(strings.TrimPrefix(filepath.Base(o), rel+"-"), "-") {
			continue // another flavour's (bookworm-backports-KEY beside bookworm-KEY)
		}
		lock, err := host.TryLock(o+".lock", "prune")
		if err != nil {
			continue
		}
		if host.RemoveAll(o) == nil {
			fmt.Fprintf(w, "  removed the older build %s\n", o)
		}
		host.RemoveAll(o + ".work")
		lock.Unlock()
	}
}

// freshEntry empties a cache entry's directory and its work directory beside it, both
// private, and returns the work directory.
func freshEntry(dir string) (work string, err error) {
	work = dir + ".work"
	for _, d := range []string{work, dir} {
		if err := host.RemoveAll(d); err != nil {
			return "", err
		}
		if err := host.PrivateDir(d); err != nil {
			return "", err
		}
	}
	return work, nil
}

// dropUnfinished removes a build's work directory, and its entry too unless the build
// finished: an unfinished build never counts, and is not left behind.
func dropUnfinished(dir, work string, built bool) {
	host.RemoveAll(work)
	if !built {
		host.RemoveAll(dir)
	}
}
