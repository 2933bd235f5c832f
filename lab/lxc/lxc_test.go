package lxc

import (
	"strings"
	"testing"
)

func TestUbuntuPackageVersionReadsAsItsCore(t *testing.T) {
	v, err := Parse("1.1.5-0ubuntu3~ubuntu14.04.1")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Legacy() || v.String() != "1.1.5" || v.Nesting() != NestingCgroupProfile {
		t.Fatalf("Ubuntu's 1.1.5 package version read as %s (legacy %v, nesting %v)", v, v.Legacy(), v.Nesting())
	}
}

// TestTable: each capability switches at the version LXC's history says.
func TestTable(t *testing.T) {
	for _, c := range []struct {
		v                        string
		legacy, local, mknd, cg2 bool
		nesting                  Nesting
	}{
		{"1.1.5", true, false, true, false, NestingCgroupProfile},
		{"2.0.11", true, false, true, false, NestingConf},
		{"2.1.1", false, false, true, false, NestingConf},
		{"3.0.4", false, true, true, false, NestingConf},
		{"3.1.0", false, true, true, false, NestingGenerated},
		{"4.0.6", false, true, true, false, NestingGenerated},
		{"5.0.2", false, true, false, false, NestingGenerated},
		{"6.0.4", false, true, false, false, NestingGenerated},
		{"7.0.0", false, true, false, true, NestingGenerated},
	} {
		v, err := Parse(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if v.Legacy() != c.legacy || v.LocalImages() != c.local || v.BusyboxMknod() != c.mknd || v.Cgroup2Only() != c.cg2 || v.Nesting() != c.nesting {
			t.Errorf("%s: legacy %v local %v mknod %v cgroup2 only %v nesting %v", c.v, v.Legacy(), v.LocalImages(), v.BusyboxMknod(), v.Cgroup2Only(), v.Nesting())
		}
	}
	if _, err := Parse("0.9.0"); err == nil || !strings.Contains(err.Error(), "older than 1.0") {
		t.Fatalf("0.9: %v", err)
	}
	if _, err := Parse("five"); err == nil {
		t.Fatal("five parsed")
	}
}

func TestLegacyKeys(t *testing.T) {
	old, _ := Parse("2.0.11")
	cur, _ := Parse("5.0.2")
	for modern, legacy := range map[string]string{"lxc.idmap": "lxc.id_map", "lxc.net.0.link": "lxc.network.link", "lxc.apparmor.profile": "lxc.aa_profile", "lxc.include": "lxc.include"} {
		if got := old.Key(modern); got != legacy {
			t.Errorf("2.0 spells %s as %s, want %s", modern, got, legacy)
		}
		if got := cur.Key(modern); got != modern {
			t.Errorf("5.0 spells %s as %s", modern, got)
		}
	}
}
