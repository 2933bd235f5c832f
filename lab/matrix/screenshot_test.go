package matrix

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSummaryScreenshot renders the summary of a matrix with green and red cells (the why
// section's fixture) in Debian's headless chromium, in a network namespace of its own (the page
// needs none, and chromium reaches nothing else), and reads the screenshot back: the page is
// drawn (not blank), the grid and the rows show green and red cells, and the picture stays in
// tmp/screenshot/summary.png for a person to look at. It runs in `make test` (LABCTL_SCREENSHOT=1,
// as root: the namespace); `go test ./...` leaves it out.
func TestSummaryScreenshot(t *testing.T) {
	if os.Getenv("LABCTL_SCREENSHOT") != "1" {
		t.Skip("LABCTL_SCREENSHOT=1 runs it (make test: scripts/screenshot-check.sh)")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: scripts/screenshot-check.sh installs it (apt-get install chromium)")
	}
	out := t.TempDir()
	rep := whyFixture(t, out)
	if err := os.MkdirAll(filepath.Join(out, "cells", "k6-12-lxc4-0-6"), 0o755); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(out, "summary.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := htmlPage.Execute(f, rep); err != nil {
		t.Fatal(err)
	}
	f.Close()
	shot, err := filepath.Abs(filepath.Join("..", "..", "tmp", "screenshot", "summary.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(out, "profile"), "--hide-scrollbars", "--window-size=1400,1000",
		"--screenshot="+shot, "file://"+page)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	r, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer r.Close()
	img, err := png.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
		t.Errorf("screenshot %v, want 1400x1000", b)
	}
	green, red, ink := count(img)
	t.Logf("screenshot %s: %d green (passed) pixels, %d red (failed), %d dark (text)", shot, green, red, ink)
	// A passed cell's background is #dfd, a failed one's #fdd (the page's style); text is dark.
	if green < 2000 || red < 2000 || ink < 5000 {
		t.Errorf("the page does not show its cells: %d green, %d red, %d dark pixels (look at %s)", green, red, ink, shot)
	}
}

// count counts a picture's pixels of the passed and failed backgrounds, and dark ones.
func count(img image.Image) (green, red, dark int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case r == 0xdd && g == 0xff && bl == 0xdd:
				green++
			case r == 0xff && g == 0xdd && bl == 0xdd:
				red++
			case r < 0x60 && g < 0x60 && bl < 0x60:
				dark++
			}
		}
	}
	return
}
