package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AptSources are the host's Debian apt sources as mmdebstrap arguments for release: the
// host's own mirror (read from its apt configuration, never a name written in code), with its
// codename replaced by release.
func AptSources(release string) ([]string, error) {
	host := hostCodename()
	var out []string
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(data), "\n\n") {
			fields := map[string]string{}
			for _, line := range strings.Split(stanza, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
					fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			out = append(out, debianLines(fields["Types"], fields["URIs"], fields["Suites"], fields["Components"], host, release)...)
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "deb" && !strings.HasPrefix(f[1], "[") {
				out = append(out, debianLines("deb", f[1], f[2], strings.Join(f[3:], " "), host, release)...)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no Debian apt source on this host (/etc/apt/sources.list*): labctl builds boxes and images from the host's own mirror")
	}
	return out, nil
}

func debianLines(types, uris, suites, comps, host, release string) []string {
	if !strings.Contains(" "+types+" ", " deb ") || uris == "" {
		return nil
	}
	var out []string
	for _, suite := range strings.Fields(suites) {
		if suite != host && !strings.HasPrefix(suite, host+"-") {
			continue // not a Debian suite of this host (another vendor's repository)
		}
		s := release + strings.TrimPrefix(suite, host)
		for _, uri := range strings.Fields(uris) {
			out = append(out, fmt.Sprintf("deb %s %s %s", uri, s, comps))
		}
	}
	return out
}

func hostCodename() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "bookworm"
}

// SuiteLines are the lines of sources (as AptSources returns them) for release's own suite,
// turned to suite: the same mirror serves the release's backports.
func SuiteLines(sources []string, release, suite string) []string {
	var out []string
	for _, line := range sources {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == release {
			f[2] = suite
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}
