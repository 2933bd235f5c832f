package vagrant

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// SSHConfigEntry is one Host block of `vagrant ssh-config`.
type SSHConfigEntry struct {
	Host          string
	HostName      string
	User          string
	Port          int
	IdentityFiles []string
}

// ParseSSHConfig parses the output of `vagrant ssh-config`: one or more Host blocks with
// HostName, User, Port and any number of IdentityFile lines (double-quoted when the path has a
// space). Unknown keywords are ignored: StrictHostKeyChecking among them, since labctl pins
// host keys itself whatever Vagrant asks for.
func ParseSSHConfig(text string) ([]SSHConfigEntry, error) {
	var out []SSHConfigEntry
	var cur *SSHConfigEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, err := splitSSHConfigLine(line)
		if err != nil {
			return nil, fmt.Errorf("ssh-config line %d: %w", n, err)
		}
		if strings.EqualFold(key, "Host") {
			out = append(out, SSHConfigEntry{Host: val})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("ssh-config line %d: %q before any Host line", n, key)
		}
		switch strings.ToLower(key) {
		case "hostname":
			cur.HostName = val
		case "user":
			cur.User = val
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("ssh-config line %d: port %q is not a port number", n, val)
			}
			cur.Port = p
		case "identityfile":
			cur.IdentityFiles = append(cur.IdentityFiles, val)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ssh-config has no Host block: is the VM created? (`labctl status`)")
	}
	for _, e := range out {
		if e.HostName == "" || e.Port == 0 || e.User == "" || len(e.IdentityFiles) == 0 {
			return nil, fmt.Errorf("ssh-config for host %q lacks HostName, Port, User or IdentityFile", e.Host)
		}
	}
	return out, nil
}

// splitSSHConfigLine splits "Key value", "Key=value" or `Key "quoted value"`.
func splitSSHConfigLine(line string) (string, string, error) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return "", "", fmt.Errorf("%q has no value", line)
	}
	key := line[:i]
	val := strings.TrimLeft(line[i:], " \t")
	val = strings.TrimPrefix(val, "=")
	val = strings.TrimSpace(val)
	if strings.HasPrefix(val, `"`) {
		end := strings.Index(val[1:], `"`)
		if end < 0 {
			return "", "", fmt.Errorf("unterminated quote in %q", line)
		}
		val = val[1 : end+1]
	}
	return key, val, nil
}
