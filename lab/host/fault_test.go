package host

import "testing"

// fault makes the test count in the fault table (`make test-faults`, scripts/faults.sh): when
// it ends it logs "FAULT kind=input|fault result=rejected|survived|lost|skipped name=NAME". A
// failed test is lost; the table says how many.
func fault(t *testing.T, kind, name string) {
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
