package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/demo"
)

// TestAuditCommand: `portcullis audit` decides a pod list through the real
// pipeline (the demo's registry and policy) and exits 1 because one image
// would be denied; every output format carries the same counts.
func TestAuditCommand(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	pods := `{"kind":"List","items":[
 {"kind":"Pod","metadata":{"name":"a","namespace":"shop"},"spec":{"containers":[
   {"name":"ok","image":"` + demo.Registry + `/demo/signed:v1"},
   {"name":"pinned","image":"` + demo.Registry + `/demo/signed@` + f.Signed.String() + `"},
   {"name":"bad","image":"` + demo.Registry + `/demo/unsigned:v1"}]}},
 {"kind":"Pod","metadata":{"name":"b","namespace":"ops"},"spec":{"containers":[
   {"name":"elsewhere","image":"quay.io/other/tool:latest"}]}}]}`
	podsPath := filepath.Join(dir, "pods.json")
	if err := os.WriteFile(podsPath, []byte(pods), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "audit", "--config", f.ConfigPath, "--pods", podsPath, "-o", "json")
	if code != 1 {
		t.Fatalf("audit exit %d, want 1 (denied images); stderr %s", code, errOut)
	}
	var r audit.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, out)
	}
	s := r.Summary
	if s.Total != 4 || s.Allowed != 2 || s.Denied != 2 || s.Signed != 2 || s.Pinned != 1 {
		t.Errorf("summary = %+v, want 4 images: 2 allowed (signed, pinned), 2 denied (unsigned, unserved registry)", s)
	}
	for _, fd := range r.Images {
		if strings.HasPrefix(fd.Image, "quay.io/") && !strings.Contains(fd.Reason, "not served by any upstream") {
			t.Errorf("unserved image reason = %q", fd.Reason)
		}
		if strings.Contains(fd.Image, "/demo/signed") && (fd.Digest != f.Signed.String() || strings.Join(fd.Signers, ",") != "demo-key") {
			t.Errorf("signed finding = %+v, want digest %s signed by demo-key", fd, f.Signed)
		}
	}
	code, out, _ = runCLI(t, "audit", "--config", f.ConfigPath, "--pods", podsPath)
	if code != 1 || !strings.Contains(out, "4 images: 2 allowed, 2 denied, 0 undecided; 50% signed") {
		t.Errorf("audit table: exit %d\n%s", code, out)
	}

	list := filepath.Join(dir, "images.txt")
	if err := os.WriteFile(list, []byte("# only good ones\n"+demo.Registry+"/demo/signed:v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "audit", "--config", f.ConfigPath, "--images", list, "-o", "markdown"); code != 0 || !strings.Contains(out, "| signed | 1 (100%) |") {
		t.Errorf("audit of a signed image: exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, bad := range [][]string{
		{"audit", "--images", list},
		{"audit", "--config", f.ConfigPath, "--images", list, "--pods", podsPath},
		{"audit", "--config", f.ConfigPath, "--images", list, "-o", "yaml"},
		{"audit", "--config", f.ConfigPath, "--pods", list},
	} {
		if code, _, _ := runCLI(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
