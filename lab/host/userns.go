package host

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// SubIDCount is the size of the subordinate id range a normal user needs to build boxes and
// images: the ids 0..65535 of a Debian root filesystem.
const SubIDCount = 65536

// BuildMode is how mmdebstrap builds here: "root" for root, "unshare" (a user namespace over
// the user's subordinate ids) for a normal user.
func BuildMode() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return "unshare"
}

// subRange is one line of /etc/subuid or /etc/subgid.
type subRange struct {
	owner        string
	start, count int
}

// subRanges reads the ranges of file (none when it cannot be read).
func subRanges(file string) []subRange {
	data, _ := os.ReadFile(file)
	var out []subRange
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 {
			continue
		}
		s, err1 := strconv.Atoi(parts[1])
		n, err2 := strconv.Atoi(parts[2])
		if err1 == nil && err2 == nil {
			out = append(out, subRange{parts[0], s, n})
		}
	}
	return out
}

// subIDs is the first range of at least SubIDCount ids that file (/etc/subuid or
// /etc/subgid) gives name or uid; ok false when there is none.
func subIDs(file, name, uid string) (start int, ok bool) {
	for _, r := range subRanges(file) {
		if (r.owner == name || r.owner == uid) && r.count >= SubIDCount {
			return r.start, true
		}
	}
	return 0, false
}

// nextFreeSubIDs is where a new range would start: after every range the files hold, at
// 100000 at least (what useradd gives the first user).
func nextFreeSubIDs() int {
	next := 100000
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		for _, r := range subRanges(file) {
			next = max(next, r.start+r.count)
		}
	}
	return next
}

// SubIDsHint is the command an administrator runs once to give the user a range.
func SubIDsHint(name string) string {
	s := nextFreeSubIDs()
	return fmt.Sprintf("sudo usermod --add-subuids %d-%d --add-subgids %d-%d %s", s, s+SubIDCount-1, s, s+SubIDCount-1, name)
}

// InUserNS is the command prefix that runs a command as root of a user namespace whose ids
// 1..65535 are the user's subordinate ids, so that it can write and read a root filesystem's
// owners as they are (extract it, make a file system of it, remove it). For root it is empty:
// root runs it as itself. The error says what an administrator must do once.
func InUserNS() ([]string, error) {
	if os.Geteuid() == 0 {
		return nil, nil
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"unshare", "newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed: an administrator runs once `sudo apt-get install uidmap util-linux` (or `sudo make deps`)", tool)
		}
	}
	us, ok1 := subIDs("/etc/subuid", u.Username, u.Uid)
	gs, ok2 := subIDs("/etc/subgid", u.Username, u.Uid)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("user %s has no subordinate id range of %d ids in /etc/subuid and /etc/subgid: an administrator runs once `%s`", u.Username, SubIDCount, SubIDsHint(u.Username))
	}
	return []string{"unshare", "--map-root-user",
		fmt.Sprintf("--map-users=%d,1,%d", us+1, SubIDCount-1),
		fmt.Sprintf("--map-groups=%d,1,%d", gs+1, SubIDCount-1), "--"}, nil
}

// RemoveAll removes path as os.RemoveAll does. What a normal user cannot remove as itself is
// removed inside its user namespace (InUserNS): a root filesystem unpacked there by a build that
// was cut short holds directories owned by the user's subordinate ids.
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	ns, nsErr := InUserNS()
	if nsErr != nil {
		return fmt.Errorf("%w (and not inside a user namespace either: %v)", err, nsErr)
	}
	args := append(ns[1:], "rm", "-rf", "--", path)
	if out, rmErr := exec.Command(ns[0], args...).CombinedOutput(); rmErr != nil {
		return fmt.Errorf("%w; inside the user namespace too: %v: %s", err, rmErr, strings.TrimSpace(string(out)))
	}
	return nil
}
