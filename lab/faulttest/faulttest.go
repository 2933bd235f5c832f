// Package faulttest lets a fault test count itself in the fault table (`make test-faults`,
// scripts/faults.sh). It is for tests only; it imports no labctl package.
package faulttest

import "testing"

// Count makes the test count in the fault table: when it ends it logs
// "FAULT kind=input|fault result=rejected|survived|lost|skipped name=NAME". kind is input (a
// bad input, refused) or fault (a fault injected, survived); a failed test is lost.
func Count(t *testing.T, kind, name string) {
	t.Helper()
	t.Cleanup(func() {
		result := map[string]string{"input": "rejected", "fault": "survived"}[kind]
		switch {
		case t.Failed():
			result = "lost"
		case t.Skipped():
			result = "skipped"
		}
		t.Logf("FAULT kind=%s result=%s name=%s", kind, result, name)
	})
}
