package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// The Redis overlay (deploy/kubernetes-redis) is the base plus one shared
// Redis. Its config.yaml is the base's plus cache.redis: the two must not
// drift apart.
func TestRedisOverlayConfigIsBasePlusRedis(t *testing.T) {
	read := func(p string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return m
	}
	base, overlay := read("kubernetes/config.yaml"), read("kubernetes-redis/config.yaml")
	cacheCfg, _ := overlay["cache"].(map[string]any)
	if _, ok := cacheCfg["redis"]; !ok {
		t.Fatal("kubernetes-redis/config.yaml has no cache.redis")
	}
	delete(cacheCfg, "redis")
	if !reflect.DeepEqual(base, overlay) {
		t.Errorf("kubernetes-redis/config.yaml without cache.redis differs from kubernetes/config.yaml:\nbase    %v\noverlay %v", base, overlay)
	}
}

// TestRedisOverlay renders the overlay with the real kustomize (it uses
// patches, which the local renderer does not do) and checks what it adds.
func TestRedisOverlay(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		msg := "kubectl (kustomize) is not installed: deploy/kubernetes-redis is not checked"
		if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip("!!! SKIPPING: " + msg)
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes-redis").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize kubernetes-redis: %v\n%s", err, out)
	}
	objs := decodeAll(t, "kubernetes-redis", out)
	var (
		proxy, redis  *appsv1.Deployment
		svc, redisSvc *corev1.Service
		cm            *corev1.ConfigMap
		secrets       = map[string]*corev1.Secret{}
	)
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			if o.name == "portcullis" {
				proxy = v
			} else if o.name == "portcullis-redis" {
				redis = v
			}
		case *corev1.Service:
			if o.name == "portcullis" {
				svc = v
			} else if o.name == "portcullis-redis" {
				redisSvc = v
			}
		case *corev1.ConfigMap:
			cm = v
		case *corev1.Secret:
			secrets[o.name] = v
		}
		if o.kind != "Namespace" && o.namespace != "portcullis" {
			t.Errorf("%s %s: namespace %q, want portcullis", o.kind, o.name, o.namespace)
		}
	}
	if proxy == nil || redis == nil || svc == nil || redisSvc == nil || cm == nil {
		t.Fatalf("missing objects in the overlay: %d rendered", len(objs))
	}
	// Admissions are shared, so clients need not stick to one replica.
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP || svc.Spec.SessionAffinityConfig != nil {
		t.Errorf("Service sessionAffinity %q (%v), want none with Redis on", svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig)
	}
	if _, ok := cm.Data["policy.yaml"]; !ok {
		t.Error("the overlay's ConfigMap lost policy.yaml")
	}

	// The config names files where the Secret is mounted, and loads.
	var cfg struct {
		Cache struct {
			Redis config.RedisConfig `yaml:"redis"`
		} `yaml:"cache"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	rc := cfg.Cache.Redis
	mounts := map[string]string{} // mount path -> secret
	c := proxy.Spec.Template.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		for _, v := range proxy.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				mounts[m.MountPath] = v.Secret.SecretName
			}
		}
	}
	sec := secrets["portcullis-redis"]
	for field, p := range map[string]string{"hmacKeyFile": rc.HMACKeyFile, "passwordFile": rc.PasswordFile} {
		name := mounts[filepath.Dir(p)]
		if name != "portcullis-redis" || sec == nil || sec.StringData[filepath.Base(p)] == "" {
			t.Errorf("cache.redis.%s %q is not a key of the mounted portcullis-redis Secret (mounted: %v)", field, p, mounts)
		}
	}
	host, _, _ := strings.Cut(rc.Address, ":")
	if host != redisSvc.Name {
		t.Errorf("cache.redis.address %q does not name the Redis Service %s", rc.Address, redisSvc.Name)
	}
	if !labels.SelectorFromSet(redisSvc.Spec.Selector).Matches(labels.Set(redis.Spec.Template.Labels)) ||
		labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(redis.Spec.Template.Labels)) {
		t.Error("the Redis Service must select the Redis pod, and the proxy Service must not")
	}
	rpod := &redis.Spec.Template.Spec
	checkContainer(t, "redis container", rpod, rpod.Containers[0], true)

	// The placeholder key is refused: a proxy started with it does not run
	// with a key everyone knows; a real key loads.
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(key string) error {
		y := strings.NewReplacer(rc.HMACKeyFile, write("hmac.key", key), rc.PasswordFile, write("password", sec.StringData["password"]),
			"/etc/portcullis/tls/", dir+"/").Replace(cm.Data["config.yaml"])
		write("policy.yaml", cm.Data["policy.yaml"])
		_, err := config.Load(write("config.yaml", y))
		return err
	}
	if err := load(sec.StringData["hmac.key"]); err == nil || !strings.Contains(err.Error(), "hmacKeyFile") {
		t.Errorf("config with the placeholder key: %v, want refused (hmacKeyFile)", err)
	}
	if err := load(strings.Repeat("x", 48)); err != nil {
		t.Errorf("config with a real key: %v", err)
	}
}
