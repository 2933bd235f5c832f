package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	scp "github.com/bramvdbogaerde/go-scp"
)

// Upload is one file to copy to the machine.
type Upload struct {
	// Src is read to the end; Size must be its exact length.
	Src  io.Reader
	Size int64
	// Dest is the absolute path on the machine; Mode its permission bits.
	Dest string
	Mode os.FileMode
	// Owner (user:group) is applied with sudo after the copy, when set.
	Owner string
	// Progress, when set, receives a line now and then while the copy runs.
	Progress io.Writer
}

// UploadResult is what a verified upload measured.
type UploadResult struct {
	Bytes    int64
	SHA256   string
	Duration time.Duration
}

// progress says every 2 s how much of the upload was sent, until stop is closed.
func (u Upload) progress(start time.Time, sent *atomic.Int64, stop chan struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n := sent.Load()
			fmt.Fprintf(u.Progress, "  upload %s: %d/%d MB (%.0f%%, %.1f MB/s)\n", u.Dest, n>>20, u.Size>>20,
				100*float64(n)/float64(max(u.Size, 1)), float64(n)/1e6/time.Since(start).Seconds())
		}
	}
}

// Upload copies a file with SCP, hashing it on the way, then verifies size and sha256 on the
// far side before anyone uses it. A mismatch removes the remote file and is an error.
func (c *Comm) Upload(ctx context.Context, u Upload) (UploadResult, error) {
	start := time.Now()
	cl, err := c.Client(ctx)
	if err != nil {
		return UploadResult{}, err
	}
	sc, err := scp.NewClientBySSH(cl)
	if err != nil {
		return UploadResult{}, err
	}
	h := sha256.New()
	var sent atomic.Int64
	src := io.TeeReader(u.Src, h)
	stopProgress := make(chan struct{})
	if u.Progress != nil {
		go u.progress(start, &sent, stopProgress)
	}
	counting := func(r io.Reader, total int64) io.Reader { return &countReader{r: r, n: &sent} }
	mode := fmt.Sprintf("%04o", u.Mode.Perm())
	err = sc.CopyPassThru(ctx, src, u.Dest, mode, u.Size, counting)
	close(stopProgress)
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload %s (%d bytes): %w", u.Dest, u.Size, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	res, err := c.Run(ctx, Shf("stat -c %%s %s && sha256sum %s", u.Dest, u.Dest), RunOpts{})
	if err != nil {
		return UploadResult{}, err
	}
	fields := strings.Fields(res.Stdout)
	if !res.OK() || len(fields) < 2 {
		return UploadResult{}, &RunError{Target: c.cfg.Addr(), Cmd: "verify " + u.Dest, Result: res}
	}
	if size, _ := strconv.ParseInt(fields[0], 10, 64); size != u.Size || fields[1] != sum {
		_, _ = c.Run(ctx, Shf("rm -f %s", u.Dest), RunOpts{})
		return UploadResult{}, fmt.Errorf("upload %s is corrupt on the far side: size %s sha256 %s, sent %d bytes sha256 %s; removed it, run again",
			u.Dest, fields[0], fields[1], u.Size, sum)
	}
	if u.Owner != "" {
		if r, err := c.Run(ctx, Shf("sudo -n chown %s %s", u.Owner, u.Dest), RunOpts{}); err != nil || !r.OK() {
			if err == nil {
				err = &RunError{Target: c.cfg.Addr(), Cmd: "chown " + u.Dest, Result: r}
			}
			return UploadResult{}, err
		}
	}
	return UploadResult{Bytes: u.Size, SHA256: sum, Duration: time.Since(start)}, nil
}

// UploadFile uploads a local file.
func (c *Comm) UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (UploadResult, error) {
	f, err := os.Open(local)
	if err != nil {
		return UploadResult{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return UploadResult{}, err
	}
	return c.Upload(ctx, Upload{Src: f, Size: st.Size(), Dest: dest, Mode: mode, Progress: progress})
}

// Download copies a remote file into w.
func (c *Comm) Download(ctx context.Context, remote string, w io.Writer) error {
	cl, err := c.Client(ctx)
	if err != nil {
		return err
	}
	sc, err := scp.NewClientBySSH(cl)
	if err != nil {
		return err
	}
	if err := sc.CopyFromRemotePassThru(ctx, w, remote, nil); err != nil {
		return fmt.Errorf("download %s: %w", remote, err)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
