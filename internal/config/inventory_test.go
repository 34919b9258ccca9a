package config

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory"
)

const baseYAML = "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n"

func TestInventoryConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string
		want    InventoryConfig // effective settings, when valid
	}{
		{"absent: sqlite next to the config", "", nil,
			InventoryConfig{Driver: "sqlite", Path: "portcullis-data/inventory.db", RetentionDays: 90, QueueSize: 10000}},
		{"sqlite with a path", "inventory: {driver: sqlite, path: inv.db, retentionDays: 7, queueSize: 5}\n", nil,
			InventoryConfig{Driver: "sqlite", Path: "inv.db", RetentionDays: 7, QueueSize: 5}},
		{"postgres dsnFile", "inventory: {driver: postgres, dsnFile: dsn}\n", nil,
			InventoryConfig{Driver: "postgres", DSNFile: "dsn", RetentionDays: 90, QueueSize: 10000}},
		{"none", "inventory: {driver: none}\n", nil,
			InventoryConfig{Driver: "none", RetentionDays: 90, QueueSize: 10000}},
		{"unknown driver", "inventory: {driver: mysql}\n", []string{`inventory.driver: "mysql" is not sqlite, postgres or none`}, InventoryConfig{}},
		{"postgres without dsn", "inventory: {driver: postgres}\n", []string{"inventory.dsn: the postgres driver needs dsn or dsnFile"}, InventoryConfig{}},
		{"postgres with both", "inventory: {driver: postgres, dsn: 'postgres://h/d', dsnFile: f}\n", []string{"inventory.dsnFile: use either"}, InventoryConfig{}},
		{"postgres with a path", "inventory: {driver: postgres, dsn: 'postgres://h/d', path: x.db}\n", []string{"inventory.path: the postgres driver"}, InventoryConfig{}},
		{"sqlite with a dsn", "inventory: {driver: sqlite, dsn: 'postgres://u:hunter2@h/d'}\n", []string{"inventory.dsn: the sqlite driver"}, InventoryConfig{}},
		{"sqlite uri", "inventory: {path: 'file:x.db?mode=ro'}\n", []string{"inventory.path:", "plain file path"}, InventoryConfig{}},
		{"none with a path", "inventory: {driver: none, path: x.db}\n", []string{"inventory.driver: none records nothing"}, InventoryConfig{}},
		{"negative numbers", "inventory: {retentionDays: -1, queueSize: -2}\n", []string{"inventory.retentionDays: -1", "inventory.queueSize: -2"}, InventoryConfig{}},
		{"unknown field", "inventory: {drvier: sqlite}\n", []string{"drvier"}, InventoryConfig{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadYAML(t, baseYAML+tc.yaml)
			if !wantLoadErr(t, err, tc.wantErr) {
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the dsn's password: %q", err)
				}
				return
			}
			if got := c.InventorySettings(); got != tc.want {
				t.Errorf("InventorySettings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	if got := (InventoryConfig{RetentionDays: 3}).Retention(); got != 72*time.Hour {
		t.Errorf("Retention of 3 days = %v, want 72h", got)
	}
}

// logTo returns a logger writing to a buffer.
func logTo() (*slog.Logger, *testsupport.Buffer) {
	var b testsupport.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestOpenInventoryDefault(t *testing.T) {
	c, err := loadYAML(t, baseYAML)
	if err != nil {
		t.Fatal(err)
	}
	log, buf := logTo()
	st, err := c.OpenInventory(context.Background(), log)
	if err != nil || st == nil {
		t.Fatalf("OpenInventory = %v, %v; want the default SQLite store", st, err)
	}
	want := filepath.Join(c.dir, "portcullis-data", "inventory.db")
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("default database not created at %s: %v", want, err)
	}
	// It is a working store: what is recorded is found again after reopening.
	dg := digest.FromString("image")
	rec := inventory.Record{Registry: "r.example", Repository: "team/app", Digest: dg, Tag: "v1", At: time.Now(), Outcome: "allow"}
	if err := st.Record(context.Background(), []inventory.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = c.OpenInventory(context.Background(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.Query(context.Background(), inventory.Query{Image: "r.example/team/*"})
	if err != nil || len(page.Images) != 1 || page.Images[0].Digest != dg {
		t.Errorf("reopened default store: %+v, %v; want the recorded image", page, err)
	}
	if strings.Contains(buf.String(), "WARN") {
		t.Errorf("a writable default logged a warning: %s", buf)
	}
}

func TestOpenInventoryOff(t *testing.T) {
	t.Run("default directory not writable: warning, recording off", func(t *testing.T) {
		c, err := loadYAML(t, baseYAML)
		if err != nil {
			t.Fatal(err)
		}
		// A file where the data directory should be: as unwritable for root
		// (these tests may run as root) as a read-only ConfigMap mount is.
		testsupport.WriteFile(t, filepath.Join(c.dir, "portcullis-data"), "not a directory")
		log, buf := logTo()
		st, err := c.OpenInventory(context.Background(), log)
		if err != nil || st != nil {
			t.Fatalf("OpenInventory = %v, %v; want no store and no error", st, err)
		}
		for _, w := range []string{"level=WARN", "inventory recording is off", "inventory.path", "portcullis-data"} {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("log %q lacks %q", buf, w)
			}
		}
	})
	t.Run("driver none", func(t *testing.T) {
		c, err := loadYAML(t, baseYAML+"inventory: {driver: none}\n")
		if err != nil {
			t.Fatal(err)
		}
		log, buf := logTo()
		st, err := c.OpenInventory(context.Background(), log)
		if err != nil || st != nil {
			t.Fatalf("OpenInventory = %v, %v; want no store and no error", st, err)
		}
		if !strings.Contains(buf.String(), "inventory.driver: none") {
			t.Errorf("log %q does not say why recording is off", buf)
		}
		if _, err := os.Stat(filepath.Join(c.dir, "portcullis-data")); !os.IsNotExist(err) {
			t.Errorf("driver none created the data directory (stat: %v)", err)
		}
	})
}

func TestOpenInventoryExplicitFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close() // nothing listens there now
	const secret = "pa:ss@w/rd hunter2"
	dsn := "postgres://inv:" + url.QueryEscape(secret) + "@" + closedPort + "/inventory?connect_timeout=5"
	tests := []struct {
		name  string
		yaml  string
		files map[string]string
		want  []string
	}{
		{"explicit sqlite path under a file", "inventory: {path: blocker/inv.db}\n", map[string]string{"blocker": "x"}, []string{"inventory.path", "blocker"}},
		{"explicit sqlite driver, default path not writable", "inventory: {driver: sqlite}\n", map[string]string{"portcullis-data": "x"}, []string{"inventory.path", "portcullis-data"}},
		{"default path writable but the file is not a database", "", map[string]string{"portcullis-data/inventory.db": strings.Repeat("garbage ", 100)}, []string{"inventory.path", "inventory.db"}},
		{"postgres not reachable", "inventory: {driver: postgres, dsn: '" + dsn + "'}\n", nil, []string{"inventory.dsn", "inventory postgres"}},
		{"postgres dsnFile not reachable", "inventory: {driver: postgres, dsnFile: dsn.txt}\n", map[string]string{"dsn.txt": dsn + "\n"}, []string{"inventory.dsnFile", "inventory postgres"}},
		{"postgres dsnFile missing", "inventory: {driver: postgres, dsnFile: nope.txt}\n", nil, []string{"inventory.dsnFile", "nope.txt"}},
		{"postgres dsnFile empty", "inventory: {driver: postgres, dsnFile: empty.txt}\n", map[string]string{"empty.txt": "\n"}, []string{"inventory.dsnFile: empty.txt is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadYAML(t, baseYAML+tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(c.dir, name)), 0o750); err != nil {
					t.Fatal(err)
				}
				testsupport.WriteFile(t, filepath.Join(c.dir, name), content)
			}
			log, buf := logTo()
			st, err := c.OpenInventory(context.Background(), log)
			if err == nil {
				st.Close()
				t.Fatalf("OpenInventory succeeded, want an error mentioning %q", tc.want)
			}
			if st != nil {
				t.Errorf("OpenInventory returned a store with its error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, leak := range []string{"hunter2", url.QueryEscape(secret)} {
				if strings.Contains(err.Error(), leak) || strings.Contains(buf.String(), leak) {
					t.Errorf("the dsn's password leaks: error %q, log %q", err, buf)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	const secret = "s3cr:t/pw"
	base := errors.New("connect failed")
	err := redact(errors.Join(base, errors.New("postgres://u:"+secret+"@h/d, postgres://u:"+url.QueryEscape(secret)+"@h/d, "+url.PathEscape(secret))), secret)
	if strings.Contains(err.Error(), "s3cr") {
		t.Errorf("redact left the secret in %q", err)
	}
	if !strings.Contains(err.Error(), "xxxxx") || !strings.Contains(err.Error(), "connect failed") {
		t.Errorf("redact = %q, want the message with the secret replaced", err)
	}
	if !errors.Is(err, base) {
		t.Errorf("redact broke the error chain")
	}
	if got := redact(base, ""); got != base {
		t.Errorf("redact with no secret = %v, want the error itself", got)
	}
}
