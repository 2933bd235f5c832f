package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/vagrant"
)

// bootAgain readies the lab for another boot after one that timed out: it says so, keeps that
// boot's console in console-boot1.log, and pulls the plug of a guest still running (hung;
// vagrant-libvirt removes a VM it created itself when the boot times out).
func (l *Lab) bootAgain(ctx context.Context, p Provider, v *vagrant.Driver, out io.Writer) error {
	msg := "vm: the guest did not answer SSH within Vagrant's boot timeout"
	if says := l.consoleSays(); says != "" {
		msg += "; " + says
	}
	fmt.Fprintln(out, msg)
	kept := l.Log(labdir.ConsoleBoot1)
	if err := os.Rename(l.Log(labdir.ConsoleLog), kept); err == nil {
		fmt.Fprintf(out, "vm: that boot's console is kept in %s\n", kept)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	state, _, err := l.vmState(ctx, p, v)
	if err != nil {
		return fmt.Errorf("cannot tell whether the hung VM still runs, so it was not booted again: %w", err)
	}
	if state == "running" {
		fmt.Fprintln(out, "vm: powering the hung guest off")
		if err := p.PowerOff(ctx, l.State().DomainUUID, v); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "vm: booting once more")
	return nil
}

// powerOffHung leaves a VM that existed before a failed `up` as it was, off, when its guest
// still runs after its last boot timed out (hung: it would only burn the host's CPUs). Its
// disks are kept; what it printed is in the console log.
func (l *Lab) powerOffHung(ctx context.Context, p Provider, v *vagrant.Driver, out io.Writer) {
	if state, _, err := l.vmState(ctx, p, v); err != nil || state != "running" {
		return
	}
	fmt.Fprintln(out, "vm: powering the hung guest off; the VM and its disks are kept")
	if err := p.PowerOff(ctx, l.State().DomainUUID, v); err != nil {
		fmt.Fprintf(out, "could not power the hung guest off (%v): `labctl halt`, or `labctl destroy`\n", err)
	}
}

// freshConsole empties the lab's console log (never through a symlink) before a boot.
func (l *Lab) freshConsole() error {
	f, err := host.OpenOwn(l.Log(labdir.ConsoleLog), os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Truncate(0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ansi matches the terminal escapes (systemd's colours) that a console log carries.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`)

// consoleLines is how much of the guest's console a failed boot shows.
const consoleLines = 12

// withConsole adds to a failed `vagrant up` what the guest's serial console printed last
// (libvirt keeps it in the lab's console log): a boot that never reached SSH shows there
// where it stopped. err is returned as it is when the lab keeps no console, and when the
// console is empty but for a boot that timed out (Vagrant failed before the guest booted: its
// machine locked by another process, say, and the console says nothing of it).
func (l *Lab) withConsole(err error) error {
	says := l.consoleSays()
	if says == "" || (strings.HasSuffix(says, consoleEmpty) && !vagrant.IsBootTimeout(err)) {
		return err
	}
	return fmt.Errorf("%w\n%s", err, says)
}

const consoleEmpty = "is empty: its kernel printed nothing"

// consoleSays tells what the guest's console printed last, in a sentence; "" when the lab
// keeps no console.
func (l *Lab) consoleSays() string {
	data, err := os.ReadFile(l.Log(labdir.ConsoleLog))
	if err != nil {
		return ""
	}
	text := strings.TrimSpace(strings.ToValidUTF8(ansi.ReplaceAllString(strings.ReplaceAll(string(data), "\r", ""), ""), "?"))
	if text == "" {
		return fmt.Sprintf("the guest's console (%s) %s", l.Log(labdir.ConsoleLog), consoleEmpty)
	}
	tail := host.LastLines(text, consoleLines)
	return fmt.Sprintf("the guest's console (%s) ended with:\n  %s", l.Log(labdir.ConsoleLog), strings.ReplaceAll(tail, "\n", "\n  "))
}
